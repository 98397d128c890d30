"""Fixtures for flows over HTTP: a tenant, its client, and a server relaying to SMTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from postroom.runtime import Runtime
from postroom.tenants.service import create_tenant
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer


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
