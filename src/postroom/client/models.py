"""Typed results of the SDK; fields a newer server adds are ignored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Result(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Template(_Result):
    id: str = Field(alias="template_id")
    name: str
    subject: str
    status: str
    variables: list[str] = []
    errors: list[dict[str, Any]] = []
    dependencies: dict[str, str] = {}
    size: int | None = None
    sha256: str | None = None
    created_at: datetime | None = None


class UploadedFile(_Result):
    id: str = Field(alias="file_id")
    size: int


class Counts(_Result):
    total: int = 0
    queued: int = 0
    sending: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    suppressed: int = 0
    cancelled: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0


class Campaign(_Result):
    """A campaign's status with its message counts (``GET .../status``)."""

    id: str = Field(alias="transaction_id")
    name: str = ""
    status: str
    scheduled_at: datetime | None = None
    error: dict[str, Any] | None = None
    counts: Counts = Counts()
    possible_duplicates: int = 0
    file: dict[str, Any] | None = None
    progress: float = 0.0
    metadata: dict[str, str] = {}
    created_at: datetime | None = None
    started_at: datetime | None = None
    paused_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


CampaignStatus = Campaign
FINISHED = frozenset({"completed", "failed", "cancelled"})


class Message(_Result):
    id: int
    row: int
    email: str
    status: str
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
    message_id: str | None = None
    relay_reply: str | None = None
    provider_message_id: str | None = None
    possible_duplicate: bool = False


class Suppression(_Result):
    email: str
    reason: str
    detail: str | None = None
    created_at: datetime | None = None
