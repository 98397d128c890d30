"""Use cases of the event store: record what a provider reports about sent messages, page
through a campaign's events, and show one message with everything that happened to it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from postroom.campaigns.cursors import decode_cursor, encode_cursor
from postroom.campaigns.outcomes import OUTCOME_EVENTS, OWN_SOURCE
from postroom.campaigns.service import get_message_row, message_transitions
from postroom.db.tables import EVENT_TYPES, messages
from postroom.errors import BadRequest
from postroom.events import store
from postroom.events.schemas import EventPage, EventView, MessageDetail, TimelineEntry
from postroom.events.ses_records import ProviderEvent
from postroom.files.address_redaction import redact_json, redact_text
from postroom.files.record_removal import address_pattern
from postroom.suppressions import store as suppression_store
from postroom.suppressions.erased import is_erased_key

log = logging.getLogger(__name__)

OUTCOME_EVENT_TYPES = frozenset(status.value for status in OUTCOME_EVENTS)


@dataclass(frozen=True, slots=True)
class Recorded:
    """What became of a batch of reported events."""

    stored: int = 0
    repeated: int = 0  # delivered again by the provider: already stored
    unmatched: int = 0  # about a message Postroom does not know (sent by something else)


def record_provider_events(
    conn: Connection, reported: list[ProviderEvent], *, source: str, now: datetime
) -> Recorded:
    stored = repeated = unmatched = 0
    for event in reported:
        message = store.message_by_provider_id(conn, event.provider_message_id)
        if message is None:
            unmatched += 1
            log.info(
                "%s %s event for unknown message %s ignored",
                source,
                event.type,
                event.provider_message_id,
            )
            continue
        is_new = record_message_event(
            conn,
            message,
            event.type,
            source=source,
            recipient=event.recipient,
            occurred_at=event.occurred_at,
            now=now,
            event_key=event.event_key,
            data=event.data,
        )
        if not is_new:
            repeated += 1
            continue
        stored += 1
    return Recorded(stored, repeated, unmatched)


@dataclass(frozen=True, slots=True)
class SendRejection:
    """A relay refused a message for good at send time (5xx): a bounce, known at once."""

    message_pk: int
    reply: str  # the relay's reply, code first
    attempt: int


def record_send_rejections(
    conn: Connection, rejections: list[SendRejection], *, source: str, now: datetime
) -> None:
    """Store each refusal as a hard ``bounced`` event of its message."""
    for rejection in rejections:
        message = store.message_by_id(conn, rejection.message_pk)
        if message is None:
            continue
        record_message_event(
            conn,
            message,
            "bounced",
            source=source,
            recipient=message.email,
            occurred_at=now,
            now=now,
            event_key=f"{source}-reject:{message.id}:{rejection.attempt}",
            data={
                "bounce_type": "hard",
                "bounce_subtype": "rejected_at_send",
                "diagnostic_code": rejection.reply,
                "status": rejection.reply[:3],
            },
            detail=rejection.reply,
        )


def record_message_event(
    conn: Connection,
    message: Any,
    event_type: str,
    *,
    source: str,
    recipient: str | None,
    occurred_at: datetime,
    now: datetime,
    event_key: str,
    data: dict[str, Any],
    detail: str | None = None,
) -> bool:
    """Store one event of a message (found with ``store.message_by_…``), once per
    ``event_key``: the message's times and outcome follow it, and the address goes on the
    tenant's suppression list when the event calls for it. False for a repeat.

    A report that arrives after the message's recipient was erased (a provider's late
    delivery or bounce) is stored without the address: the recipient is the message's hash,
    and the reported address is taken out of the data and the detail."""
    if is_erased_key(message.email_key):
        if recipient:
            pattern = address_pattern([recipient])
            data, detail = redact_json(data, pattern), redact_text(detail, pattern)
        else:  # the address is not known, so it cannot be looked for: keep only the kind
            data = {k: v for k, v in data.items() if k in _KINDS_OF_BOUNCE}
            detail = None
        recipient = message.email
    is_new = store.append_event(
        conn,
        {
            "tenant_id": message.tenant_id,
            "campaign_id": message.campaign_id,
            "message_pk": message.id,
            "type": event_type,
            "source": source,
            "recipient": recipient,
            "occurred_at": occurred_at,
            "recorded_at": now,
            "event_key": event_key,
            "data": data,
        },
    )
    if is_new:
        store.apply_to_message(conn, message, event_type, occurred_at, data)
        reason = _suppression_reason(event_type, data)
        if reason is not None:
            suppression_store.add(
                conn,
                message.tenant_id,
                message.email_key,
                message.email,
                reason,
                now,
                detail=detail,
            )
    return is_new


#: What a report says about a bounce without naming anyone: kept from a report about an erased
#: recipient whose address the report does not give.
_KINDS_OF_BOUNCE = frozenset({"bounce_type", "bounce_subtype", "status"})


def _suppression_reason(event_type: str, data: dict[str, Any]) -> str | None:
    """Hard bounces, complaints and unsubscribes put the address on the tenant's list; a soft
    bounce does not (the mailbox may take mail again)."""
    if event_type == "bounced":
        return "hard_bounce" if data.get("bounce_type") == "hard" else None
    return {"complained": "complaint", "unsubscribed": "unsubscribe"}.get(event_type)


def list_events(
    conn: Connection, campaign_id: str, *, event_type: str | None, cursor: str | None, limit: int
) -> EventPage:
    """A campaign's events in the order they were recorded; ``next_cursor`` continues."""
    if event_type is not None and event_type not in EVENT_TYPES:
        raise BadRequest(
            f"Unknown event type {event_type!r}.",
            code="invalid_event_type",
            details={"allowed": list(EVENT_TYPES)},
        )
    after_id = int(decode_cursor(cursor, 1)[0]) if cursor is not None else None
    rows = store.campaign_events(
        conn, campaign_id, event_type=event_type, after_id=after_id, limit=limit + 1
    )
    page = [_event_view(row) for row in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return EventPage(events=page, next_cursor=next_cursor)


def message_detail(conn: Connection, campaign_id: str, message_pk: int) -> MessageDetail:
    """One message: its record, its outcome, and every status change and event in time order."""
    view = get_message_row(conn, campaign_id, message_pk)
    times = conn.execute(
        select(
            messages.c.outcome,
            messages.c.delivered_at,
            messages.c.bounced_at,
            messages.c.complained_at,
            messages.c.first_opened_at,
            messages.c.first_clicked_at,
            messages.c.unsubscribed_at,
        ).where(messages.c.id == message_pk)
    ).one()
    timeline = [
        TimelineEntry(
            at=row.at,
            kind="status",
            status=row.to_status,
            from_status=row.from_status,
            detail=row.detail,
        )
        for row in message_transitions(conn, message_pk)
    ] + [
        TimelineEntry(at=row.occurred_at, kind="event", type=row.type, data=row.data)
        for row in store.message_events(conn, message_pk)
        # Postroom's own outcomes: the status entries say them (opens, clicks and
        # unsubscribes recorded by Postroom stay).
        if not (row.source == OWN_SOURCE and row.type in OUTCOME_EVENT_TYPES)
    ]
    timeline.sort(key=lambda entry: entry.at)
    return MessageDetail(**view.model_dump(), **times._asdict(), timeline=timeline)


def _event_view(row: Any) -> EventView:
    return EventView(
        id=row.id,
        type=row.type,
        message_id=row.message_pk,
        recipient=row.recipient,
        source=row.source,
        occurred_at=row.occurred_at,
        data=row.data,
    )
