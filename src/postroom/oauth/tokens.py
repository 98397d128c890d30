"""Checking an OAuth 2.0 bearer token (a JWT) from the configured issuer: its signature with
the issuer's key, its ``iss``, ``aud``, ``exp``, ``nbf`` and ``iat``; and reading who it
speaks for. Which tenant and scopes that means is judged by ``tenants.service``.

Refusals are 401 ``invalid_token`` (or ``token_expired``) with a sentence saying why; the
token itself is never put in a message or a log line.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from postroom.errors import Unauthorized
from postroom.oauth.jwks import JwksCache

#: Three base64url segments (the last, the signature, may be empty: ``alg: none``).
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
#: Where a token's scopes are looked for when the configured claim is absent (Azure AD, Okta).
FALLBACK_SCOPE_CLAIM = "scp"


def is_token_shaped(presented: str) -> bool:
    """Whether a presented credential has the shape of a JWT (API keys never do)."""
    return _JWT_SHAPE.fullmatch(presented) is not None


@dataclass(frozen=True, slots=True)
class BearerToken:
    """What a checked token says: its subject, the tenant it names, the scopes it grants (as
    the issuer wrote them, ours or not)."""

    subject: str
    tenant: str
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TokenRules:
    """What a token must say to be believed, and where it says the rest."""

    issuer: str
    audience: str
    algorithms: Collection[str]
    tenant_claim: str
    scope_claim: str
    leeway_seconds: float


class TokenVerifier:
    def __init__(self, rules: TokenRules, keys: JwksCache) -> None:
        self.rules = rules
        self.keys = keys

    def verify(self, token: str) -> BearerToken:
        """The token's subject, tenant and scopes; Unauthorized naming what is wrong. May fetch
        the issuer's keys: call it off the event loop."""
        rules = self.rules
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise invalid_token("The bearer token is not a readable JWT.") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in rules.algorithms:
            raise invalid_token(
                "The bearer token's signature algorithm is not accepted.",
                accepted=sorted(rules.algorithms),
            )
        if not isinstance(kid, str) or not kid:
            raise invalid_token("The bearer token names no signing key (kid).")
        key = self.keys.key_for(kid)
        if alg not in key.algorithms:
            raise invalid_token("The bearer token's algorithm does not fit its signing key.")
        claims = _decode(token, key.key, alg, rules)
        return BearerToken(
            subject=claims["sub"],
            tenant=tenant_in(claims, rules.tenant_claim),
            scopes=scopes_in(claims, rules.scope_claim),
        )


def _decode(token: str, key: Any, alg: str, rules: TokenRules) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=rules.audience,
            issuer=rules.issuer,
            leeway=rules.leeway_seconds,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The bearer token has expired.", code="token_expired") from None
    except jwt.ImmatureSignatureError:
        raise invalid_token("The bearer token is not valid yet (nbf or iat).") from None
    except jwt.InvalidIssuerError:
        raise invalid_token("The bearer token is from another issuer.") from None
    except jwt.InvalidAudienceError:
        raise invalid_token("The bearer token is not meant for this API (aud).") from None
    except jwt.MissingRequiredClaimError as exc:
        raise invalid_token(f"The bearer token lacks the {exc.claim} claim.") from None
    except jwt.InvalidSignatureError:
        raise invalid_token("The bearer token's signature does not verify.") from None
    except jwt.PyJWTError:
        raise invalid_token("The bearer token is not valid.") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or not subject.isprintable():
        raise invalid_token("The bearer token's sub claim is not a name.")
    return claims


def tenant_in(claims: Mapping[str, Any], claim: str) -> str:
    """The tenant id the token names in ``claim``; Unauthorized when it names none."""
    tenant = claims.get(claim)
    if not isinstance(tenant, str) or not tenant.strip() or not tenant.isprintable():
        raise invalid_token(f"The bearer token has no {claim} claim naming a tenant.")
    return tenant.strip()


def scopes_in(claims: Mapping[str, Any], claim: str) -> tuple[str, ...]:
    """The scopes in ``claim`` (else in ``scp``): a space-separated string or a list of
    strings; anything else grants none."""
    value = claims.get(claim)
    if value is None:
        value = claims.get(FALLBACK_SCOPE_CLAIM)
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list):
        return tuple(scope for scope in value if isinstance(scope, str))
    return ()


def invalid_token(message: str, **details: Any) -> Unauthorized:
    return Unauthorized(message, code="invalid_token", details=details)
