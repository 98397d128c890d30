"""A campaign reaching its end (completed, failed, cancelled) is announced to the tenant's
webhooks as ``campaign.<status>``, in the transaction that moves it there."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from postroom.campaigns.counts import counts_of
from postroom.db.tables import campaigns
from postroom.webhooks import fanout


def announce_end(conn: Connection, campaign_ids: list[str], now: datetime) -> None:
    """Fan out one ``campaign.<status>`` event per campaign, with its state at this moment."""
    if not campaign_ids:
        return
    rows = conn.execute(select(campaigns).where(campaigns.c.id.in_(campaign_ids))).all()
    for row in rows:
        fanout.enqueue_payload(conn, row.tenant_id, f"campaign.{row.status}", _state(row), now)


def _state(campaign: Any) -> dict[str, Any]:
    error = None
    if campaign.error_code:
        error = {"code": campaign.error_code, "message": campaign.error_message or ""}
    return {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "error": error,
        "counts": counts_of(campaign).model_dump(),
        "metadata": campaign.metadata,
        "created_at": campaign.created_at.isoformat(),
        "completed_at": campaign.completed_at.isoformat() if campaign.completed_at else None,
    }
