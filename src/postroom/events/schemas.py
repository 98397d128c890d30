"""Wire models for events: a campaign's event pages and one message with its timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from postroom.campaigns.schemas import MessageView


class EventView(BaseModel):
    id: int
    type: str
    message_id: int
    recipient: str | None
    source: str = Field(description="Who reported it: ses, smtp or tracking.")
    occurred_at: datetime
    data: dict[str, Any]


class EventPage(BaseModel):
    events: list[EventView]
    next_cursor: str | None


class TimelineEntry(BaseModel):
    at: datetime
    kind: Literal["status", "event"]
    status: str | None = Field(default=None, description="kind=status: the new status.")
    from_status: str | None = None
    type: str | None = Field(default=None, description="kind=event: the event type.")
    detail: str | None = None
    data: dict[str, Any] | None = None


class MessageDetail(MessageView):
    outcome: str | None = Field(description="delivered, bounced or complained, once known.")
    delivered_at: datetime | None
    bounced_at: datetime | None
    complained_at: datetime | None
    first_opened_at: datetime | None
    first_clicked_at: datetime | None
    unsubscribed_at: datetime | None
    timeline: list[TimelineEntry]
