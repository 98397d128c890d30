"""The request rate per API key on both databases, against real servers on free ports and a
frozen clock: the burst goes through with RateLimit headers, the next request is 429 with
Retry-After, the bucket refills with time, two servers on one database share it, keys are
independent, routes outside /api/v1 are never limited, and the SDK waits as it is told."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from postroom.client import Client
from postroom.clock import FrozenClock
from postroom.runtime import Runtime, build_runtime
from postroom.tenants.quotas import OwnLimits, set_own_limits
from postroom.tenants.service import create_key, create_tenant
from tests.conftest import make_settings
from tests.support.live_server import LiveServer, free_port


class Servers:
    """API servers (no worker) on one database, sharing one frozen clock."""

    def __init__(self, database_url: str, tmp_path: Path) -> None:
        self.database_url = database_url
        self.tmp_path = tmp_path
        self.clock = FrozenClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
        self.started: list[tuple[Runtime, LiveServer]] = []

    def start(self, **overrides: object) -> tuple[Runtime, LiveServer]:
        port = free_port()
        values: dict[str, object] = {"api_rate_limit": "5/s", "api_rate_burst": 2, **overrides}
        settings = make_settings(self.database_url, self.tmp_path, port, **values)
        rt = build_runtime(settings, clock=self.clock, var_dir=self.tmp_path / "var")
        server = LiveServer(rt, port, with_worker=False)
        server.start()
        self.started.append((rt, server))
        return rt, server

    def stop_all(self) -> None:
        for rt, server in self.started:
            server.stop()
            rt.close()


@pytest.fixture
def servers(database_url: str, tmp_path: Path) -> Iterator[Servers]:
    started = Servers(database_url, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def new_key(rt: Runtime, tenant_id: str | None = None) -> tuple[str, str]:
    """(tenant id, key): a new tenant's first key, or another key of ``tenant_id``."""
    with rt.db.write() as conn:
        if tenant_id is None:
            return create_tenant(conn, "acme", rt.clock.now())
        return tenant_id, create_key(conn, tenant_id, rt.clock.now())


def get(server: LiveServer, key: str, path: str = "/api/v1/campaigns") -> httpx.Response:
    return httpx.get(server.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_the_burst_goes_then_429_with_retry_after_then_the_bucket_refills(
    servers: Servers,
) -> None:
    rt, server = servers.start()
    _tenant, key = new_key(rt)
    # A route that checks its key inside a write transaction is charged on it.
    assert get(server, key, "/api/v1/templates/tpl_nope").status_code == 404
    servers.clock.advance(10)

    first = get(server, key)
    assert first.status_code == 200, first.text
    assert first.headers["RateLimit-Limit"] == "2"
    assert first.headers["RateLimit-Remaining"] == "1"
    assert first.headers["RateLimit-Reset"] == "1"  # 0.2 s until the burst is whole, rounded up
    assert first.headers["RateLimit-Policy"] == "2;w=1"
    assert "Retry-After" not in first.headers
    second = get(server, key)
    assert (second.status_code, second.headers["RateLimit-Remaining"]) == (200, "0")

    refused = get(server, key)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["details"] == {"limit": 2, "per_second": 5.0, "retry_after_seconds": 1}
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["RateLimit-Limit"] == "2"
    # Writes are limited the same way, before their body is looked at.
    write = httpx.post(
        server.url + "/api/v1/files/presigned-url",
        headers={"Authorization": f"Bearer {key}"},
        json={"filename": "a.csv"},
    )
    assert write.status_code == 429

    servers.clock.advance(0.2)  # one request's worth: refused requests were not charged
    again = get(server, key)
    assert (again.status_code, again.headers["RateLimit-Remaining"]) == (200, "0")
    assert get(server, key).status_code == 429
    servers.clock.advance(10)
    assert [get(server, key).status_code for _ in range(3)] == [200, 200, 429]


def test_two_servers_on_one_database_share_a_keys_bucket(servers: Servers) -> None:
    rt, one = servers.start()
    _rt, two = servers.start()
    _tenant, key = new_key(rt)
    assert get(one, key).status_code == 200
    assert get(two, key).status_code == 200
    assert get(one, key).status_code == 429
    assert get(two, key).status_code == 429
    servers.clock.advance(0.2)
    assert get(two, key).status_code == 200
    assert get(one, key).status_code == 429


def test_each_key_has_its_own_bucket(servers: Servers) -> None:
    rt, server = servers.start()
    tenant_id, first = new_key(rt)
    _tenant, second = new_key(rt, tenant_id)
    _other, other_tenant = new_key(rt)
    assert [get(server, first).status_code for _ in range(3)] == [200, 200, 429]
    assert get(server, second).status_code == 200
    assert get(server, other_tenant).status_code == 200


def test_a_tenant_may_have_its_own_rate(servers: Servers) -> None:
    rt, server = servers.start()
    unlimited_tenant, unlimited = new_key(rt)
    roomy_tenant, roomy = new_key(rt)
    with rt.db.write() as conn:
        set_own_limits(conn, unlimited_tenant, OwnLimits(api_rate=0))
        set_own_limits(conn, roomy_tenant, OwnLimits(api_rate=1, api_burst=5))
    answers = [get(server, unlimited) for _ in range(10)]
    assert {a.status_code for a in answers} == {200}
    assert "RateLimit-Limit" not in answers[0].headers
    statuses = [get(server, roomy).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    refused = get(server, roomy)
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["RateLimit-Policy"] == "5;w=5"


def test_routes_outside_the_api_are_never_limited(servers: Servers) -> None:
    rt, server = servers.start()
    _tenant, key = new_key(rt)
    auth = {"Authorization": f"Bearer {key}"}
    ticket = httpx.post(
        server.url + "/api/v1/files/presigned-url", headers=auth, json={"filename": "a.csv"}
    ).json()
    assert get(server, key).status_code == 200
    assert get(server, key).status_code == 429
    put = httpx.put(
        ticket["upload_url"], content=b"email\na@example.com\n", headers=ticket["headers"]
    )
    assert put.status_code == 201, put.text
    for path in ("/healthz", "/metrics"):
        answer = httpx.get(server.url + path, headers=auth)
        assert answer.status_code == 200
        assert "RateLimit-Limit" not in answer.headers
    # A key that is not valid is refused as before, and charges no bucket.
    assert get(server, "pr_nope_nope").status_code == 401


def test_the_sdk_waits_as_retry_after_says(servers: Servers) -> None:
    rt, server = servers.start()
    _tenant, key = new_key(rt)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        servers.clock.advance(seconds)

    with Client(server.url, key, sleep=sleep) as client:
        for _ in range(6):  # the burst of two, a wait of a second (a whole burst again), ...
            assert list(client.iter_campaigns()) == []
    assert waits == [1.0, 1.0]
