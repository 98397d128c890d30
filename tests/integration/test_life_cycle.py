"""The message life cycle in the database: deferred retries interleave with new mail, every
transition is recorded with its time, leases are kept alive and given back, a dead worker's
messages come back flagged as possible duplicates, and cancelling takes deferred mail too."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from postroom.campaigns import control, queue
from postroom.campaigns.outcomes import Outcome, record_outcomes
from postroom.campaigns.states import MessageStatus, may_move
from postroom.db.tables import campaigns, message_transitions, messages
from postroom.delivery.sender import Sender
from postroom.runtime import Runtime
from postroom.transports.capture import CaptureTransport
from tests.integration.test_queue import ingested_campaign
from tests.support.counts import assert_counts_match_rows


def claim(rt: Runtime, campaign_id: str, worker: str, limit: int, at: object = None) -> list[int]:
    now = at or rt.clock.now()
    with rt.db.write() as conn:
        rows = queue.claim_messages(
            conn, campaign_id, worker, limit=limit, now=now, lease_seconds=30
        )
    return [r.id for r in rows]


def record(rt: Runtime, worker: str, outcomes: list[Outcome]) -> int:
    with rt.db.write() as conn:
        return record_outcomes(conn, worker, outcomes, rt.clock.now())


def transitions_of(rt: Runtime, pk: int) -> list[tuple[str, str, int]]:
    with rt.db.read() as conn:
        rows = conn.execute(
            select(
                message_transitions.c.from_status,
                message_transitions.c.to_status,
                message_transitions.c.attempt,
                message_transitions.c.at,
            )
            .where(message_transitions.c.message_pk == pk)
            .order_by(message_transitions.c.id)
        ).all()
    assert all(row.at is not None for row in rows)
    return [(row.from_status, row.to_status, row.attempt) for row in rows]


def test_a_deferred_message_is_retried_and_every_transition_is_recorded(runtime: Runtime) -> None:
    campaign_id = ingested_campaign(runtime, 1)
    (pk,) = claim(runtime, campaign_id, "w", 10)
    retry_at = runtime.clock.now() + timedelta(seconds=60)
    deferred = Outcome(
        pk, campaign_id, MessageStatus.DEFERRED, error="451 later", retry_at=retry_at
    )
    assert record(runtime, "w", [deferred]) == 1
    assert claim(runtime, campaign_id, "w", 10) == []  # not due yet
    assert claim(runtime, campaign_id, "w", 10, at=retry_at) == [pk]
    sent = Outcome(
        pk, campaign_id, MessageStatus.SENT, relay_reply="250 ok", provider_message_id="Q1"
    )
    assert record(runtime, "w", [sent]) == 1
    assert transitions_of(runtime, pk) == [
        ("queued", "sending", 0),
        ("sending", "deferred", 1),
        ("deferred", "sending", 1),
        ("sending", "sent", 2),
    ]
    with runtime.db.read() as conn:
        row = conn.execute(select(messages).where(messages.c.id == pk)).one()
    assert (row.status, row.attempts, row.provider_message_id) == ("sent", 2, "Q1")
    assert row.first_attempt_at is not None
    assert_counts_match_rows(runtime)


def test_retries_never_starve_new_mail_nor_the_other_way_round(runtime: Runtime) -> None:
    campaign_id = ingested_campaign(runtime, 40)
    first = claim(runtime, campaign_id, "w", 20)
    now = runtime.clock.now()
    record(
        runtime,
        "w",
        [
            Outcome(pk, campaign_id, MessageStatus.DEFERRED, error="451", retry_at=now)
            for pk in first
        ],
    )
    batch = claim(runtime, campaign_id, "w", 10)
    retried = [pk for pk in batch if pk in first]
    assert len(retried) == 5 and len(batch) == 10  # half and half while both wait
    # With no new mail left, retries fill the whole batch.
    rest = claim(runtime, campaign_id, "w", 100)
    assert len(rest) == 30
    assert_counts_match_rows(runtime)


def test_a_dead_workers_messages_come_back_flagged_and_counted_once(runtime: Runtime) -> None:
    campaign_id = ingested_campaign(runtime, 3)
    now = runtime.clock.now()
    claim(runtime, campaign_id, "dead", 10, at=now)
    later = now + timedelta(seconds=31)
    with runtime.db.write() as conn:
        assert queue.reclaim_expired_leases(conn, later) == 3
    claim(runtime, campaign_id, "dead-too", 10, at=later)
    with runtime.db.write() as conn:
        assert queue.reclaim_expired_leases(conn, later + timedelta(seconds=31)) == 3
    with runtime.db.read() as conn:
        flags = conn.execute(
            select(messages.c.possible_duplicate).where(messages.c.campaign_id == campaign_id)
        ).scalars()
        assert list(flags) == [True, True, True]
        counted = conn.execute(
            select(campaigns.c.possible_duplicate_count).where(campaigns.c.id == campaign_id)
        ).scalar()
    assert counted == 3  # flagged twice, counted once
    assert_counts_match_rows(runtime)


def test_the_heartbeat_extends_only_this_workers_leases(runtime: Runtime) -> None:
    campaign_id = ingested_campaign(runtime, 4)
    now = runtime.clock.now()
    mine = claim(runtime, campaign_id, "me", 2, at=now)
    claim(runtime, campaign_id, "other", 2, at=now)
    with runtime.db.write() as conn:
        assert queue.extend_leases(conn, "me", mine, now + timedelta(seconds=20), 30) == 2
        # At now+31 the other worker's leases are expired, mine (extended to now+50) are not.
        assert queue.reclaim_expired_leases(conn, now + timedelta(seconds=31)) == 2
        still_mine = conn.execute(
            select(messages.c.id).where(messages.c.lease_owner == "me")
        ).scalars()
        assert sorted(still_mine) == sorted(mine)


def test_a_stopping_sender_gives_its_batch_back_unsent(runtime: Runtime, tmp_path: Path) -> None:
    campaign_id = ingested_campaign(runtime, 5)
    with runtime.db.write() as conn:
        conn.execute(
            campaigns.update().where(campaigns.c.id == campaign_id).values(status="sending")
        )
    transport = CaptureTransport(tmp_path / "outbox")
    sender = Sender(runtime, transport, "stopping")
    assert asyncio.run(sender.send_due(stopping=lambda: True)) == 5
    assert list((tmp_path / "outbox").glob("*.eml")) == []
    with runtime.db.read() as conn:
        rows = conn.execute(
            select(messages.c.status, messages.c.attempts, messages.c.lease_owner).where(
                messages.c.campaign_id == campaign_id
            )
        ).all()
    assert {tuple(r) for r in rows} == {("queued", 0, None)}
    assert_counts_match_rows(runtime)


def test_cancel_takes_queued_and_deferred_messages(runtime: Runtime) -> None:
    campaign_id = ingested_campaign(runtime, 4)
    (pk, *_) = claim(runtime, campaign_id, "w", 1)
    later = runtime.clock.now() + timedelta(hours=1)
    record(
        runtime,
        "w",
        [Outcome(pk, campaign_id, MessageStatus.DEFERRED, error="451", retry_at=later)],
    )
    with runtime.db.write() as conn:
        campaign = conn.execute(select(campaigns).where(campaigns.c.id == campaign_id)).one()
        control.cancel_campaign(conn, campaign, runtime.clock.now())
    with runtime.db.read() as conn:
        statuses = conn.execute(
            select(messages.c.status).where(messages.c.campaign_id == campaign_id)
        ).scalars()
        assert set(statuses) == {"cancelled"}
    assert transitions_of(runtime, pk)[-1] == ("deferred", "cancelled", 1)
    assert_counts_match_rows(runtime)


def test_an_outcome_outside_the_life_cycle_is_refused(runtime: Runtime) -> None:
    campaign_id = ingested_campaign(runtime, 1)
    (pk,) = claim(runtime, campaign_id, "w", 1)
    assert not may_move(MessageStatus.SENDING, MessageStatus.CANCELLED)
    try:
        record(runtime, "w", [Outcome(pk, campaign_id, MessageStatus.CANCELLED)])
    except ValueError as exc:
        assert "cannot become cancelled" in str(exc)
    else:
        raise AssertionError("a sending message was cancelled by an outcome")
