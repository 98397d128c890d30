"""The console's sign-in form against the live app: attempts from one address are limited
(good and bad keys alike), the refusal says when to come back, and a wrong key is told apart
from a throttled one."""

from __future__ import annotations

import httpx
from sqlalchemy import delete

from postroom.console.session import COOKIE_NAME
from postroom.console.sign_in_throttle import ATTEMPTS_PER_MINUTE, bucket_key
from postroom.db.tables import rate_limits
from postroom.runtime import Runtime
from postroom.tenants.service import create_tenant
from tests.support.live_server import LiveServer


def test_sign_in_attempts_from_one_address_are_limited(
    runtime: Runtime, live_server: LiveServer
) -> None:
    with runtime.db.write() as conn:
        _tenant, key = create_tenant(conn, "acme", runtime.clock.now())
    browser = httpx.Client(base_url=live_server.url, timeout=30)
    guesses = [
        browser.post("/signin", data={"api_key": f"pr_{n:024x}_wrong"})
        for n in range(ATTEMPTS_PER_MINUTE)
    ]
    assert [g.status_code for g in guesses] == [401] * ATTEMPTS_PER_MINUTE
    refused = browser.post("/signin", data={"api_key": key})  # even the right key, now
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60 // ATTEMPTS_PER_MINUTE + 1
    assert "Too many sign-in attempts" in refused.text
    assert COOKIE_NAME not in refused.cookies

    with runtime.db.write() as conn:  # as if the minute had passed
        conn.execute(delete(rate_limits).where(rate_limits.c.key == bucket_key("127.0.0.1")))
    signed_in = browser.post("/signin", data={"api_key": key})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/campaigns"
    browser.close()
