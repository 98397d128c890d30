"""The message queue in the database: claim due messages under a lease, keep the lease alive,
record outcomes, give leases back, and take back the leases of workers that died.

Every status change here also writes a row of ``message_transitions`` and moves the
campaign's counts, in the same transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    String,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)

from postroom.analytics.rollups import EventFacts, recipient_domain, record_facts
from postroom.campaigns.counts import move_counts
from postroom.campaigns.states import CampaignStatus, MessageStatus, may_move
from postroom.db.sql_json import json_object
from postroom.db.tables import campaigns, events, message_transitions, messages
from postroom.suppressions import store as suppression_store
from postroom.webhooks import fanout

#: The outcomes that are events of their message too (a message put back in the queue
#: untried, because the relay as a whole was down, is not).
OUTCOME_EVENTS = frozenset({MessageStatus.SENT, MessageStatus.DEFERRED, MessageStatus.FAILED})
#: The ``source`` of those events, as opposed to a provider's ("ses", "smtp", "tracking").
OWN_SOURCE = "postroom"

_EVENT_COLUMNS = (
    "tenant_id",
    "campaign_id",
    "message_pk",
    "type",
    "source",
    "recipient",
    "occurred_at",
    "recorded_at",
    "event_key",
    "data",
)

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
        _transitions(
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


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one claimed message, as the queue records it.

    ``status`` is sent, failed, deferred (retry at ``retry_at``) or queued (not attempted:
    the transport as a whole was down or throttled us; claimable again at ``retry_at``).
    """

    message_pk: int
    campaign_id: str
    status: MessageStatus
    error: str | None = None
    relay_reply: str | None = None
    message_id: str | None = None
    provider_message_id: str | None = None
    retry_at: datetime | None = None
    is_attempt: bool = True
    #: The relay may have it already (connection lost mid-transaction); counted once.
    newly_possible_duplicate: bool = False


def record_outcomes(
    conn: Connection,
    worker_id: str,
    outcomes: list[Outcome],
    now: datetime,
    *,
    transport: str = "postroom",
) -> int:
    """Write outcomes, one statement batch per campaign and status. Only messages this worker
    still leases are touched, so a worker whose lease ran out cannot overwrite the next
    owner's result, and the counts move only for the rows really written."""
    groups: dict[tuple[str, MessageStatus], list[Outcome]] = {}
    for outcome in outcomes:
        if not may_move(MessageStatus.SENDING, outcome.status):
            raise ValueError(f"a sending message cannot become {outcome.status}")
        groups.setdefault((outcome.campaign_id, outcome.status), []).append(outcome)
    written = 0
    # Campaign rows are locked in id order, as claims lock them: no deadlock between workers.
    for (campaign_id, status), group in sorted(groups.items()):
        moved = _write_outcomes(conn, worker_id, group, now, transport)
        move_counts(conn, campaign_id, {MessageStatus.SENDING: -len(moved), status: len(moved)})
        duplicates = sum(1 for o in moved if o.newly_possible_duplicate)
        if duplicates:
            _count_possible_duplicates(conn, {campaign_id: duplicates})
        written += len(moved)
    return written


def _write_outcomes(
    conn: Connection, worker_id: str, outcomes: list[Outcome], now: datetime, transport: str
) -> list[Outcome]:
    # Lock the rows this worker still holds first: an expired lease taken back meanwhile
    # must neither be overwritten nor counted.
    held: dict[int, str] = {
        row.id: row.email
        for row in conn.execute(
            select(messages.c.id, messages.c.email)
            .where(
                messages.c.id.in_([o.message_pk for o in outcomes]),
                messages.c.lease_owner == worker_id,
                messages.c.status == MessageStatus.SENDING,
            )
            .with_for_update()
        )
    }
    moved = [o for o in outcomes if o.message_pk in held]
    if not moved:
        return []
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
            # The retry budget starts at the first real attempt and never moves afterwards.
            first_attempt_at=func.coalesce(
                messages.c.first_attempt_at,
                bindparam("attempted_at", type_=messages.c.first_attempt_at.type),
            ),
            possible_duplicate=messages.c.possible_duplicate | bindparam("dup"),
            last_error=bindparam("error"),
            relay_reply=bindparam("reply"),
            message_id=bindparam("mid"),
            provider_message_id=bindparam("provider_id"),
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
            "attempted_at": now if o.is_attempt else None,
            "dup": o.newly_possible_duplicate,
            "error": o.error,
            "reply": o.relay_reply,
            "mid": o.message_id,
            "provider_id": o.provider_message_id,
            "sent": now if o.status == MessageStatus.SENT else None,
            "available": o.retry_at or now,
        }
        for o in moved
    ]
    conn.execute(statement, params)
    (target,) = {o.status for o in moved}  # one status per group
    detail = messages.c.relay_reply if target == MessageStatus.SENT else messages.c.last_error
    pks = [o.message_pk for o in moved]
    _transitions(conn, now, MessageStatus.SENDING, target, messages.c.id.in_(pks), detail=detail)
    if target in OUTCOME_EVENTS:
        recipients = {pk: held[pk] for pk in pks}
        _outcome_events(conn, moved[0].campaign_id, target, recipients, now, transport)
    return moved


