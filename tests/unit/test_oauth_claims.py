"""OAuth pieces that need no network: the shape of a token, scopes and tenant read from
claims, Postroom's scopes among them, the audit name of a subject, which JWKS entries are
kept, how long a JWKS is kept, and the settings' checks."""

from __future__ import annotations

from typing import Any

import pytest

from postroom.config import load_settings
from postroom.errors import ConfigError, Unauthorized
from postroom.oauth.jwks import MAX_TTL_SECONDS, MIN_TTL_SECONDS, signing_keys, ttl_seconds
from postroom.oauth.tokens import is_token_shaped, scopes_in, tenant_in
from postroom.tenants.keys import claims_to_be_key, issue_key
from postroom.tenants.scopes import granted_scopes
from postroom.tenants.service import KEY_ID_MAX, oauth_key_id
from tests.support.oauth_issuer import new_ec_key, new_rsa_key, public_jwk


def test_tokens_and_keys_are_told_apart() -> None:
    key = issue_key().plaintext
    assert claims_to_be_key(key) and not is_token_shaped(key)
    assert is_token_shaped("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
    assert is_token_shaped("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")  # alg none: checked, refused
    assert not is_token_shaped("a.b") and not is_token_shaped("a.b.c.d")
    assert not is_token_shaped("a b.c.d") and not is_token_shaped("a.b+c.d")


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"scope": "openid campaigns:read  admin"}, ("openid", "campaigns:read", "admin")),
        ({"scope": ["campaigns:read", 7, "admin"]}, ("campaigns:read", "admin")),
        ({"scp": ["campaigns:write"]}, ("campaigns:write",)),
        ({"scp": "templates:write"}, ("templates:write",)),
        ({"scope": "", "scp": "admin"}, ()),  # the configured claim wins when present
        ({"scope": {"admin": True}}, ()),
        ({}, ()),
    ],
)
def test_scopes_are_read_from_a_string_or_a_list(
    claims: dict[str, Any], scopes: tuple[str, ...]
) -> None:
    assert scopes_in(claims, "scope") == scopes


def test_only_postroom_scopes_are_granted() -> None:
    assert granted_scopes(["openid", "admin", "campaigns:read", "campaigns:read"]) == [
        "campaigns:read",
        "admin",
    ]
    assert granted_scopes(["openid", "Admin", "campaigns"]) == []


@pytest.mark.parametrize("tenant", [None, "", "  ", 42, ["tn_1"], "tn_\x00"])
def test_a_token_without_a_tenant_is_refused(tenant: object) -> None:
    with pytest.raises(Unauthorized) as refused:
        tenant_in({"postroom_tenant": tenant}, "postroom_tenant")
    assert refused.value.code == "invalid_token"
    assert tenant_in({"org": " tn_1 "}, "org") == "tn_1"


def test_a_subject_names_its_caller_within_the_audit_column() -> None:
    assert oauth_key_id("svc-reporting") == "oauth:svc-reporting"
    long_a, long_b = "a" * 60 + "1", "a" * 60 + "2"
    assert len(oauth_key_id(long_a)) == KEY_ID_MAX
    assert oauth_key_id(long_a) != oauth_key_id(long_b)
    assert oauth_key_id(long_a).startswith("oauth:aaaa")


def test_only_public_signature_keys_for_allowed_algorithms_are_kept() -> None:
    rsa_jwk = public_jwk("rsa", new_rsa_key())
    ec_jwk = public_jwk("ec", new_ec_key())
    document = {
        "keys": [
            rsa_jwk,
            ec_jwk,
            {**rsa_jwk, "kid": "enc", "use": "enc"},
            {**rsa_jwk, "kid": "ps", "alg": "PS256"},
            {**rsa_jwk, "kid": None},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "bent", "crv": "P-256", "x": "AA", "y": "AA"},
            "not a key",
        ]
    }
    kept = signing_keys(document, ["RS256", "ES256", "HS256"])
    assert set(kept) == {"rsa", "ec"}
    assert kept["rsa"].algorithms == {"RS256"} and kept["ec"].algorithms == {"ES256"}
    assert set(signing_keys(document, ["PS256"])) == {"ps"}
    with pytest.raises(ValueError):
        signing_keys({"keys": "none"}, ["RS256"])


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, 3600),
        ("public, max-age=600", 600),
        ("max-age=5", MIN_TTL_SECONDS),
        ("max-age=99999999", MAX_TTL_SECONDS),
        ("no-store", 3600),
        ("s-maxage=10", 3600),
    ],
)
def test_a_jwks_is_kept_for_its_max_age_within_bounds(header: str | None, seconds: float) -> None:
    assert ttl_seconds(header) == seconds


OAUTH = {"oauth_issuer": "https://login.example.com/", "oauth_audience": "postroom"}


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"oauth_issuer": "http://login.example.com/"}, "POSTROOM_OAUTH_ISSUER"),
        ({"oauth_issuer": "login.example.com"}, "POSTROOM_OAUTH_ISSUER"),
        ({"oauth_jwks_url": "http://keys.example.com/jwks"}, "POSTROOM_OAUTH_JWKS_URL"),
        ({"oauth_audience": ""}, "POSTROOM_OAUTH_AUDIENCE"),
        ({"oauth_tenant_claim": " "}, "POSTROOM_OAUTH_TENANT_CLAIM"),
        ({"oauth_scope_claim": ""}, "POSTROOM_OAUTH_SCOPE_CLAIM"),
        ({"oauth_algorithms": "RS256,HS256"}, "POSTROOM_OAUTH_ALGORITHMS"),
        ({"oauth_algorithms": "none"}, "POSTROOM_OAUTH_ALGORITHMS"),
        ({"oauth_algorithms": ","}, "POSTROOM_OAUTH_ALGORITHMS"),
        ({"oauth_leeway_seconds": "-1"}, "POSTROOM_OAUTH_LEEWAY_SECONDS"),
        ({"oauth_jwks_refetch_seconds": "0"}, "POSTROOM_OAUTH_JWKS_REFETCH_SECONDS"),
    ],
)
def test_bad_oauth_settings_stop_start_up(overrides: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as bad:
        load_settings(**{**OAUTH, **overrides})
    assert bad.value.variable == variable


def test_oauth_settings_that_start() -> None:
    assert load_settings().oauth_issuer == ""  # off: nothing else is asked for
    load_settings(**OAUTH, oauth_algorithms="ES256, EdDSA")
    for local in ("http://127.0.0.1:8080", "http://localhost/realms/x"):
        load_settings(oauth_issuer=local, oauth_audience="postroom")
