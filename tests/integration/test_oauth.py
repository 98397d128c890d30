"""OAuth 2.0 bearer tokens on both databases, against a real issuer on 127.0.0.1 (keys made
here, JWKS served over HTTP): a token does what its scopes allow for the tenant it names and
is recorded in the audit log by its subject; every kind of bad token is refused with its code;
key rotation at the issuer is picked up, made-up key ids do not make us hammer it, and the
keys we have outlive it going down. Without an issuer, tokens are refused as API keys."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from postroom.runtime import Runtime
from postroom.tenants.service import create_tenant, oauth_key_id
from tests.integration.conftest import ServerFactory
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer
from tests.support.oauth_issuer import AUDIENCE, OAuthIssuer, forged, new_rsa_key, public_pem

INVALID_TOKEN = 'Bearer realm="postroom", error="invalid_token"'
TICKETS = "/api/v1/templates/presigned-url"


@pytest.fixture
def issuer() -> Iterator[OAuthIssuer]:
    running = OAuthIssuer().start()
    try:
        yield running
    finally:
        running.stop()


def new_tenant(rt: Runtime, name: str) -> str:
    with rt.db.write() as conn:
        tenant_id, _key = create_tenant(conn, name, rt.clock.now())
    return tenant_id


def call(
    base_url: Any, token: str, method: str = "GET", path: str = "/api/v1/campaigns", **kwargs: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{base_url}{path}", headers=headers, timeout=30, **kwargs)


def test_a_token_does_what_its_scopes_allow_for_its_tenant(
    server_factory: ServerFactory, issuer: OAuthIssuer
) -> None:
    rt, keyed = server_factory.start(**issuer.settings())
    url = keyed.http.base_url
    tenant_id = new_tenant(rt, "globex")
    token = issuer.token(tenant_id, "openid campaigns:read templates:write")

    assert call(url, token).json() == {"campaigns": [], "next_cursor": None}
    ticket = call(url, token, "POST", TICKETS, json={"name": "welcome", "subject": "Hi"})
    assert ticket.status_code == 201, ticket.text
    template_id = ticket.json()["template_id"]
    refused = call(url, token, "POST", "/api/v1/suppressions", json={"email": "x@example.com"})
    assert refused.status_code == 403
    assert refused.json()["error"]["details"]["scope"] == "suppressions:write"
    assert refused.json()["error"]["message"] == "This token lacks the scope suppressions:write."
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    none_of_ours = call(url, issuer.token(tenant_id, "openid profile email"))
    assert none_of_ours.status_code == 403
    assert none_of_ours.json()["error"]["code"] == "missing_scope"

    # An EC key, scopes as a list in `scp`, a subject too long for the audit column as it is.
    long_subject = "service-account-" + "x" * 40 + "@globex.example"
    writer = issuer.token(tenant_id, None, kid="ec-1", scp=["templates:write"], sub=long_subject)
    again = call(url, writer, "POST", TICKETS, json={"name": "other", "subject": "Hi"})
    assert again.status_code == 201, again.text

    admin = httpx.Client(base_url=url, headers={"X-API-Key": issuer.token(tenant_id, "admin")})
    try:
        log = admin.get("/api/v1/audit").json()["entries"]
    finally:
        admin.close()
    assert [(e["actor"], e["key_id"], e["action"], e["status"]) for e in log] == [
        ("api", oauth_key_id(long_subject), f"POST {TICKETS}", 201),
        ("api", "oauth:svc-reporting", f"POST {TICKETS}", 201),
    ]
    assert len(oauth_key_id(long_subject)) == 40

    # The key of the other tenant goes on working, and sees nothing of globex.
    assert keyed.http.get(f"/api/v1/templates/{template_id}").status_code == 404
    assert keyed.http.get("/api/v1/audit").json()["entries"] == []
    # The console signs in with admin API keys only.
    signin = httpx.post(f"{url}/signin", data={"api_key": issuer.token(tenant_id, "admin")})
    assert signin.status_code == 401
    assert (issuer.discovery_fetches, issuer.jwks_fetches) == (1, 1)


def test_bad_tokens_are_refused_with_their_reason(
    server_factory: ServerFactory, issuer: OAuthIssuer
) -> None:
    rt, keyed = server_factory.start(**issuer.settings(oauth_jwks_url=issuer.jwks_url))
    url = keyed.http.base_url
    tenant_id = new_tenant(rt, "globex")
    now = int(time.time())
    claims = {
        "iss": issuer.url,
        "aud": AUDIENCE,
        "sub": "mallory",
        "exp": now + 300,
        "postroom_tenant": tenant_id,
        "scope": "admin",
    }
    rsa_pem = public_pem(issuer.keys["rsa-1"])

    assert call(url, issuer.token(tenant_id, exp=now - 5)).status_code == 200  # within leeway
    assert call(url, issuer.token(tenant_id, aud=["other", AUDIENCE])).status_code == 200
    cases = {
        "expired": (issuer.token(tenant_id, exp=now - 120), "token_expired"),
        "not yet valid": (issuer.token(tenant_id, nbf=now + 600), "invalid_token"),
        "issued in the future": (issuer.token(tenant_id, iat=now + 600), "invalid_token"),
        "no expiry": (issuer.token(tenant_id, exp=None), "invalid_token"),
        "another issuer": (issuer.token(tenant_id, iss="https://idp.example"), "invalid_token"),
        "another audience": (issuer.token(tenant_id, aud="https://other.example"), "invalid_token"),
        "another key": (issuer.token(tenant_id, key=new_rsa_key()), "invalid_token"),
        "an RSA key under the EC kid": (
            issuer.token(tenant_id, key=issuer.keys["rsa-1"], kid="ec-1"),
            "invalid_token",
        ),
        "alg none": (forged({"alg": "none", "kid": "rsa-1"}, claims, None), "invalid_token"),
        "HS256 keyed with the public key": (
            forged({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}, claims, rsa_pem),
            "invalid_token",
        ),
        "no kid": (forged({"alg": "RS256"}, claims, None), "invalid_token"),
        "an unknown kid": (
            issuer.token(tenant_id, key=issuer.keys["rsa-1"], kid="rsa-9"),
            "invalid_token",
        ),
        "no tenant claim": (issuer.token(None), "invalid_token"),
        "an unknown tenant": (issuer.token("tn_nobody"), "unknown_tenant"),
        "not a JWT": ("abc.def.ghi", "invalid_token"),
    }
    for name, (token, code) in cases.items():
        answer = call(url, token)
        assert answer.status_code == 401, (name, answer.text)
        assert answer.json()["error"]["code"] == code, (name, answer.text)
        assert answer.headers["WWW-Authenticate"] == INVALID_TOKEN, name
        assert token not in answer.text

    rsa_key = issuer.keys["rsa-1"]
    flood = [
        issuer.token(tenant_id, kid=f"made-{secrets.token_hex(4)}", key=rsa_key) for _ in range(40)
    ]
    for token in flood:
        assert call(url, token).json()["error"]["code"] == "invalid_token"
    # One fetch, and at most one more if this test took longer than the 30 s between fetches.
    assert 1 <= issuer.jwks_fetches <= 2
    assert issuer.discovery_fetches == 0  # the JWKS URL was given


def test_key_rotation_at_the_issuer_is_picked_up(
    server_factory: ServerFactory, issuer: OAuthIssuer
) -> None:
    rt, keyed = server_factory.start(**issuer.settings(oauth_jwks_refetch_seconds=0.5))
    url = keyed.http.base_url
    tenant_id = new_tenant(rt, "globex")
    old = issuer.token(tenant_id, kid="rsa-1")
    assert call(url, old).status_code == 200
    assert issuer.jwks_fetches == 1

    issuer.keys = {"rsa-2": new_rsa_key()}  # rsa-1 withdrawn, rsa-2 in its place
    time.sleep(0.6)
    assert call(url, issuer.token(tenant_id, kid="rsa-2")).status_code == 200
    assert issuer.jwks_fetches == 2
    withdrawn = call(url, old)
    assert withdrawn.status_code == 401
    assert withdrawn.json()["error"]["code"] == "invalid_token"


def test_cached_keys_outlive_the_issuer(server_factory: ServerFactory, issuer: OAuthIssuer) -> None:
    rt, keyed = server_factory.start(**issuer.settings(oauth_jwks_refetch_seconds=0.2))
    url = keyed.http.base_url
    tenant_id = new_tenant(rt, "globex")
    assert call(url, issuer.token(tenant_id)).status_code == 200

    issuer.stop()
    time.sleep(0.3)
    unknown = call(url, issuer.token(tenant_id, key=issuer.keys["rsa-1"], kid="rsa-7"))
    assert unknown.status_code == 401  # the refetch it asked for failed, and was logged
    assert unknown.json()["error"]["code"] == "invalid_token"
    assert call(url, issuer.token(tenant_id, kid="rsa-1")).status_code == 200
    assert call(url, issuer.token(tenant_id, kid="ec-1")).status_code == 200


def test_without_an_issuer_tokens_are_refused_as_keys(
    runtime: Runtime, live_server: LiveServer, issuer: OAuthIssuer
) -> None:
    tenant_id = new_tenant(runtime, "globex")
    answer = call(live_server.url, issuer.token(tenant_id, "admin"))
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_api_key"
    assert issuer.jwks_fetches == 0


def test_api_keys_are_never_read_as_tokens(
    server_factory: ServerFactory, issuer: OAuthIssuer
) -> None:
    _rt, keyed = server_factory.start(**issuer.settings())
    assert keyed.http.get("/api/v1/campaigns").status_code == 200
    wrong = ApiClient(str(keyed.http.base_url), "pr_abc.def.ghi")
    try:
        answer = wrong.http.get("/api/v1/campaigns")
    finally:
        wrong.close()
    assert answer.json()["error"]["code"] == "invalid_api_key"
    assert issuer.jwks_fetches == 0


def test_a_token_is_held_to_the_request_rate_by_its_subject(
    server_factory: ServerFactory, issuer: OAuthIssuer
) -> None:
    rt, keyed = server_factory.start(**issuer.settings(), api_rate_limit="1/m", api_rate_burst=2)
    url = keyed.http.base_url
    tenant_id = new_tenant(rt, "globex")
    token = issuer.token(tenant_id, "campaigns:read")
    first, second, third = (call(url, token) for _ in range(3))
    assert first.status_code == second.status_code == 200
    assert first.headers["RateLimit-Limit"] == "2"
    assert third.status_code == 429, third.text
    assert third.json()["error"]["code"] == "rate_limited"
    assert int(third.headers["Retry-After"]) > 0
    # Another subject of the same tenant has a bucket of its own.
    other = issuer.token(tenant_id, "campaigns:read", sub="svc-other")
    assert call(url, other).status_code == 200
