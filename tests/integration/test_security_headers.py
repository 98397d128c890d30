"""Security headers and the session cookie, read off real responses of the live app: every
response carries the policy, console pages carry no inline script for it to block, and the
cookie is Secure behind an https base URL."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from postroom.api.security_headers import CONSOLE_POLICY
from postroom.runtime import Runtime
from tests.integration.conftest import ServerFactory
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer

TEMPLATES = Path(__file__).parents[2] / "src" / "postroom" / "console" / "templates"
#: A script element without src, or an on...= event handler attribute.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=", re.IGNORECASE)


def assert_secured(response: httpx.Response, policy: str = CONSOLE_POLICY) -> None:
    assert response.headers["content-security-policy"] == policy, response.url
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_the_console_policy_runs_only_our_own_scripts() -> None:
    directives = dict(d.split(" ", 1) for d in CONSOLE_POLICY.split("; "))
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'"
    assert "unsafe-eval" not in CONSOLE_POLICY


def test_no_console_template_has_inline_script() -> None:
    offenders = {
        path.name: INLINE_SCRIPT.findall(path.read_text()) for path in TEMPLATES.glob("*.html")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def _sign_in(server_url: str, key: str) -> httpx.Client:
    browser = httpx.Client(base_url=server_url, timeout=30)
    response = browser.post("/signin", data={"api_key": key})
    assert response.status_code == 303, response.text
    return browser


def test_every_kind_of_response_carries_the_headers(
    runtime: Runtime, live_server: LiveServer, client: ApiClient
) -> None:
    template_id = client.upload_template("<p>Hi {{ name }}</p>", "Hi")
    file_id = client.upload_file(csv_bytes([["email", "name"], ["a@example.com", "Ann"]]))
    campaign_id = client.create_campaign(
        template_id=template_id, file_id=file_id, hold=True
    ).json()["transaction_id"]
    client.wait(campaign_id, until=("held",))
    key = client.http.headers["Authorization"].removeprefix("Bearer ")
    anonymous = httpx.Client(base_url=live_server.url, timeout=30)
    console = _sign_in(live_server.url, key)
    pages = [
        "/campaigns",
        "/campaigns/new",
        f"/campaigns/{campaign_id}",
        f"/campaigns/{campaign_id}/live",
        f"/campaigns/{campaign_id}/preview",
        "/suppressions",
        "/outbox",
        "/keys",
        "/webhooks",
    ]
    for path in pages:
        page = console.get(path)
        assert page.status_code == 200, path
        assert_secured(page)
        assert INLINE_SCRIPT.findall(page.text) == [], path
    assert '<script src="/static/console.js" defer></script>' in console.get("/campaigns").text
    for response in (
        anonymous.get("/signin"),
        anonymous.get("/campaigns"),  # a redirect to /signin
        anonymous.get("/healthz"),
        anonymous.get("/static/console.js"),
        anonymous.get("/static/vendor/htmx.min.js"),
        anonymous.get("/no/such/page"),
        client.http.get(f"/api/v1/campaigns/{campaign_id}/status"),
        client.http.get("/api/v1/suppressions/export.csv"),
        console.get(f"/campaigns/{campaign_id}/errors.csv"),
        anonymous.post("/signin", data={"api_key": "pr_nope_wrong"}),
    ):
        assert_secured(response)
    script = anonymous.get("/static/console.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "immutable" in script.headers["cache-control"]  # the static cache is kept
    # FastAPI's API docs load their own scripts from a CDN: only framing is restricted there.
    assert_secured(anonymous.get("/docs"), policy="frame-ancestors 'none'")
    anonymous.close()
    console.close()


@pytest.mark.parametrize(
    ("base_url", "secure"), [("https://mail.example.com", True), ("http://127.0.0.1", False)]
)
def test_the_session_cookie_is_secure_behind_https(
    server_factory: ServerFactory, base_url: str, secure: bool
) -> None:
    _rt, api = server_factory.start(base_url=base_url)
    key = api.http.headers["Authorization"].removeprefix("Bearer ")
    response = httpx.post(str(api.http.base_url.join("/signin")), data={"api_key": key})
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert cookie.startswith("postroom_session=")
    assert {"httponly", "path", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower()
    assert ("secure" in attributes) is secure
    assert_secured(response)
