"""Campaign and message statuses, spelled exactly as the API spells them."""

from __future__ import annotations

from enum import StrEnum


class CampaignStatus(StrEnum):
    PROCESSING = "processing"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"


#: A campaign in one of these can still change; the others are final.
ACTIVE_CAMPAIGN_STATUSES = (
    CampaignStatus.PROCESSING,
    CampaignStatus.SCHEDULED,
    CampaignStatus.SENDING,
)

#: Messages in these are done, one way or another (used for progress).
FINAL_MESSAGE_STATUSES = (
    MessageStatus.SENT,
    MessageStatus.FAILED,
    MessageStatus.SUPPRESSED,
    MessageStatus.CANCELLED,
)

#: Template variables every message has besides its CSV columns.
BUILTIN_VARIABLES = frozenset({"email"})
