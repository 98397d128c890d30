"""Health for orchestrators, against the real app on a port: ``/healthz`` answers whatever the
dependencies do; ``/readyz`` checks the database, its schema and the blob store and names
what failed; a worker answers ``/healthz`` on its metrics port."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from postroom.db.migrate import schema_revisions
from postroom.observability.readiness import PROBE_PREFIX
from postroom.runtime import Runtime, build_runtime
from postroom.worker.loop import STALL_SECONDS, Worker
from tests.conftest import make_settings
from tests.integration.conftest import ServerFactory
from tests.integration.test_cli import cli_env, postroom
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer, free_port
from tests.support.worker_process import worker_with_metrics_port


def url_of(api: ApiClient) -> str:
    return str(api.http.base_url).rstrip("/")


def readyz(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=10)


def failure(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "not_ready"
    return error


def test_ready_on_a_working_platform(server_factory: ServerFactory, tmp_path: Path) -> None:
    _rt, api = server_factory.start()
    ready = readyz(url_of(api))
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"database": "ok", "migrations": "ok", "blob_store": "ok"}
    health = httpx.get(f"{url_of(api)}/healthz", timeout=5)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    # The probe object went in and out of the store: nothing is left behind.
    probes = tmp_path / "blobs" / PROBE_PREFIX
    assert probes.is_dir() and list(probes.iterdir()) == []


def test_a_storage_directory_that_is_a_file_is_not_ready_and_named(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    # A regular file where the directory should be: no write can succeed there, root or not.
    blocked = tmp_path / "blocked-blobs"
    blocked.write_text("not a directory")
    _rt, api = server_factory.start(storage_url=f"file://{blocked}")
    error = failure(readyz(url_of(api)))
    assert error["details"]["failed"] == ["blob_store"]
    assert error["details"]["checks"]["database"] == "ok"
    assert error["details"]["checks"]["blob_store"].startswith("failed: ")
    assert "blob_store" in error["message"]
    assert str(tmp_path) not in error["message"]  # no paths in a public answer
    # Liveness is not readiness: the process still answers.
    assert httpx.get(f"{url_of(api)}/healthz", timeout=5).status_code == 200
    # A failure is not remembered: once the store works, the next probe is ready.
    blocked.unlink()
    assert readyz(url_of(api)).status_code == 200


@pytest.fixture
def api_servers() -> Iterator[list[LiveServer]]:
    """The servers a test started with ``api_only``, stopped after it."""
    servers: list[LiveServer] = []
    yield servers
    for server in servers:
        server.stop()
        server.rt.close()


def api_only(database_url: str, tmp_path: Path, servers: list[LiveServer]) -> LiveServer:
    """The app without its worker (whose steps would only fail) on a database that may be
    out of reach; the runtime connects lazily, so it starts."""
    port = free_port()
    settings = make_settings(database_url, tmp_path, port)
    server = LiveServer(build_runtime(settings, var_dir=tmp_path / "var"), port, with_worker=False)
    servers.append(server)
    server.start()
    return server


def test_an_unreachable_database_is_not_ready_and_named(
    tmp_path: Path, api_servers: list[LiveServer]
) -> None:
    nothing_listens = free_port()
    url = f"postgresql+psycopg://postroom:secret@127.0.0.1:{nothing_listens}/postroom"
    server = api_only(url, tmp_path, api_servers)
    error = failure(readyz(server.url))
    assert error["details"]["failed"] == ["database"]
    assert error["details"]["checks"] == {
        "database": "failed: OperationalError",
        "migrations": "not checked",
        "blob_store": "ok",
    }
    assert "secret" not in error["message"] and str(nothing_listens) not in error["message"]
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_a_database_that_does_not_answer_fails_within_the_timeout(
    tmp_path: Path, api_servers: list[LiveServer]
) -> None:
    # Accepts connections (the kernel's backlog) and never says a word: a hung database.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        url = f"postgresql+psycopg://postroom@127.0.0.1:{port}/postroom"
        server = api_only(url, tmp_path, api_servers)
        for _ in range(2):  # the second probe waits on the first one's check, not a new one
            started = time.monotonic()
            error = failure(readyz(server.url))
            assert time.monotonic() - started < 5
            assert error["details"]["checks"]["database"] == "no answer within 2 s"
            assert error["details"]["checks"]["migrations"] == "not checked"
            assert error["details"]["failed"] == ["database"]
            assert error["details"]["checks"]["blob_store"] == "ok"


def test_a_schema_behind_the_code_is_not_ready_one_ahead_is(
    server_factory: ServerFactory,
) -> None:
    rt, api = server_factory.start()
    revisions = schema_revisions()
    older = sorted(revisions.known - {revisions.head})[0]

    def set_revision(revision: str) -> None:
        with rt.db.write() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})

    set_revision(older)
    error = failure(readyz(url_of(api)))
    assert error["details"]["failed"] == ["migrations"]
    assert error["details"]["checks"]["migrations"] == "behind: run postroom migrate"
    # Newer than this code (a rolling upgrade ran `postroom migrate` first): still serving.
    set_revision("f0000000newer")
    assert readyz(url_of(api)).status_code == 200
    assert revisions.head is not None
    set_revision(revisions.head)
    assert readyz(url_of(api)).status_code == 200


def test_the_worker_answers_healthz_on_its_metrics_port(tmp_path: Path) -> None:
    env = cli_env(tmp_path, f"sqlite:///{tmp_path / 'w.sqlite'}")
    postroom("migrate", env=env, cwd=tmp_path)
    with worker_with_metrics_port(env, tmp_path) as base:
        health = httpx.get(f"{base}/healthz", timeout=5)
        assert health.status_code == 200
        assert health.headers["content-type"] == "application/json"
        body = health.json()
        assert body["status"] == "ok" and body["worker_id"]
        assert 0 <= body["seconds_since_beat"] < 5
        assert "postroom_sends_total" in httpx.get(f"{base}/metrics", timeout=5).text


def test_a_worker_whose_loop_stopped_coming_round_is_stalled(runtime: Runtime) -> None:
    now = [1000.0]
    worker = Worker(runtime, monotonic=lambda: now[0])
    status, body = worker.liveness()
    assert status == 200 and body["seconds_since_beat"] == 0
    now[0] += STALL_SECONDS
    assert worker.liveness()[0] == 200
    now[0] += 1
    status, body = worker.liveness()
    assert status == 503
    assert body["error"]["code"] == "worker_stalled"
    assert body["error"]["details"]["seconds_since_beat"] == STALL_SECONDS + 1
