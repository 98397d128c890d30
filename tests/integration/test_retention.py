"""Retention: recipient CSVs go a set time after their campaign read them, and the
personalisation of done messages a set time after they were done; counts, analytics and
events stay. Applied by the worker on its own, and by ``postroom retention run``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from postroom.db.tables import campaigns, events, files, messages, webhook_deliveries
from postroom.retention.sources import delete_expired_sources
from postroom.retention.webhook_deliveries import delete_finished_deliveries
from postroom.runtime import Runtime, build_runtime
from tests.conftest import make_settings
from tests.integration.conftest import new_client
from tests.integration.test_cli import cli_env, postroom
from tests.integration.test_erasure import campaign, source_file
from tests.support.api_client import ApiClient
from tests.support.counts import assert_counts_match_rows
from tests.support.live_server import LiveServer
from tests.support.webhook_receiver import Answer, WebhookReceiver


class ShiftedClock:
    """The wall clock, moved on by hand: the worker keeps running while days go by."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def shifted(
    database_url: str, tmp_path: Path, server_port: int
) -> Iterator[tuple[Runtime, ApiClient, ShiftedClock]]:
    settings = make_settings(database_url, tmp_path, server_port, personalisation_retention_days=3)
    clock = ShiftedClock()
    rt = build_runtime(settings, clock=clock, var_dir=tmp_path / "var")
    server = LiveServer(rt, server_port)
    server.start()
    api = new_client(rt, server)
    try:
        yield rt, api, clock
    finally:
        api.close()
        server.stop()
        assert_counts_match_rows(rt)
        rt.close()


def fields_of(rt: Runtime, campaign_id: str) -> list[str]:
    with rt.db.read() as conn:
        return list(
            conn.execute(
                select(messages.c.fields)
                .where(messages.c.campaign_id == campaign_id)
                .order_by(messages.c.id)
            ).scalars()
        )


def test_the_worker_applies_retention_when_its_time_comes(
    shifted: tuple[Runtime, ApiClient, ShiftedClock],
) -> None:
    rt, api, clock = shifted
    done = campaign(api, [["a@example.com", "Ann"], ["b@example.com", "Bob"]])
    api.wait(done)
    waiting = campaign(api, [["c@example.com", "Cy"]], send_at="2099-01-01T00:00:00Z")
    api.wait(waiting, until=("scheduled",))
    file_id = source_file(rt, done)
    with rt.db.read() as conn:
        blob_key = conn.execute(select(files.c.blob_key).where(files.c.id == file_id)).scalar()
        events_before = conn.execute(select(events.c.id, events.c.type)).all()
    status_before = api.status(done)
    analytics_before = api.http.get(f"/api/v1/campaigns/{done}/analytics").json()
    assert rt.blobs.exists(blob_key)

    clock.offset = timedelta(days=2)  # past nothing yet
    time.sleep(1.5)
    assert api.http.get(f"/api/v1/files/{file_id}").json()["source_deleted_at"] is None

    clock.offset = timedelta(days=8)
    deadline = time.monotonic() + 20
    while api.http.get(f"/api/v1/files/{file_id}").json()["status"] != "source_deleted":
        assert time.monotonic() < deadline, "retention did not run"
        time.sleep(0.1)
    assert not rt.blobs.exists(blob_key)
    gone = api.http.get(f"/api/v1/files/{file_id}/content")
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "file_source_deleted"
    template_id = api.upload_template("<p>Hi</p>", "Hi")
    reuse = api.create_campaign(template_id=template_id, file_id=file_id)
    assert reuse.status_code == 410 and reuse.json()["error"]["code"] == "file_source_deleted"

    deadline = time.monotonic() + 20
    while fields_of(rt, done) != ["{}", "{}"]:
        assert time.monotonic() < deadline, "personalisation was not purged"
        time.sleep(0.1)
    assert fields_of(rt, waiting) != ["{}"]  # still queued: it will be rendered
    after = api.status(done)
    assert after["counts"] == status_before["counts"] and after["file"] == status_before["file"]
    assert api.http.get(f"/api/v1/campaigns/{done}/analytics").json() == analytics_before
    with rt.db.read() as conn:
        assert conn.execute(select(events.c.id, events.c.type)).all() == events_before
        marked = conn.execute(
            select(campaigns.c.personalisation_purged_at).where(campaigns.c.id == done)
        ).scalar()
    assert marked is not None


