"""The JSON body of a delivery: the same event, with the same id, on every attempt."""

from __future__ import annotations

import json
from typing import Any


def event_body(delivery: Any) -> bytes:
    """``{"id", "type", "created_at", "data"}``; ``data`` is the message event as the events
    API shows it, or the campaign's state for a ``campaign.*`` event."""
    if delivery.payload is not None:
        data = delivery.payload
    else:
        data = {
            "campaign_id": delivery.campaign_id,
            "message_id": delivery.message_pk,
            "recipient": delivery.recipient,
            "source": delivery.source,
            "occurred_at": delivery.occurred_at.isoformat(),
            "details": delivery.event_data,
        }
    body = {
        "id": delivery.event_uid,
        "type": delivery.event_type,
        "created_at": delivery.created_at.isoformat(),
        "data": data,
    }
    return json.dumps(body, separators=(",", ":"), default=str).encode("utf-8")
