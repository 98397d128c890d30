"""The SQL of the delivery queue: claim due deliveries under a lease (SKIP LOCKED, so many
workers share the queue), and record each attempt's outcome on the delivery and its endpoint."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, select, update

from postroom.db.tables import events, webhook_deliveries, webhook_endpoints
from postroom.webhooks.store import disable_endpoint

_CLAIMED = (
    webhook_deliveries.c.id,
    webhook_deliveries.c.endpoint_id,
    webhook_deliveries.c.event_uid,
    webhook_deliveries.c.event_type,
    webhook_deliveries.c.payload,
    webhook_deliveries.c.attempts,
    webhook_deliveries.c.created_at,
    webhook_endpoints.c.url,
    webhook_endpoints.c.secret,
    events.c.campaign_id,
    events.c.message_pk,
    events.c.recipient,
    events.c.source,
    events.c.occurred_at,
    events.c.data.label("event_data"),
)


def any_due(conn: Connection, now: datetime) -> bool:
    """Whether any delivery is due and free to claim (an indexed look, no lock)."""
    return (
        conn.execute(
            select(webhook_deliveries.c.id)
            .where(
                webhook_deliveries.c.status == "pending",
                webhook_deliveries.c.next_attempt_at <= now,
                _lease_free(now),
            )
            .limit(1)
        ).first()
        is not None
    )


def claim_due(
    conn: Connection,
    worker_id: str,
    now: datetime,
    *,
    limit: int,
    lease_seconds: float,
    per_endpoint: int,
    busy: Counter[str],
) -> list[Row[Any]]:
    """Up to ``limit`` due deliveries, oldest due first, with what their body and request
    need. No endpoint gets more than ``per_endpoint`` in flight in this worker (``busy``
    counts those already out), so one slow endpoint cannot take every slot."""
    if limit <= 0:
        return []
    full = [endpoint_id for endpoint_id, count in busy.items() if count >= per_endpoint]
    due = (
        select(webhook_deliveries.c.id, webhook_deliveries.c.endpoint_id)
        .where(
            webhook_deliveries.c.status == "pending",
            webhook_deliveries.c.next_attempt_at <= now,
            _lease_free(now),
        )
        .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id)
        .limit(limit * 4)
        .with_for_update(skip_locked=True)
    )
    if full:
        due = due.where(webhook_deliveries.c.endpoint_id.not_in(full))
    taken: list[int] = []
    share = Counter(busy)
    for delivery_id, endpoint_id in conn.execute(due):
        if share[endpoint_id] < per_endpoint and len(taken) < limit:
            share[endpoint_id] += 1
            taken.append(delivery_id)
    if not taken:
        return []
    conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id.in_(taken))
        .values(lease_owner=worker_id, lease_expires_at=now + timedelta(seconds=lease_seconds))
    )
    claimed: list[Row[Any]] = []
    claimed.extend(
        conn.execute(
            select(*_CLAIMED)
            .select_from(
                webhook_deliveries.join(
                    webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id
                ).outerjoin(events, events.c.id == webhook_deliveries.c.event_id)
            )
            .where(webhook_deliveries.c.id.in_(taken))
            .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id)
        )
    )
    return claimed


def record_delivered(
    conn: Connection, delivery: Row[Any], worker_id: str, status_code: int, now: datetime
) -> None:
    """A 2xx: the delivery is done and its endpoint is healthy again."""
    done = conn.execute(
        update(webhook_deliveries)
        .where(_still_ours(delivery.id, worker_id))
        .values(
            status="delivered",
            attempts=webhook_deliveries.c.attempts + 1,
            last_status_code=status_code,
            last_error=None,
            finished_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )
    ).rowcount
    if done:
        conn.execute(
            update(webhook_endpoints)
            .where(
                webhook_endpoints.c.id == delivery.endpoint_id,
                webhook_endpoints.c.failing_since.is_not(None),
            )
            .values(failing_since=None)
        )


def record_failed_attempt(
    conn: Connection,
    delivery: Row[Any],
    worker_id: str,
    now: datetime,
    *,
    status_code: int | None,
    error: str,
    next_attempt_at: datetime | None,
    disable_after: timedelta,
    gone: bool,
) -> str | None:
    """A failed attempt: tried again at ``next_attempt_at``, or failed for good when that is
    None. The endpoint is disabled when it has failed for ``disable_after`` without a single
    success in between, or at once when it answered 410 Gone; returns the reason then."""
    values: dict[str, Any] = {
        "attempts": webhook_deliveries.c.attempts + 1,
        "last_status_code": status_code,
        "last_error": error,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if next_attempt_at is None:
        values.update(status="failed", finished_at=now)
    else:
        values["next_attempt_at"] = next_attempt_at
    recorded = conn.execute(
        update(webhook_deliveries).where(_still_ours(delivery.id, worker_id)).values(values)
    ).rowcount
    if not recorded:
        return None
    conn.execute(
        update(webhook_endpoints)
        .where(
            webhook_endpoints.c.id == delivery.endpoint_id,
            webhook_endpoints.c.failing_since.is_(None),
        )
        .values(failing_since=now)
    )
    failing_since = conn.execute(
        select(webhook_endpoints.c.failing_since).where(
            webhook_endpoints.c.id == delivery.endpoint_id
        )
    ).scalar_one_or_none()
    if gone:
        reason = "the endpoint answered 410 Gone"
    elif failing_since is not None and now - failing_since >= disable_after:
        reason = (
            f"every delivery failed since {failing_since.isoformat(timespec='seconds')} "
            f"(last: {error})"
        )
    else:
        return None
    return reason if disable_endpoint(conn, delivery.endpoint_id, reason, now) else None


def _lease_free(now: datetime) -> Any:
    return webhook_deliveries.c.lease_expires_at.is_(None) | (
        webhook_deliveries.c.lease_expires_at <= now
    )


def _still_ours(delivery_id: int, worker_id: str) -> Any:
    """The lease is still this worker's: a delivery whose lease ran out and was claimed
    again elsewhere is that worker's to record."""
    return (
        (webhook_deliveries.c.id == delivery_id)
        & (webhook_deliveries.c.status == "pending")
        & (webhook_deliveries.c.lease_owner == worker_id)
    )
