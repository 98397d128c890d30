"""Fixtures for flows over HTTP: a tenant, its client, and a server relaying to SMTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from postroom.runtime import Runtime, build_runtime
from postroom.tenants.service import create_tenant
from tests.conftest import make_settings
from tests.support.api_client import ApiClient
from tests.support.counts import assert_counts_match_rows
from tests.support.live_server import LiveServer
from tests.support.smtp_relay import SmtpRelay


def new_client(rt: Runtime, server: LiveServer, name: str = "acme") -> ApiClient:
    with rt.db.write() as conn:
        _tenant_id, key = create_tenant(conn, name, rt.clock.now())
    return ApiClient(server.url, key)


@pytest.fixture
def client(runtime: Runtime, live_server: LiveServer) -> Iterator[ApiClient]:
    api = new_client(runtime, live_server)
    try:
        yield api
    finally:
        api.close()


class ServerFactory:
    """Starts live servers with settings overrides (limits, transport) for one test."""

    def __init__(self, database_url: str, tmp_path: Path, port: int) -> None:
        self.database_url = database_url
        self.tmp_path = tmp_path
        self.port = port
        self.started: list[tuple[Runtime, LiveServer, ApiClient]] = []

    def start(self, **overrides: object) -> tuple[Runtime, ApiClient]:
        settings = make_settings(self.database_url, self.tmp_path, self.port, **overrides)
        rt = build_runtime(settings, var_dir=self.tmp_path / "var")
        server = LiveServer(rt, self.port)
        server.start()
        api = new_client(rt, server)
        self.started.append((rt, server, api))
        return rt, api

    def stop_all(self) -> None:
        for rt, server, api in self.started:
            api.close()
            server.stop()
            assert_counts_match_rows(rt)
            rt.close()


@pytest.fixture
def server_factory(database_url: str, tmp_path: Path, server_port: int) -> Iterator[ServerFactory]:
    factory = ServerFactory(database_url, tmp_path, server_port)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def relay_server(
    database_url: str, tmp_path: Path, server_port: int, smtp_relay: SmtpRelay
) -> Iterator[tuple[Runtime, LiveServer]]:
    """A live server whose transport is a real SMTP relay (aiosmtpd) on 127.0.0.1."""
    settings = make_settings(database_url, tmp_path, server_port, transport_url=smtp_relay.url)
    rt = build_runtime(settings, var_dir=tmp_path / "var")
    server = LiveServer(rt, server_port)
    server.start()
    try:
        yield rt, server
    finally:
        server.stop()
        assert_counts_match_rows(rt)
        rt.close()
