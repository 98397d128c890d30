"""The event types an endpoint may subscribe to, as the receiver sees them."""

from __future__ import annotations

from postroom.db.tables import EVENT_TYPES as STORED_EVENT_TYPES

#: What happened to one message: the event store's types.
MESSAGE_EVENT_TYPES = STORED_EVENT_TYPES
#: A campaign reaching its end.
CAMPAIGN_EVENT_TYPES = ("campaign.completed", "campaign.failed", "campaign.cancelled")
#: Subscribes to every type, including types added later.
EVERY_TYPE = "*"

EVENT_TYPES = (*MESSAGE_EVENT_TYPES, *CAMPAIGN_EVENT_TYPES)
