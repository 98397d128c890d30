"""Deletes webhook deliveries that finished (delivered, or failed for good) long enough ago,
so that the record of what each receiver was sent does not grow for ever. Pending ones are
never touched, whatever their age."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from postroom.db.tables import webhook_deliveries
from postroom.runtime import Runtime

BATCH_DELIVERIES = 5000


def delete_finished_deliveries(rt: Runtime, now: datetime, days: float) -> int:
    """Delete deliveries finished ``days`` or more before ``now``, a batch at a time in
    short transactions (any number of workers may run this at once); how many went."""
    if days <= 0:
        return 0
    cutoff = now - timedelta(days=days)
    oldest = (
        select(webhook_deliveries.c.id)
        .where(webhook_deliveries.c.status != "pending", webhook_deliveries.c.finished_at <= cutoff)
        .order_by(webhook_deliveries.c.finished_at)
        .limit(BATCH_DELIVERIES)
    )
    deleted = 0
    while True:
        with rt.db.write() as conn:
            gone = conn.execute(
                delete(webhook_deliveries).where(
                    webhook_deliveries.c.id.in_(oldest.scalar_subquery())
                )
            ).rowcount
        deleted += gone
        if gone < BATCH_DELIVERIES:
            return deleted
