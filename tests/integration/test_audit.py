"""The audit log on both databases: every state-changing call by an API key, a console
session or an admin command is recorded with its route, target, status, client address and
request id; reads and unauthenticated calls are not; a tenant sees only its own; nothing
changes an entry."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from postroom.cli.main import app as cli
from postroom.runtime import Runtime
from postroom.tenants.keys import parse_key
from postroom.tenants.service import authenticate
from tests.integration.conftest import new_client
from tests.integration.test_cli import cli_env
from tests.integration.test_delivery_control import start_campaign
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer


def entries(api: ApiClient, **params: Any) -> list[dict[str, Any]]:
    answer = api.http.get("/api/v1/audit", params=params)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["entries"]
    return found


def key_id(api: ApiClient) -> str:
    parsed = parse_key(api.http.headers["Authorization"].removeprefix("Bearer "))
    assert parsed is not None
    return parsed[0]


def test_api_calls_are_recorded_with_who_what_and_where(
    client: ApiClient, runtime: Runtime, live_server: LiveServer
) -> None:
    campaign_id = start_campaign(client, 2, hold=True)
    client.wait(campaign_id, until=("held",))
    cancelled = client.http.post(
        f"/api/v1/campaigns/{campaign_id}/cancel", headers={"X-Request-Id": "crm-42"}
    )
    assert cancelled.status_code == 200 and cancelled.headers["x-request-id"] == "crm-42"
    again = client.http.post(f"/api/v1/campaigns/{campaign_id}/cancel")
    assert again.status_code == 409
    client.http.post("/api/v1/suppressions", json={"email": "x@example.com"})
    client.http.delete("/api/v1/suppressions/x@example.com")
    client.http.get(f"/api/v1/campaigns/{campaign_id}/status")  # a read: not recorded
    httpx.post(f"{live_server.url}/api/v1/suppressions", json={"email": "y@example.com"})

    log = entries(client)
    actions = [(e["action"], e["status"]) for e in log]
    assert actions == [
        ("DELETE /api/v1/suppressions/{email}", 204),
        ("POST /api/v1/suppressions", 201),
        ("POST /api/v1/campaigns/{campaign_id}/cancel", 409),
        ("POST /api/v1/campaigns/{campaign_id}/cancel", 200),
        ("POST /api/v1/campaigns", 202),
        ("POST /api/v1/files/presigned-url", 201),
        ("POST /api/v1/templates/presigned-url", 201),
    ]
    by_action = {(e["action"], e["status"]): e for e in log}
    created = by_action[("POST /api/v1/campaigns", 202)]
    assert created["target"] == {"id": campaign_id}  # the id the creation answered
    cancel = by_action[("POST /api/v1/campaigns/{campaign_id}/cancel", 200)]
    assert cancel["target"] == {"campaign_id": campaign_id}
    assert cancel["request_id"] == "crm-42"
    assert by_action[("DELETE /api/v1/suppressions/{email}", 204)]["target"] == {
        "email": "x@example.com"
    }
    assert {e["actor"] for e in log} == {"api"}
    assert {e["key_id"] for e in log} == {key_id(client)}
    assert {e["client_address"] for e in log} == {"127.0.0.1"}
    assert all(re.fullmatch(r"req_[0-9a-f]{16}|crm-42", e["request_id"]) for e in log)

    # Paging, newest first.
    first = client.http.get("/api/v1/audit", params={"limit": 3}).json()
    rest = entries(client, cursor=first["next_cursor"])
    assert [e["id"] for e in first["entries"] + rest] == [e["id"] for e in log]
    assert client.http.get("/api/v1/audit", params={"cursor": "x"}).status_code == 400

    # Another tenant sees nothing of it, and no call changes the log.
    other = new_client(runtime, live_server, "other")
    try:
        assert entries(other) == []
    finally:
        other.close()
    for method in ("PUT", "PATCH", "DELETE"):
        assert client.http.request(method, "/api/v1/audit").status_code == 405
    assert len(entries(client)) == len(log)


def test_console_forms_and_admin_commands_are_recorded(
    client: ApiClient, runtime: Runtime, live_server: LiveServer, tmp_path: Path
) -> None:
    key = client.http.headers["Authorization"].removeprefix("Bearer ")
    browser = httpx.Client(base_url=live_server.url, follow_redirects=True)
    browser.post("/signin", data={"api_key": key})
    page = browser.get("/suppressions").text
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None
    added = browser.post("/suppressions", data={"email": "c@example.com", "csrf": match[1]})
    assert added.status_code == 200
    browser.close()
    (console_entry,) = [e for e in entries(client) if e["actor"] == "console"]
    assert console_entry["action"] == "POST /suppressions"
    assert console_entry["key_id"] == key_id(client) and console_entry["status"] == 303

    with runtime.db.read() as conn:
        tenant_id = authenticate(conn, key).tenant_id
    env = cli_env(tmp_path, runtime.settings.database_url)
    created = CliRunner().invoke(cli, ["key", "create", tenant_id, "--json"], env=env)
    assert created.exit_code == 0, created.output
    new_key = parse_key(created.stdout.split('"api_key": "')[1].split('"')[0])
    assert new_key is not None
    revoked = CliRunner().invoke(cli, ["key", "revoke", new_key[0]], env=env)
    assert revoked.exit_code == 0, revoked.output
    admin = [e for e in entries(client) if e["actor"] == "admin"]
    assert [(e["action"], e["target"]) for e in admin] == [
        ("postroom key revoke", {"key_id": new_key[0]}),
        ("postroom key create", {"key_id": new_key[0], "scopes": None}),
    ]
    assert all(e["key_id"] is None and e["client_address"].startswith("cli:") for e in admin)
