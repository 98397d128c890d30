"""The command line as a user runs it: real processes, real ports, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from postroom.db.engine import Database
from postroom.db.tables import audit_log
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient
from tests.support.live_server import free_port

POSTROOM = str(Path(sys.executable).parent / "postroom")


def cli_env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTROOM_")}
    env.update(
        POSTROOM_DATABASE_URL=database_url,
        POSTROOM_STORAGE_URL=f"file://{tmp_path / 'blobs'}",
        POSTROOM_TRANSPORT_URL=f"capture://{tmp_path / 'outbox'}",
        POSTROOM_POLL_INTERVAL_SECONDS="0.05",
    )
    env.update(extra)
    return env


def postroom(
    *args: str, env: dict[str, str], cwd: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [POSTROOM, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def test_tenant_and_key_commands(tmp_path: Path, database_url: str) -> None:
    env = cli_env(tmp_path, database_url)
    created = json.loads(
        postroom("tenant", "create", "Acme", "--json", env=env, cwd=tmp_path).stdout
    )
    assert set(created) == {"tenant_id", "api_key"}
    assert created["api_key"].startswith("pr_")
    tenant_id = created["tenant_id"]
    second = json.loads(
        postroom("key", "create", tenant_id, "--json", env=env, cwd=tmp_path).stdout
    )
    keys = json.loads(postroom("key", "list", tenant_id, "--json", env=env, cwd=tmp_path).stdout)
    assert len(keys) == 2 and all(k["revoked_at"] is None for k in keys)
    key_id = second["api_key"].split("_")[1]
    postroom("key", "revoke", key_id, env=env, cwd=tmp_path)
    keys = json.loads(postroom("key", "list", tenant_id, "--json", env=env, cwd=tmp_path).stdout)
    assert [k["key_id"] for k in keys if k["revoked_at"]] == [key_id]
    missing = postroom("key", "revoke", "nope", env=env, cwd=tmp_path, check=False)
    assert missing.returncode == 1
    assert "key_not_found" in missing.stderr
    # Keys are stored as hashes only.
    if database_url.startswith("sqlite"):
        db_file = database_url.removeprefix("sqlite:///")
        assert created["api_key"].encode() not in Path(db_file).read_bytes()


def test_tenant_limits_and_tracking_are_shown_and_set(tmp_path: Path, database_url: str) -> None:
    env = cli_env(tmp_path, database_url)

    def limits(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return postroom("tenant", "limits", *args, env=env, cwd=tmp_path, check=check)

    tenant_id = json.loads(
        postroom("tenant", "create", "Acme", "--json", env=env, cwd=tmp_path).stdout
    )["tenant_id"]
    assert json.loads(limits(tenant_id, "--json").stdout)["rate_per_second"] is None
    limits(tenant_id, "--rate", "600/m", "--domain", "gmail.com=5/s", "--domain", "x.org=1")
    shown = json.loads(limits(tenant_id, "--json").stdout)
    assert shown["rate_per_second"] == 10.0
    assert shown["domain_rates_per_second"] == {"gmail.com": 5.0, "x.org": 1.0}
    limits(tenant_id, "--rate", "20/s")  # the domain limits stay
    shown = json.loads(limits(tenant_id, "--json").stdout)
    assert (shown["rate_per_second"], len(shown["domain_rates_per_second"])) == (20.0, 2)
    human = limits(tenant_id).stdout
    assert "20.0/s" in human and "gmail.com 5.0/s" in human
    bad = limits(tenant_id, "--rate", "fast", check=False)
    assert bad.returncode != 0 and "20/s" in bad.stderr
    assert json.loads(limits(tenant_id, "--json").stdout)["rate_per_second"] == 20.0
    limits(tenant_id, "--reset")
    shown = json.loads(limits(tenant_id, "--json").stdout)
    assert shown == {"tenant_id": tenant_id, "rate_per_second": None, "domain_rates_per_second": {}}
    unknown = limits("tn_nope", check=False)
    assert unknown.returncode == 1 and "tenant_not_found" in unknown.stderr

    def tracking(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return postroom("tenant", "tracking", *args, env=env, cwd=tmp_path, check=check)

    shown = json.loads(tracking(tenant_id, "--json").stdout)
    assert (shown["track_opens"], shown["track_clicks"]) == (True, True)
    tracking(tenant_id, "--no-opens")
    shown = json.loads(tracking(tenant_id, "--json").stdout)
    assert (shown["track_opens"], shown["track_clicks"]) == (False, True)
    assert "not tracked" in tracking(tenant_id, "--no-clicks").stdout
    unknown = tracking("tn_nope", "--opens", check=False)
    assert unknown.returncode == 1 and "tenant_not_found" in unknown.stderr


def test_tenant_quotas_are_shown_set_and_audited(tmp_path: Path, database_url: str) -> None:
    env = cli_env(tmp_path, database_url, POSTROOM_QUOTA_MESSAGES_PER_DAY="1000")

    def quotas(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return postroom("tenant", "quotas", *args, env=env, cwd=tmp_path, check=check)

    tenant_id = json.loads(
        postroom("tenant", "create", "Acme", "--json", env=env, cwd=tmp_path).stdout
    )["tenant_id"]
    shown = json.loads(quotas(tenant_id, "--json").stdout)
    assert (shown["messages_per_day"], shown["rows_per_campaign"]) == (1000, 0)
    assert (shown["api_rate_per_second"], shown["api_burst"]) == (20.0, 40)
    quotas(tenant_id, "--file-bytes", "5000", "--rows-per-campaign", "100", "--api-rate", "600/m")
    shown = json.loads(quotas(tenant_id, "--json").stdout)
    assert (shown["file_bytes"], shown["rows_per_campaign"]) == (5000, 100)
    assert (shown["api_rate_per_second"], shown["messages_per_day"]) == (10.0, 1000)
    quotas(tenant_id, "--messages-per-day", "0", "--file-bytes", "default")
    shown = json.loads(quotas(tenant_id, "--json").stdout)
    assert (shown["messages_per_day"], shown["file_bytes"]) == (0, 2 * 1024**3)
    human = quotas(tenant_id).stdout
    assert "rows_per_campaign  100" in human and "messages_per_day   no limit" in human
    too_big = quotas(tenant_id, "--file-bytes", str(3 * 1024**3), check=False)
    assert too_big.returncode != 0 and "POSTROOM_FILE_MAX_BYTES" in too_big.stderr
    assert quotas(tenant_id, "--api-rate", "fast", check=False).returncode != 0
    unknown = quotas("tn_nope", check=False)
    assert unknown.returncode == 1 and "tenant_not_found" in unknown.stderr
    db = Database(database_url)
    with db.read() as conn:
        rows = conn.execute(
            audit_log.select().where(audit_log.c.action == "postroom tenant quotas")
        ).all()
    db.dispose()
    assert [row.target for row in rows] == [
        {"file_bytes": 5000, "rows_per_campaign": 100, "api_rate": 10.0},
        {"file_bytes": "default", "messages_per_day": 0},
    ]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("POSTROOM_DATABASE_URL", "mysql://x", "POSTROOM_DATABASE_URL"),
        ("POSTROOM_STORAGE_URL", "ftp://x", "POSTROOM_STORAGE_URL"),
        ("POSTROOM_TRANSPORT_URL", "pigeon://x", "POSTROOM_TRANSPORT_URL"),
        ("POSTROOM_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/x", "cannot connect"),
        ("POSTROOM_SMTP_POOL_SIZE", "many", "POSTROOM_SMTP_POOL_SIZE"),
        ("POSTROOM_WORKER_ROLES", "send,events", "unknown worker role 'events'; the roles are"),
    ],
)
def test_bad_configuration_stops_with_one_line(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    env = cli_env(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", **{variable: value})
    result = postroom("serve", "--port", str(free_port()), env=env, cwd=tmp_path, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_api_and_worker_refuse_an_unmigrated_database(tmp_path: Path) -> None:
    env = cli_env(tmp_path, f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    result = postroom("worker", env=env, cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "postroom migrate" in result.stderr
    postroom("migrate", env=env, cwd=tmp_path)


def test_worker_refuses_an_unknown_role_naming_the_valid_ones(tmp_path: Path) -> None:
    env = cli_env(tmp_path, f"sqlite:///{tmp_path / 'roles.sqlite'}")
    result = postroom("worker", "--roles", "files,mail", env=env, cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "configuration error: --roles: unknown worker role 'mail'; "
        "the roles are files, send, schedule, webhooks, retention"
    )


def test_worker_runs_at_the_configured_niceness(tmp_path: Path) -> None:
    env = cli_env(tmp_path, f"sqlite:///{tmp_path / 'w.sqlite'}", POSTROOM_WORKER_NICENESS="7")
    postroom("migrate", env=env, cwd=tmp_path)
    before = os.getpriority(os.PRIO_PROCESS, 0)
    worker = subprocess.Popen([POSTROOM, "worker"], env=env, cwd=tmp_path, text=True)
    try:
        deadline = time.monotonic() + 30
        niceness = before
        while niceness == before and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.05)
            niceness = os.getpriority(os.PRIO_PROCESS, worker.pid)
        assert niceness == min(before + 7, 19)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert worker.returncode == 0


def test_api_serves_from_several_processes_and_stops_them_all(tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(
        tmp_path,
        f"sqlite:///{tmp_path / 'api.sqlite'}",
        POSTROOM_BASE_URL=f"http://127.0.0.1:{port}",
        POSTROOM_SECRET_KEY="several-processes",
    )
    postroom("migrate", env=env, cwd=tmp_path)
    key = json.loads(postroom("tenant", "create", "t", "--json", env=env, cwd=tmp_path).stdout)
    process = start_server(port, env, tmp_path, "api", "--processes", "2")
    try:
        children = _children(process.pid)
        servers = [pid for pid in children if b"spawn_main" in _cmdline(pid)]
        assert len(servers) == 2
        api = ApiClient(f"http://127.0.0.1:{port}", key["api_key"])
        template_id = api.upload_template("<p>Hi {{ name }}</p>", "Hello")
        for _ in range(10):  # whichever process answers knows the tenant and the template
            assert api.http.get(f"/api/v1/templates/{template_id}").status_code == 200
        api.close()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        assert "Traceback" not in output
        assert all(_has_ended(pid) for pid in children), [
            Path(f"/proc/{pid}/stat").read_text() for pid in children if not _has_ended(pid)
        ]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _has_ended(pid: int, wait_seconds: float = 10) -> bool:
    """Gone, or a zombie waiting for whoever adopted it to reap it."""
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def test_serve_runs_a_campaign_and_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = embedded_env(port)
    process = start_serve(port, env, tmp_path)
    try:
        key = json.loads(postroom("tenant", "create", "t", "--json", env=env, cwd=tmp_path).stdout)
        api = ApiClient(f"http://127.0.0.1:{port}", key["api_key"])
        template_id = api.upload_template("<p>Hi {{ name }}</p>", "Hello {{ name }}")
        rows = [["email", "name"]] + [[f"u{i}@example.com", f"U{i}"] for i in range(20)]
        file_id = api.upload_file(csv_bytes(rows))
        campaign_id = api.create_campaign(template_id=template_id, file_id=file_id).json()[
            "transaction_id"
        ]
        assert api.wait(campaign_id)["counts"]["sent"] == 20
        api.close()
        listed = postroom("outbox", "list", "--limit", "100", env=env, cwd=tmp_path).stdout
        assert len(listed.strip().splitlines()) == 20
        first_id = listed.split()[0]
        as_json = json.loads(
            postroom("outbox", "list", "--json", "--limit", "5", env=env, cwd=tmp_path).stdout
        )
        assert len(as_json) == 5
        assert {"message_id", "sender", "recipient", "subject"} <= set(as_json[0])
        shown = postroom("outbox", "show", first_id, env=env, cwd=tmp_path).stdout
        assert "Subject: Hello U" in shown
        assert (tmp_path / "var" / "postroom.db").exists()
        assert (tmp_path / "var" / "secret.key").exists()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        # uvicorn re-raises SIGTERM once shutdown is complete, so the process ends by it.
        assert process.returncode in (0, -signal.SIGTERM), output
        assert "Application shutdown complete" in output
        assert "stopped" in output.split("Waiting for application shutdown")[1]
        assert "Traceback" not in output
        assert f"http://127.0.0.1:{port}" in output
        assert "tenant create" in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def embedded_env(port: int) -> dict[str, str]:
    """No POSTROOM_* but the base URL: the embedded defaults, relative to the working dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTROOM_")}
    env["POSTROOM_BASE_URL"] = f"http://127.0.0.1:{port}"
    return env


def start_serve(port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """`postroom serve` as a user runs it, healthy on return; output captured."""
    return start_server(port, env, cwd, "serve")


def start_server(
    port: int, env: dict[str, str], cwd: Path, command: str, *options: str
) -> subprocess.Popen[str]:
    """`postroom serve` or `postroom api` with ``options``, healthy on return; output captured."""
    process = subprocess.Popen(
        [POSTROOM, command, "--port", str(port), *options],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}")
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process


def wait_for_health(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not become healthy")
