"""What became of each claimed message, recorded: its new status, the transition, Postroom's
own event (sent, deferred, failed) with its webhooks and analytics, and the campaign's
counts, in the transaction of the worker that still holds its lease."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, bindparam, cast, func, insert, literal, select, update

from postroom.analytics.rollups import EventFacts, recipient_domain, record_facts
from postroom.campaigns.counts import move_counts
from postroom.campaigns.states import MessageStatus, may_move
from postroom.campaigns.transitions import count_possible_duplicates, record_transitions
from postroom.db.sql_json import json_object
from postroom.db.tables import campaigns, events, messages
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
            count_possible_duplicates(conn, {campaign_id: duplicates})
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
    record_transitions(
        conn, now, MessageStatus.SENDING, target, messages.c.id.in_(pks), detail=detail
    )
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
