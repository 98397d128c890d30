"""Fan-out: one delivery row per new event and subscribed endpoint, written in the transaction
that stores the event, so an event is never stored without its deliveries nor the reverse.

Each call first asks whether the tenant has any endpoint for the types at hand (one small
indexed read), so a tenant without webhooks pays almost nothing on the send path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    String,
    and_,
    cast,
    exists,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from postroom.db.tables import (
    events,
    webhook_deliveries,
    webhook_endpoints,
    webhook_subscriptions,
)
from postroom.ids import new_id
from postroom.webhooks.catalogue import EVERY_TYPE

_DELIVERY_COLUMNS = (
    "endpoint_id",
    "tenant_id",
    "event_uid",
    "event_type",
    "event_id",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)


def _subscribed_endpoints(tenant_id: str, event_type: str) -> Select[tuple[str]]:
    """The tenant's active endpoints that want this type of event (an indexed look)."""
    return (
        select(webhook_subscriptions.c.endpoint_id)
        .join(webhook_endpoints, webhook_endpoints.c.id == webhook_subscriptions.c.endpoint_id)
        .where(
            webhook_subscriptions.c.tenant_id == tenant_id,
            webhook_subscriptions.c.event_type.in_((event_type, EVERY_TYPE)),
            webhook_endpoints.c.status == "active",
        )
    )


def has_subscribers(conn: Connection, tenant_id: str, event_type: str) -> bool:
    """Whether an active endpoint of the tenant wants this type of event."""
    return conn.execute(_subscribed_endpoints(tenant_id, event_type).limit(1)).first() is not None


def enqueue_for_events(
    conn: Connection,
    tenant_id: str,
    event_type: str,
    condition: ColumnElement[bool],
    now: datetime,
) -> None:
    """Deliveries for the tenant's stored events of one type that match ``condition`` (a
    condition on the events table), in one INSERT … SELECT; an event already fanned out to
    an endpoint is not fanned out to it again."""
    if not has_subscribers(conn, tenant_id, event_type):
        return
    event_uid = literal("evt_") + cast(events.c.id, String)
    # On the unique (endpoint, event uid) index: one look per event, however long the log.
    already = exists().where(
        webhook_deliveries.c.endpoint_id == webhook_endpoints.c.id,
        webhook_deliveries.c.event_uid == event_uid,
    )
    conn.execute(
        insert(webhook_deliveries).from_select(
            _DELIVERY_COLUMNS,
            select(
                webhook_endpoints.c.id,
                events.c.tenant_id,
                event_uid,
                events.c.type,
                events.c.id,
                literal("pending"),
                literal(0),
                literal(now, webhook_deliveries.c.next_attempt_at.type),
                literal(now, webhook_deliveries.c.created_at.type),
            )
            .distinct()
            .select_from(
                events.join(
                    webhook_endpoints,
                    and_(
                        webhook_endpoints.c.tenant_id == events.c.tenant_id,
                        webhook_endpoints.c.status == "active",
                    ),
                ).join(
                    webhook_subscriptions,
                    and_(
                        webhook_subscriptions.c.endpoint_id == webhook_endpoints.c.id,
                        or_(
                            webhook_subscriptions.c.event_type == events.c.type,
                            webhook_subscriptions.c.event_type == EVERY_TYPE,
                        ),
                    ),
                )
            )
            .where(
                events.c.tenant_id == tenant_id,
                events.c.type == event_type,
                condition,
                ~already,
            ),
        )
    )


def enqueue_event(
    conn: Connection, tenant_id: str, event_type: str, event_id: int, now: datetime
) -> None:
    """Deliveries for one event just stored."""
    enqueue_for_events(conn, tenant_id, event_type, events.c.id == event_id, now)


def enqueue_payload(
    conn: Connection, tenant_id: str, event_type: str, payload: dict[str, Any], now: datetime
) -> None:
    """Deliveries for an event that lives outside the event store (a campaign's status
    change): its data travels in the delivery row, under one id for every endpoint."""
    endpoint_ids = set(conn.execute(_subscribed_endpoints(tenant_id, event_type)).scalars())
    if not endpoint_ids:
        return
    event_uid = new_id("evt")
    conn.execute(
        insert(webhook_deliveries),
        [
            {
                "endpoint_id": endpoint_id,
                "tenant_id": tenant_id,
                "event_uid": event_uid,
                "event_type": event_type,
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint_id in sorted(endpoint_ids)
        ],
    )
