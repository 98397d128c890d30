"""The history of each message's status: one ``message_transitions`` row per change, written
in the same transaction as the change; and the campaign's count of possible duplicates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, insert, literal, select, update

from postroom.campaigns.states import MessageStatus
from postroom.db.tables import campaigns, message_transitions, messages

_TRANSITION_COLUMNS = [
    "message_pk",
    "campaign_id",
    "at",
    "from_status",
    "to_status",
    "attempt",
    "detail",
]


def record_transitions(
    conn: Connection,
    now: datetime,
    source: MessageStatus,
    target: MessageStatus,
    *where: Any,
    detail: Any = None,
) -> None:
    """Record that the messages ``where`` selects (now in ``target``) came from ``source``,
    in one INSERT … SELECT: the attempt count and the detail (a reply, an error) are read
    from the rows just written, so nothing travels back and forth per message."""
    conn.execute(
        insert(message_transitions).from_select(
            _TRANSITION_COLUMNS,
            select(
                messages.c.id,
                messages.c.campaign_id,
                literal(now, message_transitions.c.at.type),
                literal(source.value),
                literal(target.value),
                messages.c.attempts,
                literal(None, Text) if detail is None else detail,
            ).where(*where),
        )
    )


def count_possible_duplicates(conn: Connection, by_campaign: dict[str, int]) -> None:
    for campaign_id, count in sorted(by_campaign.items()):
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .values(possible_duplicate_count=campaigns.c.possible_duplicate_count + count)
        )
