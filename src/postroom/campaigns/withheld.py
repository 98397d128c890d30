"""Messages withheld from sending: cancelled with their campaign, suppressed because their
address is on the suppression list (when the file is in, or once claimed), or stopped by an
erasure. Each change writes its transition and moves the campaign's counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, literal, update

from postroom.campaigns.counts import move_counts
from postroom.campaigns.states import MessageStatus
from postroom.campaigns.transitions import record_transitions
from postroom.db.tables import messages
from postroom.suppressions import store as suppression_store


def cancel_messages(conn: Connection, campaign_id: str, now: datetime, why: str) -> int:
    """Every message of the campaign not yet handed to the relay becomes ``cancelled``.

    The caller has already moved the campaign out of ``sending`` in this transaction, and
    claims lock the campaign row and check its status first, so no claim slips in between
    recording these transitions and making them."""
    cancelled = 0
    for source in (MessageStatus.QUEUED, MessageStatus.DEFERRED):
        waiting = (messages.c.campaign_id == campaign_id, messages.c.status == source)
        record_transitions(
            conn, now, source, MessageStatus.CANCELLED, *waiting, detail=literal(why)
        )
        moved = conn.execute(
            update(messages)
            .where(*waiting)
            .values(status=MessageStatus.CANCELLED, lease_owner=None, updated_at=now)
        ).rowcount
        move_counts(conn, campaign_id, {source: -moved, MessageStatus.CANCELLED: moved})
        cancelled += moved
    return cancelled


def suppress_listed(conn: Connection, campaign_id: str, tenant_id: str, now: datetime) -> int:
    """Queued messages to addresses on the tenant's suppression list become ``suppressed``
    (when the file is in: one set-based statement, however long the list)."""
    if not suppression_store.has_any(conn, tenant_id):
        return 0  # the common case: no list to compare a large campaign with
    listed = messages.c.email_key.in_(suppression_store.keys_of_tenant(tenant_id))
    return suppress_queued(conn, campaign_id, listed, now, "on the suppression list")


def suppress_queued(conn: Connection, campaign_id: str, which: Any, now: datetime, why: str) -> int:
    """The campaign's queued messages that ``which`` selects become ``suppressed``."""
    chosen = (messages.c.campaign_id == campaign_id, messages.c.status == MessageStatus.QUEUED)
    record_transitions(
        conn,
        now,
        MessageStatus.QUEUED,
        MessageStatus.SUPPRESSED,
        *chosen,
        which,
        detail=literal(why),
    )
    moved = conn.execute(
        update(messages)
        .where(*chosen, which)
        .values(status=MessageStatus.SUPPRESSED, updated_at=now)
    ).rowcount
    move_counts(conn, campaign_id, {MessageStatus.QUEUED: -moved, MessageStatus.SUPPRESSED: moved})
    return moved


def stop_waiting(conn: Connection, campaign_id: str, which: Any, now: datetime, why: str) -> int:
    """The campaign's messages that ``which`` selects and that wait to be sent are never
    sent: queued ones become ``suppressed``, deferred ones ``cancelled`` (the states allow no
    other way). Returns how many were stopped."""
    stopped = suppress_queued(conn, campaign_id, which, now, why)
    waiting = (
        messages.c.campaign_id == campaign_id,
        messages.c.status == MessageStatus.DEFERRED,
        which,
    )
    record_transitions(
        conn, now, MessageStatus.DEFERRED, MessageStatus.CANCELLED, *waiting, detail=literal(why)
    )
    moved = conn.execute(
        update(messages)
        .where(*waiting)
        .values(status=MessageStatus.CANCELLED, lease_owner=None, updated_at=now)
    ).rowcount
    move_counts(conn, campaign_id, {MessageStatus.DEFERRED: -moved, MessageStatus.CANCELLED: moved})
    return stopped + moved


def suppress_claimed(
    conn: Connection, worker_id: str, claimed: Sequence[Row[Any]], now: datetime
) -> int:
    """Claimed messages whose address went on the suppression list after the file was in:
    ``suppressed`` instead of sent."""
    pks = [row.id for row in claimed]
    held = (
        messages.c.id.in_(pks),
        messages.c.lease_owner == worker_id,
        messages.c.status == MessageStatus.SENDING,
    )
    rows = conn.execute(
        update(messages)
        .where(*held)
        .values(
            status=MessageStatus.SUPPRESSED, lease_owner=None, lease_expires_at=None, updated_at=now
        )
        .returning(messages.c.id, messages.c.campaign_id)
    ).all()
    if rows:
        why = literal("on the suppression list")
        moved_pks = messages.c.id.in_([row.id for row in rows])
        record_transitions(
            conn, now, MessageStatus.SENDING, MessageStatus.SUPPRESSED, moved_pks, detail=why
        )
        for campaign_id, moved in sorted(Counter(r.campaign_id for r in rows).items()):
            move_counts(
                conn,
                campaign_id,
                {MessageStatus.SENDING: -moved, MessageStatus.SUPPRESSED: moved},
            )
    return len(rows)
