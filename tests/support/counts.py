"""The campaign counters must always equal counting the message rows."""

from __future__ import annotations

from sqlalchemy import func, select

from postroom.db.tables import MESSAGE_STATUSES, campaigns, messages
from postroom.runtime import Runtime


def assert_counts_match_rows(rt: Runtime) -> None:
    with rt.db.read() as conn:
        counted: dict[tuple[str, str], int] = {
            (campaign_id, status): n
            for campaign_id, status, n in conn.execute(
                select(messages.c.campaign_id, messages.c.status, func.count()).group_by(
                    messages.c.campaign_id, messages.c.status
                )
            )
        }
        for campaign in conn.execute(select(campaigns)):
            kept = {s: getattr(campaign, f"{s}_count") for s in MESSAGE_STATUSES}
            rows = {s: counted.get((campaign.id, s), 0) for s in MESSAGE_STATUSES}
            assert kept == rows, (campaign.id, kept, rows)