def _outcome_events(
    conn: Connection,
    campaign_id: str,
    target: MessageStatus,
    recipients: dict[int, str],
    now: datetime,
    transport: str,
) -> None:
    """Postroom's own outcomes (sent, deferred, failed) go into the event store beside what
    providers report later, with source "postroom", in one INSERT … SELECT from the rows
    just written (the JSON is built by the database); the attempt number keeps a retry's
    event apart from the first one's. They count in the campaign's analytics too: a sent
    or failed message as one recipient, a deferral as an event only (it may repeat)."""
    kind = target.value
    tenant_id = conn.execute(
        select(campaigns.c.tenant_id).where(campaigns.c.id == campaign_id)
    ).scalar_one()
    attempt = cast(messages.c.attempts, String)
    if target == MessageStatus.SENT:
        details: tuple[Any, ...] = (
            "reply",
            messages.c.relay_reply,
            "provider_message_id",
            messages.c.provider_message_id,
        )
    else:
        details = ("error", messages.c.last_error)
    data = json_object(
        conn, "attempt", messages.c.attempts, "transport", literal(transport), *details
    )
    conn.execute(
        insert(events).from_select(
            _EVENT_COLUMNS,
            select(
                literal(tenant_id),
                messages.c.campaign_id,
                messages.c.id,
                literal(kind),
                literal(OWN_SOURCE),
                messages.c.email,
                literal(now, events.c.occurred_at.type),
                literal(now, events.c.recorded_at.type),
                literal(f"{kind}:") + cast(messages.c.id, String) + literal(":") + attempt,
                data,
            ).where(messages.c.id.in_(list(recipients))),
        )
    )
    # The rows just written are this batch's: this kind, these messages, recorded now.
    fanout.enqueue_for_events(
        conn,
        tenant_id,
        kind,
        events.c.message_pk.in_(list(recipients))
        & (events.c.source == OWN_SOURCE)
        & (events.c.recorded_at == literal(now, events.c.recorded_at.type)),
        now,
    )
    first = target != MessageStatus.DEFERRED
    record_facts(
        conn,
        [
            EventFacts(tenant_id, campaign_id, kind, now, recipient_domain(email), first)
            for email in recipients.values()
        ],
    )


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
    _count_possible_duplicates(conn, Counter(r.campaign_id for r in newly_flagged))
    rows = [*newly_flagged, *flagged_before]
    _back_to_queue(conn, rows, now, "lease expired: the worker stopped answering")
    return len(rows)


def _back_to_queue(conn: Connection, rows: Sequence[Row[Any]], now: datetime, why: str) -> None:
    for campaign_id, moved in sorted(Counter(r.campaign_id for r in rows).items()):
        move_counts(conn, campaign_id, {MessageStatus.SENDING: -moved, MessageStatus.QUEUED: moved})
    if rows:
        pks = [r.id for r in rows]
        queued = MessageStatus.QUEUED
        _transitions(
            conn, now, MessageStatus.SENDING, queued, messages.c.id.in_(pks), detail=literal(why)
        )


def _count_possible_duplicates(conn: Connection, by_campaign: dict[str, int]) -> None:
    for campaign_id, count in sorted(by_campaign.items()):
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .values(possible_duplicate_count=campaigns.c.possible_duplicate_count + count)
        )


_TRANSITION_COLUMNS = [
    "message_pk",
    "campaign_id",
    "at",
    "from_status",
    "to_status",
    "attempt",
    "detail",
]


def _transitions(
    conn: Connection,
    now: datetime,
    source: MessageStatus,
    target: MessageStatus,
    *where: Any,
    detail: Any = None,
) -> None:
    """Record that the messages ``where`` selects (now in ``target``) came from ``source``,
    in one INSERT … SELECT: the attempt count and the detail (a reply, an error) are read
    from the rows just written, so nothing travels back and forth per message."""
    conn.execute(
        insert(message_transitions).from_select(
            _TRANSITION_COLUMNS,
            select(
                messages.c.id,
                messages.c.campaign_id,
                literal(now, message_transitions.c.at.type),
                literal(source.value),
                literal(target.value),
                messages.c.attempts,
                literal(None, Text) if detail is None else detail,
            ).where(*where),
        )
    )


def cancel_messages(conn: Connection, campaign_id: str, now: datetime, why: str) -> int:
    """Every message of the campaign not yet handed to the relay becomes ``cancelled``.

    The caller has already moved the campaign out of ``sending`` in this transaction, and
    claims lock the campaign row and check its status first, so no claim slips in between
    recording these transitions and making them."""
    cancelled = 0
    for source in (MessageStatus.QUEUED, MessageStatus.DEFERRED):
        waiting = (messages.c.campaign_id == campaign_id, messages.c.status == source)
        _transitions(conn, now, source, MessageStatus.CANCELLED, *waiting, detail=literal(why))
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
    _transitions(
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
    _transitions(
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
        _transitions(
            conn, now, MessageStatus.SENDING, MessageStatus.SUPPRESSED, moved_pks, detail=why
        )
        for campaign_id, moved in sorted(Counter(r.campaign_id for r in rows).items()):
            move_counts(
                conn,
                campaign_id,
                {MessageStatus.SENDING: -moved, MessageStatus.SUPPRESSED: moved},
            )
    return len(rows)
