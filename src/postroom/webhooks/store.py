"""The SQL of webhook endpoints, their subscriptions and their delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from postroom.db.tables import webhook_deliveries, webhook_endpoints, webhook_subscriptions


def insert_endpoint(conn: Connection, values: dict[str, Any], event_types: list[str]) -> None:
    conn.execute(insert(webhook_endpoints).values(values))
    _subscribe(conn, values["id"], values["tenant_id"], event_types)


def find_endpoint(conn: Connection, tenant_id: str, endpoint_id: str) -> Row[Any] | None:
    return conn.execute(
        select(webhook_endpoints).where(
            webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.tenant_id == tenant_id
        )
    ).first()


def tenant_endpoints(conn: Connection, tenant_id: str) -> list[Row[Any]]:
    return list(
        conn.execute(
            select(webhook_endpoints)
            .where(webhook_endpoints.c.tenant_id == tenant_id)
            .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
        ).all()
    )


def count_endpoints(conn: Connection, tenant_id: str) -> int:
    return int(
        conn.execute(
            select(func.count()).where(webhook_endpoints.c.tenant_id == tenant_id)
        ).scalar_one()
    )


def subscriptions(conn: Connection, endpoint_ids: list[str]) -> dict[str, list[str]]:
    """Each endpoint's event types, in name order."""
    found: dict[str, list[str]] = {endpoint_id: [] for endpoint_id in endpoint_ids}
    rows = conn.execute(
        select(webhook_subscriptions.c.endpoint_id, webhook_subscriptions.c.event_type)
        .where(webhook_subscriptions.c.endpoint_id.in_(endpoint_ids))
        .order_by(webhook_subscriptions.c.event_type)
    )
    for endpoint_id, event_type in rows:
        found[endpoint_id].append(event_type)
    return found


def update_endpoint(
    conn: Connection, endpoint: Row[Any], values: dict[str, Any], event_types: list[str] | None
) -> None:
    conn.execute(
        update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint.id).values(values)
    )
    if event_types is not None:
        conn.execute(
            delete(webhook_subscriptions).where(webhook_subscriptions.c.endpoint_id == endpoint.id)
        )
        _subscribe(conn, endpoint.id, endpoint.tenant_id, event_types)


def delete_endpoint(conn: Connection, endpoint_id: str) -> None:
    """The endpoint, its subscriptions and its whole delivery log."""
    for table in (webhook_deliveries, webhook_subscriptions):
        conn.execute(delete(table).where(table.c.endpoint_id == endpoint_id))
    conn.execute(delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id))


def disable_endpoint(conn: Connection, endpoint_id: str, reason: str, now: datetime) -> bool:
    """Stop delivering to the endpoint: it takes no new events, and what was still pending
    for it fails with the reason, so the log says why. False if it was disabled already."""
    disabled = conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.status == "active")
        .values(status="disabled", disabled_reason=reason, updated_at=now)
    ).rowcount
    if disabled:
        conn.execute(
            update(webhook_deliveries)
            .where(
                webhook_deliveries.c.endpoint_id == endpoint_id,
                webhook_deliveries.c.status == "pending",
            )
            .values(
                status="failed",
                last_error=f"endpoint disabled: {reason}",
                finished_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
    return bool(disabled)


def delivery_page(
    conn: Connection, endpoint_id: str, *, status: str | None, before_id: int | None, limit: int
) -> list[Row[Any]]:
    """The log, newest first."""
    query = select(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(webhook_deliveries.c.status == status)
    if before_id is not None:
        query = query.where(webhook_deliveries.c.id < before_id)
    return list(conn.execute(query.order_by(webhook_deliveries.c.id.desc()).limit(limit)).all())


def _subscribe(conn: Connection, endpoint_id: str, tenant_id: str, event_types: list[str]) -> None:
    conn.execute(
        insert(webhook_subscriptions),
        [
            {"endpoint_id": endpoint_id, "tenant_id": tenant_id, "event_type": event_type}
            for event_type in event_types
        ],
    )
