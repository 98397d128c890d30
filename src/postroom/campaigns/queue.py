"""The message queue in the database: claim due messages under a lease, record outcomes,
and take back the leases of workers that died."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, update

from postroom.campaigns.counts import move_by_campaign, move_counts
from postroom.campaigns.states import MessageStatus
from postroom.db.tables import messages


def claim_messages(
    conn: Connection,
    campaign_id: str,
    worker_id: str,
    *,
    limit: int,
    now: datetime,
    lease_seconds: int,
) -> list[Row[Any]]:
    """Lease up to ``limit`` due messages of one campaign. On PostgreSQL the inner SELECT
    skips rows other workers hold (``FOR UPDATE SKIP LOCKED``); on SQLite the write lock
    makes the statement atomic. Either way no message is claimed twice."""
    due = (
        select(messages.c.id)
        .where(
            messages.c.campaign_id == campaign_id,
            messages.c.status == MessageStatus.QUEUED,
            messages.c.available_at <= now,
        )
        .order_by(messages.c.id)
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
        .returning(
            messages.c.id,
            messages.c.campaign_id,
            messages.c.row_number,
            messages.c.email,
            messages.c.fields,
            messages.c.attempts,
        )
    ).all()
    move_counts(
        conn, campaign_id, {MessageStatus.QUEUED: -len(rows), MessageStatus.SENDING: len(rows)}
    )
    return sorted(rows, key=lambda r: r.id)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one claimed message, as the queue records it."""

    message_pk: int
    campaign_id: str
    status: MessageStatus  # sent | failed | queued (to retry)
    error: str | None = None
    relay_reply: str | None = None
    message_id: str | None = None
    retry_at: datetime | None = None
    is_attempt: bool = True


def record_outcomes(
    conn: Connection, worker_id: str, outcomes: list[Outcome], now: datetime
) -> int:
    """Write outcomes, one statement batch per campaign and status. Only messages this worker
    still leases are touched, so a worker whose lease ran out cannot overwrite the next
    owner's result, and the counts move only for the rows really written."""
    groups: dict[tuple[str, MessageStatus], list[Outcome]] = {}
    for outcome in outcomes:
        groups.setdefault((outcome.campaign_id, outcome.status), []).append(outcome)
    written = 0
    for (campaign_id, status), group in groups.items():
        moved = _write_outcomes(conn, worker_id, group, now)
        move_counts(conn, campaign_id, {MessageStatus.SENDING: -moved, status: moved})
        written += moved
    return written


def _write_outcomes(
    conn: Connection, worker_id: str, outcomes: list[Outcome], now: datetime
) -> int:
    statement = (
        update(messages)
        .where(
            messages.c.id == bindparam("pk"),
            messages.c.lease_owner == worker_id,
            messages.c.status == MessageStatus.SENDING,
        )
        .values(
            status=bindparam("new_status"),
            attempts=messages.c.attempts + bindparam("attempt"),
            last_error=bindparam("error"),
            relay_reply=bindparam("reply"),
            message_id=bindparam("mid"),
            sent_at=bindparam("sent"),
            available_at=bindparam("available"),
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    params = [
        {
            "pk": o.message_pk,
            "new_status": o.status.value,
            "attempt": 1 if o.is_attempt else 0,
            "error": o.error,
            "reply": o.relay_reply,
            "mid": o.message_id,
            "sent": now if o.status == MessageStatus.SENT else None,
            "available": o.retry_at or now,
        }
        for o in outcomes
    ]
    return conn.execute(statement, params).rowcount


def reclaim_expired_leases(conn: Connection, now: datetime) -> int:
    """Messages leased by a worker that stopped answering go back to the queue."""
    campaign_ids = (
        conn.execute(
            update(messages)
            .where(messages.c.status == MessageStatus.SENDING, messages.c.lease_expires_at < now)
            .values(status=MessageStatus.QUEUED, lease_owner=None, lease_expires_at=None)
            .returning(messages.c.campaign_id)
        )
        .scalars()
        .all()
    )
    move_by_campaign(conn, campaign_ids, MessageStatus.SENDING, MessageStatus.QUEUED)
    return len(campaign_ids)