def test_the_cli_runs_retention_now(
    runtime: Runtime, live_server: LiveServer, tmp_path: Path, database_url: str
) -> None:
    api = new_client(runtime, live_server)
    done = campaign(api, [["a@example.com", "Ann"]])
    api.wait(done)
    time.sleep(1.0)
    env = cli_env(
        tmp_path,
        database_url,
        POSTROOM_SECRET_KEY="test-secret-key",
        POSTROOM_SOURCE_RETENTION_DAYS="0.00001",  # under a second
        POSTROOM_PERSONALISATION_RETENTION_DAYS="0.00001",
    )
    ran = postroom("retention", "run", "--json", env=env, cwd=tmp_path)
    report = json.loads(ran.stdout)
    # The live server's own worker may have been first to the file (it runs retention with
    # the default of 7 days, so not); the CLI did the rest.
    assert report == {
        "sources_deleted": 1,
        "messages_purged": 1,
        "campaigns_purged": 1,
        "webhook_deliveries_deleted": 0,
    }
    again = postroom("retention", "run", env=env, cwd=tmp_path).stdout
    assert "deleted the CSV of 0 recipient files" in again
    assert api.http.get(f"/api/v1/files/{source_file(runtime, done)}").json()["status"] == (
        "source_deleted"
    )
    api.close()


def test_finished_webhook_deliveries_go_after_their_days_and_pending_ones_stay(
    runtime: Runtime, live_server: LiveServer
) -> None:
    api = new_client(runtime, live_server)
    with (
        WebhookReceiver(lambda _n: Answer(status=200)) as taking,
        WebhookReceiver(lambda _n: Answer(status=500)) as refusing,
    ):
        for receiver in (taking, refusing):
            hook = api.http.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["*"]})
            assert hook.status_code == 201, hook.text
        done = campaign(api, [["a@example.com", "Ann"], ["b@example.com", "Bob"]])
        api.wait(done)
        deadline = time.monotonic() + 20
        while len(taking.received) < 3 or not refusing.received:  # 2 sent, 1 completed
            assert time.monotonic() < deadline, "the deliveries were not made"
            time.sleep(0.05)
    deadline = time.monotonic() + 20
    while delivery_statuses(runtime).get("delivered", 0) < 3:
        assert time.monotonic() < deadline, "the deliveries were not recorded"
        time.sleep(0.05)
    before = delivery_statuses(runtime)
    assert before["pending"] == 3  # the refusing endpoint's, waiting for their next try

    now = runtime.clock.now()
    assert delete_finished_deliveries(runtime, now + timedelta(days=29), 30) == 0
    assert delete_finished_deliveries(runtime, now + timedelta(days=31), 0) == 0  # 0: kept
    assert delete_finished_deliveries(runtime, now + timedelta(days=31), 30) == 3
    assert delivery_statuses(runtime) == {"pending": 3}
    assert delete_finished_deliveries(runtime, now + timedelta(days=31), 30) == 0
    api.close()


def delivery_statuses(rt: Runtime) -> dict[str, int]:
    with rt.db.read() as conn:
        rows = conn.execute(
            select(webhook_deliveries.c.status, func.count()).group_by(webhook_deliveries.c.status)
        ).all()
    return {status: count for status, count in rows}


def test_a_file_no_campaign_used_goes_its_days_after_the_upload(
    runtime: Runtime, live_server: LiveServer
) -> None:
    api = new_client(runtime, live_server)
    unused = api.upload_file(b"email\nann@example.com\n")
    used = campaign(api, [["bo@example.com", "Bo"]], send_at="2099-01-01T00:00:00Z")
    api.wait(used, until=("scheduled",))
    used_file = source_file(runtime, used)
    with runtime.db.write() as conn:  # as if the campaign had read its file 5 days from now
        conn.execute(
            update(files)
            .where(files.c.id == used_file)
            .values(processed_at=runtime.clock.now() + timedelta(days=5))
        )
    now = runtime.clock.now()
    assert delete_expired_sources(runtime, now + timedelta(days=6), 7) == 0
    assert delete_expired_sources(runtime, now + timedelta(days=8), 7) == 1
    shown = api.http.get(f"/api/v1/files/{unused}").json()
    assert shown["status"] == "source_deleted" and shown["source_deleted_at"] is not None
    assert api.http.get(f"/api/v1/files/{used_file}").json()["status"] == "uploaded"
    assert delete_expired_sources(runtime, now + timedelta(days=13), 7) == 1  # 8 days after use
    api.close()
