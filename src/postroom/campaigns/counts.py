"""The per-campaign message counts: every change of message status moves them in the same
transaction, so they always equal what counting the rows would give."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, update

from postroom.campaigns.schemas import MessageCounts
from postroom.campaigns.states import MessageStatus
from postroom.db.tables import ENGAGEMENT_COUNTS, campaigns


def counts_of(campaign: Any) -> MessageCounts:
    """The counts a campaign row keeps, as the API shows them."""
    by_status = {s.value: getattr(campaign, f"{s.value}_count") for s in MessageStatus}
    engagement = {name: getattr(campaign, f"{name}_count") for name in ENGAGEMENT_COUNTS}
    return MessageCounts(total=sum(by_status.values()), **by_status, **engagement)


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
