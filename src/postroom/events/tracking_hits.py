"""Records an open or a click: every hit is an event; the first human one per message moves the
campaign's unique opened / clicked figures (scanner and prefetch hits never do)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Connection

from postroom.events import store
from postroom.events.tracking import suspected_bot


def record_hit(
    conn: Connection,
    event_type: str,
    message_pk: int,
    *,
    url: str | None,
    user_agent: str,
    ip: str | None,
    now: datetime,
    bot_window_seconds: float,
) -> bool:
    """Store an ``opened`` or ``clicked`` event; False when the message is gone."""
    message = store.message_by_id(conn, message_pk)
    if message is None:
        return False
    bot = suspected_bot(user_agent, message.sent_at, now, bot_window_seconds)
    data = {"url": url, "user_agent": user_agent, "ip": ip, "suspected_bot": bot}
    store.append_event(
        conn,
        {
            "tenant_id": message.tenant_id,
            "campaign_id": message.campaign_id,
            "message_pk": message.id,
            "type": event_type,
            "source": "postroom",
            "recipient": message.email,
            "occurred_at": now,
            "recorded_at": now,
            "event_key": f"{event_type}:{message.id}:{uuid.uuid4().hex}",
            "data": data,
        },
    )
    if not bot:
        store.apply_to_message(conn, message, event_type, now, data)  # the URL, for analytics
    return True
