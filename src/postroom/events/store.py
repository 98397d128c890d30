"""The event store's SQL: append events once each, apply them to their message (first times,
final outcome) and to the campaign's unique counts, and read a campaign's events back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, case, insert, select, update
from sqlalchemy.exc import IntegrityError

from postroom.analytics.rollups import facts_of, record_facts
from postroom.db.tables import campaigns, events, messages
from postroom.webhooks import fanout

#: The message column that keeps the first time of each kind of event, and the campaign count
#: it moves (once per message).
FIRST_TIMES = {
    "delivered": "delivered_at",
    "bounced": "bounced_at",
    "complained": "complained_at",
    "opened": "first_opened_at",
    "clicked": "first_clicked_at",
    "unsubscribed": "unsubscribed_at",
}
#: A message's final outcome only moves up this order: a complaint about a delivered message
#: is what the sender must know of it.
OUTCOME_RANK = {"delivered": 1, "bounced": 2, "complained": 3}


def message_by_provider_id(conn: Connection, provider_message_id: str) -> Row[Any] | None:
    """The message a provider knows by this id (the SES MessageId or the relay's queue id),
    with its tenant."""
    return _message_where(messages.c.provider_message_id == provider_message_id)(conn)


def message_by_id(conn: Connection, message_pk: int) -> Row[Any] | None:
    """A message with its tenant, by Postroom's own id."""
    return _message_where(messages.c.id == message_pk)(conn)


def _message_where(condition: Any) -> Callable[[Connection], Row[Any] | None]:
    def find(conn: Connection) -> Row[Any] | None:
        found = conn.execute(
            select(
                messages.c.id,
                messages.c.campaign_id,
                messages.c.email,
                messages.c.email_key,
                messages.c.sent_at,
                campaigns.c.tenant_id,
            )
            .join(campaigns, campaigns.c.id == messages.c.campaign_id)
            .where(condition)
            .limit(1)
        ).first()
        return cast("Row[Any] | None", found)

    return find


def append_event(conn: Connection, values: dict[str, Any]) -> bool:
    """Store one event, and its webhook deliveries; False when its ``event_key`` is stored
    already (a repeat delivery)."""
    try:
        with conn.begin_nested():
            stored = conn.execute(insert(events).values(values))
    except IntegrityError:
        return False
    event_id = stored.inserted_primary_key[0]  # type: ignore[index]
    fanout.enqueue_event(conn, values["tenant_id"], values["type"], event_id, values["recorded_at"])
    return True


def apply_to_message(
    conn: Connection,
    message: Any,
    event_type: str,
    occurred_at: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    """Note the first time of this kind of event on the message, count it once for the
    campaign, move the message's outcome up if this event is a more final one, and add it to
    the campaign's analytics (``data``: the event's, for clicked URLs and bounce reasons)."""
    column = FIRST_TIMES.get(event_type)
    if column is None:
        _count(conn, message, event_type, occurred_at, data, first=False)
        return
    first = conn.execute(
        update(messages)
        .where(messages.c.id == message.id, messages.c[column].is_(None))
        .values({column: occurred_at})
    ).rowcount
    _count(conn, message, event_type, occurred_at, data, first=bool(first))
    if first:
        count = f"{event_type}_count"
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == message.campaign_id)
            .values({count: campaigns.c[count] + 1})
        )
    rank = OUTCOME_RANK.get(event_type)
    if rank is not None:
        current = case(
            *((messages.c.outcome == name, value) for name, value in OUTCOME_RANK.items()),
            else_=0,
        )
        conn.execute(
            update(messages)
            .where(messages.c.id == message.id, current < rank)
            .values(outcome=event_type)
        )


def _count(
    conn: Connection,
    message: Any,
    event_type: str,
    occurred_at: datetime,
    data: dict[str, Any] | None,
    *,
    first: bool,
) -> None:
    if data and data.get("suspected_bot"):
        return  # scanner hits stay out of the analytics, as they stay off the message
    record_facts(
        conn,
        [
            facts_of(
                message.tenant_id,
                message.campaign_id,
                event_type,
                occurred_at,
                message.email,
                data,
                first=first,
            )
        ],
    )


def campaign_events(
    conn: Connection, campaign_id: str, *, event_type: str | None, after_id: int | None, limit: int
) -> list[Row[Any]]:
    query = select(events).where(events.c.campaign_id == campaign_id)
    if event_type is not None:
        query = query.where(events.c.type == event_type)
    if after_id is not None:
        query = query.where(events.c.id > after_id)
    return list(conn.execute(query.order_by(events.c.id).limit(limit)).all())


def message_events(conn: Connection, message_pk: int) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(events).where(events.c.message_pk == message_pk).order_by(events.c.id)
        ).all()
    )
