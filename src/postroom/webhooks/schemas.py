"""Wire models for webhooks: endpoints, the secret shown once, and the delivery log."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from postroom.wiretext import OneLine, Text


class WebhookRequest(BaseModel):
    """Body of ``POST /api/v1/webhooks``."""

    model_config = ConfigDict(extra="forbid")
    url: Text = Field(max_length=2000, description="http(s) URL that receives the events.")
    events: list[Text] = Field(
        min_length=1,
        max_length=50,
        description='Event types to deliver (see the README), or ["*"] for all of them.',
    )
    description: OneLine | None = Field(default=None, max_length=500)


class WebhookUpdate(BaseModel):
    """Body of ``PATCH /api/v1/webhooks/{id}``: only the fields given change."""

    model_config = ConfigDict(extra="forbid")
    url: Text | None = Field(default=None, max_length=2000)
    events: list[Text] | None = Field(default=None, min_length=1, max_length=50)
    description: OneLine | None = Field(default=None, max_length=500)
    enabled: bool | None = Field(
        default=None,
        description="false disables the endpoint; true enables it again and forgets its failures.",
    )


class WebhookView(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    status: str = Field(description="active or disabled")
    disabled_reason: str | None
    failing_since: datetime | None = Field(
        description="The first failed delivery since the last success; after "
        "POSTROOM_WEBHOOK_DISABLE_AFTER_HOURS of failures the endpoint is disabled."
    )
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookView):
    secret: str = Field(description="Signs every delivery. Shown only now: keep it safe.")


class WebhookList(BaseModel):
    webhooks: list[WebhookView]


class WebhookSecret(BaseModel):
    id: str
    secret: str = Field(description="The new signing secret; the old one stops at once.")


class DeliveryView(BaseModel):
    id: int
    event_id: str = Field(description="The id in the delivered body, the same on every retry.")
    event_type: str
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    next_attempt_at: datetime | None = Field(description="While pending: the next try.")
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryView]
    next_cursor: str | None
