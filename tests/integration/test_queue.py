"""The database as a work queue: claims never overlap, dead workers' leases are taken over,
and file processing resumes where the last commit left off."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from postroom.campaigns import lifecycle, queue
from postroom.campaigns.outcomes import Outcome, record_outcomes
from postroom.campaigns.states import MessageStatus
from postroom.db.tables import campaigns, messages, row_issues
from postroom.ingest.processor import FileProcessor
from postroom.runtime import Runtime
from tests.integration.test_ingest_scale import prepare_campaign


def ingested_campaign(rt: Runtime, rows: int) -> str:
    campaign_id = prepare_campaign(rt, rows)
    assert FileProcessor(rt, "ingest", threading.Event()).process_next()
    return campaign_id


def test_concurrent_claims_never_overlap(runtime: Runtime) -> None:
    campaign_id = ingested_campaign(runtime, 400)
    claimed: dict[str, list[int]] = {}

    start = threading.Barrier(4)

    def claim_all(worker: str) -> None:
        mine: list[int] = []
        start.wait()
        while True:
            with runtime.db.write() as conn:
                batch = queue.claim_messages(
                    conn, campaign_id, worker, limit=7, now=runtime.clock.now(), lease_seconds=60
                )
            if not batch:
                break
            mine += [row.id for row in batch]
            time.sleep(0.002)  # as a real worker sends between claims; lets the others in
        claimed[worker] = mine

    threads = [threading.Thread(target=claim_all, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [pk for pks in claimed.values() for pk in pks]
    assert len(every) == len(set(every)) == 400
    assert sum(1 for pks in claimed.values() if pks) >= 2


def test_expired_leases_are_taken_over_and_stale_outcomes_ignored(runtime: Runtime) -> None:
    campaign_id = ingested_campaign(runtime, 5)
    now = runtime.clock.now()
    with runtime.db.write() as conn:
        first = queue.claim_messages(conn, campaign_id, "dead", limit=10, now=now, lease_seconds=30)
    assert len(first) == 5
    with runtime.db.write() as conn:
        assert queue.reclaim_expired_leases(conn, now + timedelta(seconds=10)) == 0
        assert queue.reclaim_expired_leases(conn, now + timedelta(seconds=31)) == 5
        second = queue.claim_messages(
            conn, campaign_id, "alive", limit=10, now=now + timedelta(seconds=31), lease_seconds=30
        )
    assert [r.id for r in second] == [r.id for r in first]
    stale = [Outcome(r.id, campaign_id, MessageStatus.FAILED, error="late") for r in first]
    fresh = [Outcome(r.id, campaign_id, MessageStatus.SENT, relay_reply="250 ok") for r in second]
    with runtime.db.write() as conn:
        record_outcomes(conn, "dead", stale, now)
        record_outcomes(conn, "alive", fresh, now)
        statuses = conn.execute(
            select(messages.c.status, messages.c.attempts).where(
                messages.c.campaign_id == campaign_id
            )
        ).all()
    assert statuses == [("sent", 1)] * 5


class StopsAfterFirstBatch(FileProcessor):
    def _commit(self, *args: Any) -> None:
        super()._commit(*args)
        self.stop.set()


def test_processing_resumes_after_a_stop_without_doubling(runtime: Runtime) -> None:
    runtime.settings = runtime.settings.model_copy(update={"ingest_batch_rows": 40})
    lines = [b"email,first_name,last_name,city\r\n"]
    for i in range(100):
        address = f"user{i % 90}@example.com" if i % 10 else f"broken{i}"
        lines.append(f"{address},F{i},L{i},C\r\n".encode())
    campaign_id = prepare_campaign(runtime, 100, lines=lines)
    stopping = StopsAfterFirstBatch(runtime, "first", threading.Event())
    assert stopping.process_next()
    with runtime.db.read() as conn:
        campaign = conn.execute(select(campaigns).where(campaigns.c.id == campaign_id)).one()
    assert campaign.status == "processing" and campaign.lease_owner is None
    assert campaign.rows_done == 41  # header is row 1
    assert FileProcessor(runtime, "second", threading.Event()).process_next()
    with runtime.db.read() as conn:
        campaign = conn.execute(select(campaigns).where(campaigns.c.id == campaign_id)).one()
        count = conn.execute(
            select(func.count()).where(messages.c.campaign_id == campaign_id)
        ).scalar_one()
        issues = conn.execute(
            select(func.count()).where(row_issues.c.campaign_id == campaign_id)
        ).scalar_one()
    assert campaign.status == "sending"
    # rows 0, 10, 20... are invalid; user0..user9 come back at i = 90..99 as duplicates
    assert (campaign.valid_rows, campaign.invalid_rows, campaign.duplicate_rows) == (81, 10, 9)
    assert (count, issues) == (81, 19)


def test_duplicates_of_rows_in_earlier_batches_name_the_first_row(runtime: Runtime) -> None:
    runtime.settings = runtime.settings.model_copy(update={"ingest_batch_rows": 7})
    lines = [b"email,first_name,last_name,city\r\n"]
    for i in range(30):
        address = f"user{i}@example.com" if i < 20 else f"USER{i - 20}@Example.com"
        lines.append(f"{address},F{i},L{i},C\r\n".encode())
    campaign_id = prepare_campaign(runtime, 30, lines=lines)

    assert FileProcessor(runtime, "only", threading.Event()).process_next()

    with runtime.db.read() as conn:
        campaign = conn.execute(select(campaigns).where(campaigns.c.id == campaign_id)).one()
        issues = conn.execute(
            select(row_issues.c.row_number, row_issues.c.reason, row_issues.c.detail)
            .where(row_issues.c.campaign_id == campaign_id)
            .order_by(row_issues.c.row_number)
        ).all()
    assert (campaign.valid_rows, campaign.duplicate_rows) == (20, 10)
    # Data row i is spreadsheet row i + 2; row 22 + k repeats row 2 + k.
    assert [tuple(issue) for issue in issues] == [
        (22 + k, "duplicate", f"same address as row {2 + k}") for k in range(10)
    ]


def test_cancel_during_processing_stops_the_file_and_cancels_what_it_wrote(
    runtime: Runtime,
) -> None:
    from postroom.campaigns.control import cancel_campaign

    runtime.settings = runtime.settings.model_copy(update={"ingest_batch_rows": 30})
    campaign_id = prepare_campaign(runtime, 100)

    class CancelsAfterFirstBatch(FileProcessor):
        def _commit(self, *args: Any) -> None:
            super()._commit(*args)
            with self.rt.db.write() as conn:
                campaign = conn.execute(
                    select(campaigns).where(campaigns.c.id == campaign_id)
                ).one()
                if campaign.status == "processing":
                    cancel_campaign(conn, campaign, self.rt.clock.now())

    assert CancelsAfterFirstBatch(runtime, "w", threading.Event()).process_next()
    with runtime.db.read() as conn:
        campaign = conn.execute(select(campaigns).where(campaigns.c.id == campaign_id)).one()
        statuses = conn.execute(
            select(messages.c.status, func.count())
            .where(messages.c.campaign_id == campaign_id)
            .group_by(messages.c.status)
        ).all()
    assert campaign.status == "cancelled"
    assert statuses == [("cancelled", 30)]


def _last_analyze(rt: Runtime) -> Any:
    with rt.db.read() as conn:
        return conn.execute(
            text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'messages'")
        ).scalar()


def test_a_bulk_load_refreshes_the_planner_statistics(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lifecycle, "BULK_LOAD_ROWS", 20)
    ingested_campaign(runtime, 10)  # below the threshold
    if runtime.db.is_sqlite:
        return  # SQLite's planner keeps no statistics that go stale
    assert _last_analyze(runtime) is None
    ingested_campaign(runtime, 30)
    assert _last_analyze(runtime) is not None
