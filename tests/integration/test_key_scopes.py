"""API key scopes on both databases: a key does only what its scopes allow, a refusal is 403
naming the missing scope, admin holds every scope, every /api/v1 route names the scope it
needs, and only an admin key signs in to the console."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from postroom.api.scopes import needs
from postroom.cli.main import app as cli
from postroom.runtime import Runtime
from postroom.tenants.service import create_key, create_tenant
from tests.integration.test_cli import cli_env
from tests.integration.test_delivery_control import start_campaign
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer


def keyed(rt: Runtime, server: LiveServer, tenant_id: str, scopes: list[str] | None) -> ApiClient:
    with rt.db.write() as conn:
        key = create_key(conn, tenant_id, rt.clock.now(), scopes=scopes)
    return ApiClient(server.url, key)


def test_each_scope_allows_its_calls_and_nothing_else(
    runtime: Runtime, live_server: LiveServer
) -> None:
    with runtime.db.write() as conn:
        tenant_id, full_key = create_tenant(conn, "acme", runtime.clock.now())
    full = ApiClient(live_server.url, full_key)
    reader = keyed(runtime, live_server, tenant_id, ["campaigns:read"])
    sender = keyed(runtime, live_server, tenant_id, ["campaigns:write", "templates:write"])
    admin = keyed(runtime, live_server, tenant_id, ["admin"])
    try:
        campaign_id = start_campaign(sender, 1)  # templates:write, then campaigns:write
        assert reader.status(campaign_id)["transaction_id"] == campaign_id
        assert reader.http.get("/api/v1/analytics").status_code == 200

        refused = reader.http.post(f"/api/v1/campaigns/{campaign_id}/cancel")
        assert refused.status_code == 403
        error = refused.json()["error"]
        assert error["code"] == "missing_scope" and error["details"]["scope"] == "campaigns:write"
        assert "campaigns:write" in error["message"]
        for client, method, path, scope in (
            (reader, "POST", "/api/v1/suppressions", "suppressions:write"),
            (sender, "GET", f"/api/v1/campaigns/{campaign_id}/status", "campaigns:read"),
            (sender, "GET", "/api/v1/webhooks", "webhooks:write"),
            (sender, "GET", "/api/v1/audit", "admin"),
            (reader, "POST", "/api/v1/templates/presigned-url", "templates:write"),
        ):
            answer = client.http.request(
                method, path, json={"email": "x@example.com"} if method == "POST" else None
            )
            assert answer.status_code == 403, (path, answer.text)
            assert answer.json()["error"]["details"]["scope"] == scope
        for client in (admin, full):  # admin, and a key made without a list, hold every scope
            assert client.http.get("/api/v1/audit").status_code == 200
            assert client.http.get("/api/v1/webhooks").status_code == 200
            assert client.status(campaign_id)["status"] in ("sending", "completed")
    finally:
        for client in (full, reader, sender, admin):
            client.close()


def test_every_api_route_names_its_scope(live_server: LiveServer) -> None:
    spec = httpx.get(f"{live_server.url}/openapi.json").json()
    app_routes = live_server.server.config.app.routes  # type: ignore[attr-defined]
    scope_marker = needs("x").dependency.__qualname__  # type: ignore[attr-defined]
    for route in app_routes:
        path = getattr(route, "path", "")
        if not path.startswith("/api/v1/"):
            continue
        names = [d.call.__qualname__ for d in route.dependant.dependencies]
        assert scope_marker in names, path
    assert any(p.startswith("/api/v1/") for p in spec["paths"])


def test_keys_with_scopes_from_the_command_line_and_the_console(
    runtime: Runtime, live_server: LiveServer, tmp_path: Path
) -> None:
    with runtime.db.write() as conn:
        tenant_id, _key = create_tenant(conn, "acme", runtime.clock.now())
    env = cli_env(tmp_path, runtime.settings.database_url)
    made = CliRunner().invoke(
        cli, ["key", "create", tenant_id, "--scope", "campaigns:read", "--json"], env=env
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.split('"api_key": "')[1].split('"')[0]
    bad = CliRunner().invoke(cli, ["key", "create", tenant_id, "--scope", "everything"], env=env)
    assert bad.exit_code != 0 and "unknown_scope" in bad.output
    listed = CliRunner().invoke(cli, ["key", "list", tenant_id], env=env)
    assert "campaigns:read" in listed.stdout and "every scope" in listed.stdout

    signin = httpx.post(f"{live_server.url}/signin", data={"api_key": key})
    assert signin.status_code == 403 and "lacks the admin scope" in signin.text


@pytest.mark.parametrize("scopes", [[], ["campaigns:read", "nope"]])
def test_unknown_or_empty_scope_lists_are_refused(runtime: Runtime, scopes: list[str]) -> None:
    from postroom.errors import Unprocessable

    with runtime.db.write() as conn:
        tenant_id, _ = create_tenant(conn, "acme", runtime.clock.now())
    with pytest.raises(Unprocessable) as refused, runtime.db.write() as conn:
        create_key(conn, tenant_id, runtime.clock.now(), scopes=scopes)
    assert refused.value.code == "unknown_scope"
