"""Campaign and message statuses, spelled exactly as the API spells them."""

from __future__ import annotations

from enum import StrEnum


class CampaignStatus(StrEnum):
    PROCESSING = "processing"
    HELD = "held"  # file processed, waiting for its owner to confirm or discard it
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"


#: A campaign in one of these can still change; the others are final.
ACTIVE_CAMPAIGN_STATUSES = (
    CampaignStatus.PROCESSING,
    CampaignStatus.HELD,
    CampaignStatus.SCHEDULED,
    CampaignStatus.SENDING,
    CampaignStatus.PAUSED,
)

#: Messages in these may be claimed for sending once their ``available_at`` has come.
CLAIMABLE_MESSAGE_STATUSES = (MessageStatus.QUEUED, MessageStatus.DEFERRED)

#: The message life cycle: every status change a message may make, and nothing else.
#: ``sending`` goes back to ``queued`` when a lease is released (a clean stop, an open
#: breaker) or taken back from a worker that died.
MESSAGE_TRANSITIONS: dict[MessageStatus, frozenset[MessageStatus]] = {
    MessageStatus.QUEUED: frozenset(
        {MessageStatus.SENDING, MessageStatus.CANCELLED, MessageStatus.SUPPRESSED}
    ),
    MessageStatus.DEFERRED: frozenset({MessageStatus.SENDING, MessageStatus.CANCELLED}),
    MessageStatus.SENDING: frozenset(
        {
            MessageStatus.SENT,
            MessageStatus.DEFERRED,
            MessageStatus.FAILED,
            MessageStatus.QUEUED,
            MessageStatus.SUPPRESSED,  # its address went on the suppression list meanwhile
        }
    ),
    MessageStatus.SENT: frozenset(),
    MessageStatus.FAILED: frozenset(),
    MessageStatus.SUPPRESSED: frozenset(),
    MessageStatus.CANCELLED: frozenset(),
}


def may_move(source: MessageStatus, target: MessageStatus) -> bool:
    """Whether the life cycle allows a message to go from ``source`` to ``target``."""
    return target in MESSAGE_TRANSITIONS[source]


#: Messages in these are done, one way or another (used for progress).
FINAL_MESSAGE_STATUSES = (
    MessageStatus.SENT,
    MessageStatus.FAILED,
    MessageStatus.SUPPRESSED,
    MessageStatus.CANCELLED,
)
