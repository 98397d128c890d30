"""Work notices on PostgreSQL: a worker in another runtime (its own engine and wake-ups, as in
another process) with a 60 s poll interval picks up a new campaign within about a second,
because the API's write sends NOTIFY; a notice is sent only when the write commits; and a
listening connection the server kills is replaced, so the next campaign is as quick."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from postroom.db.engine import Database
from postroom.db.notices import NoticeListener, notify_workers
from postroom.db.wakeups import Wakeups
from postroom.runtime import Runtime, build_runtime
from postroom.worker.loop import Worker
from tests.conftest import make_settings
from tests.integration.conftest import new_client
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.postgres

POLL_SECONDS = 60.0
#: About a second on a quiet machine; the margin is for a busy two-core one, and it is still
#: a quarter of the poll interval that a worker without the notice would wait.
QUICK_SECONDS = 15.0


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    return database_url


class WorkerThread:
    """A worker on its own runtime and event loop, as a separate worker process would be."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.loop = asyncio.new_event_loop()
        self.stop_event = asyncio.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(Worker(self.rt).run(self.stop_event))

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=30)


def listener_pids(rt: Runtime) -> list[int]:
    with rt.db.read() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND query = 'LISTEN postroom_work'"
                )
            ).scalars()
        )


def wait_for(condition: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.05)


@pytest.fixture
def api_and_worker(
    postgres_url: str, tmp_path: Path, server_port: int
) -> Iterator[tuple[Runtime, ApiClient, Runtime]]:
    api_rt = build_runtime(make_settings(postgres_url, tmp_path, server_port), var_dir=tmp_path)
    server = LiveServer(api_rt, server_port, with_worker=False)
    server.start()
    worker_settings = make_settings(
        postgres_url, tmp_path, server_port, poll_interval_seconds=POLL_SECONDS
    )
    worker_rt = build_runtime(worker_settings, var_dir=tmp_path)
    worker = WorkerThread(worker_rt)
    worker.start()
    client = new_client(api_rt, server)
    try:
        wait_for(lambda: listener_pids(api_rt), "the worker to listen")
        time.sleep(0.5)  # its first look for work is over; it sleeps on its poll interval
        yield api_rt, client, worker_rt
    finally:
        client.close()
        worker.stop()
        server.stop()
        worker_rt.close()
        api_rt.close()


def start_campaign(client: ApiClient) -> str:
    template_id = client.upload_template("<p>Hi {{ name }}</p>", "Hello")
    file_id = client.upload_file(b"email,name\nann@example.com,Ann\nbob@example.com,Bob\n")
    response = client.create_campaign(template_id=template_id, file_id=file_id)
    assert response.status_code == 202, response.text
    campaign_id: str = response.json()["transaction_id"]
    return campaign_id


def seconds_to_complete(client: ApiClient) -> float:
    started = time.monotonic()
    campaign_id = start_campaign(client)
    status = client.wait(campaign_id, timeout=POLL_SECONDS - 5)
    assert status["status"] == "completed", status
    return time.monotonic() - started


def test_a_worker_in_another_runtime_wakes_on_a_new_campaign(
    api_and_worker: tuple[Runtime, ApiClient, Runtime],
) -> None:
    _api_rt, client, _worker_rt = api_and_worker
    assert seconds_to_complete(client) < QUICK_SECONDS


def test_a_killed_listening_connection_is_replaced(
    api_and_worker: tuple[Runtime, ApiClient, Runtime],
) -> None:
    api_rt, client, _worker_rt = api_and_worker
    (first,) = listener_pids(api_rt)
    with api_rt.db.read() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    wait_for(lambda: listener_pids(api_rt) not in ([], [first]), "a new listening connection")
    time.sleep(0.5)  # the reconnection's own wake-up has passed
    assert seconds_to_complete(client) < QUICK_SECONDS


def test_a_notice_arrives_only_when_its_transaction_commits(postgres_url: str) -> None:
    rt_wakeups = Wakeups()
    listener = NoticeListener(postgres_url, rt_wakeups)
    listener.start()
    db = Database(postgres_url)
    loop = asyncio.new_event_loop()
    try:
        assert listener.listening.wait(10)
        time.sleep(0.2)  # past the wake-up that every (re)connection gives

        def send(commit: bool) -> None:
            with db.engine.connect() as conn, conn.begin() as transaction:
                notify_workers(conn, "test")
                if not commit:
                    transaction.rollback()

        async def woken_after(commit: bool) -> bool:
            waiting = asyncio.ensure_future(rt_wakeups.wait(1.5))
            await asyncio.sleep(0.05)
            await asyncio.to_thread(send, commit)
            return await waiting

        assert loop.run_until_complete(woken_after(commit=False)) is False
        assert loop.run_until_complete(woken_after(commit=True)) is True
    finally:
        loop.close()
        listener.stop()
        db.dispose()
