"""The message queue in the database: claim due messages under a lease, keep the lease alive,
give leases back, and take back the leases of workers that died (outcomes are recorded in
``outcomes.py``, messages withheld from sending in ``withheld.py``).

Every status change here also writes a row of ``message_transitions`` and moves the
campaign's counts, in the same transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    bindparam,
    literal,
    select,
    update,
)

from postroom.campaigns.counts import move_counts
from postroom.campaigns.states import CampaignStatus, MessageStatus
from postroom.campaigns.transitions import count_possible_duplicates, record_transitions
from postroom.db.tables import campaigns, messages

_CLAIMED_COLUMNS = (
    messages.c.id,
    messages.c.campaign_id,
    messages.c.row_number,
    messages.c.email,
    messages.c.email_key,
    messages.c.fields,
    messages.c.attempts,
    messages.c.first_attempt_at,
    messages.c.possible_duplicate,
)


def claim_messages(
    conn: Connection,
    campaign_id: str,
    worker_id: str,
    *,
    limit: int,
    now: datetime,
    lease_seconds: int,
) -> list[Row[Any]]:
    """Lease up to ``limit`` due messages of one campaign, new and deferred ones interleaved:
    retries get at most half the batch while new mail is waiting, so a backlog of retries
    never starves new mail (and new mail never starves due retries).

    On PostgreSQL the inner SELECT skips rows other workers hold (``FOR UPDATE SKIP
    LOCKED``); on SQLite the write lock makes the statement atomic. Either way no message is
    claimed twice.

    The campaign's row is locked first and must still be ``sending``: a pause or cancel
    waits for a claim in progress, and every later claim sees it, so pausing takes effect
    within one batch and a cancel never misses a message claimed meanwhile. (Its counts are
    updated in this transaction anyway, so the lock costs no extra waiting.)"""
    still_sending = conn.execute(
        select(campaigns.c.id)
        .where(campaigns.c.id == campaign_id, campaigns.c.status == CampaignStatus.SENDING)
        .with_for_update(key_share=True)
    ).first()
    if still_sending is None:
        return []

    def claim(status: MessageStatus, count: int) -> list[Row[Any]]:
        return _claim(conn, campaign_id, worker_id, status, count, now, lease_seconds)

    retry_share = min(limit, max(1, limit // 2))
    retries = claim(MessageStatus.DEFERRED, retry_share)
    fresh = claim(MessageStatus.QUEUED, limit - len(retries))
    if len(retries) == retry_share:  # more retries may be due: fill what new mail left
        retries += claim(MessageStatus.DEFERRED, limit - len(retries) - len(fresh))
    return sorted(retries + fresh, key=lambda r: r.id)


def _claim(
    conn: Connection,
    campaign_id: str,
    worker_id: str,
    status: MessageStatus,
    limit: int,
    now: datetime,
    lease_seconds: int,
) -> list[Row[Any]]:
    if limit <= 0:
        return []
    # Earliest due first, then file order: the order of ix_messages_due, so a claim reads
    # the index from its start and stops after ``limit`` rows, however many messages are
    # waiting (or not due yet) behind them. The status is written into the statement: once
    # psycopg prepares it, PostgreSQL's generic plan cannot tell that a bound status is one
    # the partial index holds, and would sort every waiting message of the campaign instead.
    status_literal = bindparam(None, status.value, messages.c.status.type, literal_execute=True)
    due = (
        select(messages.c.id)
        .where(
            messages.c.campaign_id == campaign_id,
            messages.c.status == status_literal,
            messages.c.available_at <= now,
        )
        .order_by(messages.c.available_at, messages.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = conn.execute(
        update(messages)
        .where(messages.c.id.in_(due.scalar_subquery()))
        .values(
            status=MessageStatus.SENDING,
            lease_owner=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            updated_at=now,
        )
        .returning(*_CLAIMED_COLUMNS)
    ).all()
    if rows:
        move_counts(conn, campaign_id, {status: -len(rows), MessageStatus.SENDING: len(rows)})
        record_transitions(
            conn, now, status, MessageStatus.SENDING, messages.c.id.in_([r.id for r in rows])
        )
    return list(rows)


def extend_leases(
    conn: Connection, worker_id: str, message_pks: Sequence[int], now: datetime, lease_seconds: int
) -> int:
    """The heartbeat: push the lease of messages this worker still holds further out."""
    if not message_pks:
        return 0
    return conn.execute(
        update(messages)
        .where(
            messages.c.id.in_(message_pks),
            messages.c.lease_owner == worker_id,
            messages.c.status == MessageStatus.SENDING,
        )
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
    ).rowcount


def release_leases(
    conn: Connection,
    worker_id: str,
    message_pks: Sequence[int],
    now: datetime,
    *,
    available_at: datetime | None = None,
    why: str = "lease released",
) -> int:
    """Give back messages this worker claimed but never handed to the transport (a clean
    stop, a rate limit): they are queued again (at once, or from ``available_at``) with no
    attempt charged."""
    if not message_pks:
        return 0
    rows = conn.execute(
        update(messages)
        .where(
            messages.c.id.in_(message_pks),
            messages.c.lease_owner == worker_id,
            messages.c.status == MessageStatus.SENDING,
        )
        .values(
            status=MessageStatus.QUEUED,
            lease_owner=None,
            lease_expires_at=None,
            available_at=available_at or now,
            updated_at=now,
        )
        .returning(messages.c.id, messages.c.campaign_id, messages.c.attempts)
    ).all()
    _back_to_queue(conn, rows, now, why)
    return len(rows)


def reclaim_expired_leases(conn: Connection, now: datetime) -> int:
    """Messages leased by a worker that stopped answering go back to the queue, flagged
    ``possible_duplicate``: the worker may have handed them to the relay before it died, so
    the retry (with the same Message-ID) may deliver a second copy."""
    expired = (
        messages.c.status == MessageStatus.SENDING,
        messages.c.lease_expires_at < now,
    )
    values = {
        "status": MessageStatus.QUEUED,
        "lease_owner": None,
        "lease_expires_at": None,
        "possible_duplicate": True,
        "available_at": now,
        "updated_at": now,
    }
    returned = (messages.c.id, messages.c.campaign_id, messages.c.attempts)
    newly_flagged = conn.execute(
        update(messages)
        .where(*expired, messages.c.possible_duplicate.is_(False))
        .values(values)
        .returning(*returned)
    ).all()
    flagged_before = conn.execute(
        update(messages).where(*expired).values(values).returning(*returned)
    ).all()
    count_possible_duplicates(conn, Counter(r.campaign_id for r in newly_flagged))
    rows = [*newly_flagged, *flagged_before]
    _back_to_queue(conn, rows, now, "lease expired: the worker stopped answering")
    return len(rows)


def _back_to_queue(conn: Connection, rows: Sequence[Row[Any]], now: datetime, why: str) -> None:
    for campaign_id, moved in sorted(Counter(r.campaign_id for r in rows).items()):
        move_counts(conn, campaign_id, {MessageStatus.SENDING: -moved, MessageStatus.QUEUED: moved})
    if rows:
        pks = [r.id for r in rows]
        queued = MessageStatus.QUEUED
        record_transitions(
            conn, now, MessageStatus.SENDING, queued, messages.c.id.in_(pks), detail=literal(why)
        )
