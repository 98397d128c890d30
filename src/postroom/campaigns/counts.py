"""The per-campaign message counts: every change of message status moves them in the same
transaction, so they always equal what counting the rows would give."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, update

from postroom.campaigns.states import MessageStatus
from postroom.db.tables import campaigns


def move_counts(conn: Connection, campaign_id: str, changes: Mapping[str, int]) -> None:
    """Apply ``{status: delta}`` to one campaign's counts (zero deltas are skipped)."""
    values = {
        f"{status}_count": campaigns.c[f"{status}_count"] + delta
        for status, delta in changes.items()
        if delta
    }
    if values:
        conn.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(**values))


def move_by_campaign(
    conn: Connection, campaign_ids: Iterable[str], source: MessageStatus, target: MessageStatus
) -> None:
    """One message per listed campaign id went from ``source`` to ``target``."""
    for campaign_id, moved in Counter(campaign_ids).items():
        move_counts(conn, campaign_id, {source.value: -moved, target.value: moved})
