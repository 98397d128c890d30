"""OAuth 2.0 bearer tokens (JWTs) from a configured issuer: its keys, and checking tokens."""

from __future__ import annotations

from postroom.config import Settings, oauth_algorithms
from postroom.oauth.jwks import JwksCache
from postroom.oauth.tokens import BearerToken, TokenRules, TokenVerifier, is_token_shaped

__all__ = ["BearerToken", "TokenVerifier", "is_token_shaped", "open_token_verifier"]


def open_token_verifier(settings: Settings) -> TokenVerifier | None:
    """The verifier POSTROOM_OAUTH_* describe; None when OAuth is off (no issuer). Nothing is
    fetched until the first token arrives, so start-up does not wait for the issuer."""
    if not settings.oauth_issuer:
        return None
    algorithms = oauth_algorithms(settings)
    keys = JwksCache(
        issuer=settings.oauth_issuer,
        jwks_url=settings.oauth_jwks_url or None,
        algorithms=algorithms,
        refetch_seconds=settings.oauth_jwks_refetch_seconds,
    )
    rules = TokenRules(
        issuer=settings.oauth_issuer,
        audience=settings.oauth_audience,
        algorithms=algorithms,
        tenant_claim=settings.oauth_tenant_claim,
        scope_claim=settings.oauth_scope_claim,
        leeway_seconds=settings.oauth_leeway_seconds,
    )
    return TokenVerifier(rules, keys)
