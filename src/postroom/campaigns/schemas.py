"""Wire models for campaigns: what clients send and what the API answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from postroom.wiretext import OneLine, Text


class Sender(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Text = Field(max_length=320)
    name: OneLine | None = Field(default=None, max_length=200)


class CampaignRequest(BaseModel):
    """Body of ``POST /api/v1/campaigns``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    template_id: Text = Field(max_length=40)
    file_id: Text = Field(max_length=40)
    name: OneLine | None = Field(default=None, max_length=200)
    sender: Sender | None = Field(default=None, alias="from")
    reply_to: Text | None = Field(default=None, max_length=320)
    send_at: datetime | None = Field(
        default=None, description="ISO-8601 with a UTC offset; a past time means now."
    )
    email_column: Text | None = Field(default=None, max_length=200)
    csv_delimiter: Text | None = Field(default=None, max_length=4)
    metadata: dict[Text, Text] = Field(default_factory=dict)
    track_opens: bool | None = Field(
        default=None, description="Add an open-tracking pixel; omitted: the tenant's default."
    )
    track_clicks: bool | None = Field(
        default=None, description="Track link clicks; omitted: the tenant's default."
    )
    hold: bool = Field(
        default=False,
        description="Process the file, then wait (status held) for POST .../confirm "
        "instead of scheduling or sending.",
    )


class CampaignAccepted(BaseModel):
    transaction_id: str
    status: str
    status_url: str


class CampaignError(BaseModel):
    code: str
    message: str


class MessageCounts(BaseModel):
    total: int = 0
    queued: int = 0
    sending: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    suppressed: int = 0
    cancelled: int = 0
    # After hand-over, unique recipients (each message counted once per kind):
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0


class FileReport(BaseModel):
    rows: int
    valid: int
    invalid: int
    duplicates: int
    columns: list[str] | None
    warnings: list[str]
    errors_url: str


class CampaignStatusView(BaseModel):
    transaction_id: str
    name: str
    status: str
    scheduled_at: datetime | None
    error: CampaignError | None
    counts: MessageCounts
    possible_duplicates: int = Field(
        description="Messages that may have reached the relay twice: a worker died or the "
        "connection was lost while they were being handed over."
    )
    file: FileReport
    progress: float
    metadata: dict[str, str]
    track_opens: bool
    track_clicks: bool
    created_at: datetime
    started_at: datetime | None
    paused_at: datetime | None
    completed_at: datetime | None


class CampaignPage(BaseModel):
    campaigns: list[CampaignStatusView]
    next_cursor: str | None


class MessageView(BaseModel):
    id: int
    row: int
    email: str
    status: str
    attempts: int
    next_attempt_at: datetime | None = Field(description="When a deferred message is retried.")
    last_error: str | None
    sent_at: datetime | None
    message_id: str | None
    relay_reply: str | None
    provider_message_id: str | None = Field(
        description="The relay's queue id or the provider's message id (SES MessageId)."
    )
    possible_duplicate: bool


class MessagePage(BaseModel):
    messages: list[MessageView]
    next_cursor: str | None


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True)
