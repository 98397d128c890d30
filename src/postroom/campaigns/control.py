"""Campaign control by its owner: pause, resume, cancel, and moving ``send_at`` before
sending starts. Each is one guarded UPDATE, so two racing calls cannot both win."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, case, update

from postroom.campaigns import withheld
from postroom.campaigns.announcements import announce_end
from postroom.campaigns.states import ACTIVE_CAMPAIGN_STATUSES, CampaignStatus
from postroom.db.tables import campaigns
from postroom.errors import Conflict, Unprocessable

#: While the file is processed a pause is remembered and applied once the file is in.
PAUSABLE = (CampaignStatus.PROCESSING, CampaignStatus.SCHEDULED, CampaignStatus.SENDING)
RESCHEDULABLE = (CampaignStatus.PROCESSING, CampaignStatus.SCHEDULED, CampaignStatus.PAUSED)


def pause_campaign(conn: Connection, campaign: Row[Any], now: datetime) -> None:
    """Stop claiming the campaign's messages; those in flight finish and keep their outcome.

    Workers share-lock a sending campaign while they claim, so the pause waits for a claim
    in progress and no later batch is claimed: it takes effect within one batch."""
    if campaign.status == CampaignStatus.PAUSED:
        return  # pausing twice is not an error
    paused = conn.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign.id, campaigns.c.status.in_(PAUSABLE))
        .values(
            status=_unless_processing(CampaignStatus.PAUSED),
            paused_at=now,
        )
    ).rowcount
    if not paused:
        raise _cannot(campaign, "paused")


def resume_campaign(conn: Connection, campaign: Row[Any], now: datetime) -> str:
    """Carry on: sending again, or scheduled if its ``send_at`` is still ahead. Returns the
    new status."""
    if campaign.status == CampaignStatus.PROCESSING:
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign.id, campaigns.c.status == CampaignStatus.PROCESSING)
            .values(paused_at=None)
        )
        return CampaignStatus.PROCESSING
    if campaign.status != CampaignStatus.PAUSED:
        if campaign.status in (CampaignStatus.SCHEDULED, CampaignStatus.SENDING):
            return str(campaign.status)  # not paused: nothing to resume
        raise _cannot(campaign, "resumed")
    is_scheduled = campaign.scheduled_at is not None and campaign.scheduled_at > now
    status = CampaignStatus.SCHEDULED if is_scheduled else CampaignStatus.SENDING
    resumed = conn.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign.id, campaigns.c.status == CampaignStatus.PAUSED)
        .values(
            status=status,
            paused_at=None,
            started_at=campaign.started_at or (None if is_scheduled else now),
        )
    ).rowcount
    if not resumed:
        raise _cannot(campaign, "resumed")
    return status


def cancel_campaign(conn: Connection, campaign: Row[Any], now: datetime) -> None:
    """Stop a campaign: messages not yet handed to the relay become ``cancelled``; messages
    in flight finish and keep their real outcome."""
    result = conn.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign.id, campaigns.c.status.in_(ACTIVE_CAMPAIGN_STATUSES))
        .values(status=CampaignStatus.CANCELLED, completed_at=now, lease_owner=None)
    )
    if result.rowcount == 0:
        raise _cannot(campaign, "cancelled")
    withheld.cancel_messages(conn, campaign.id, now, "campaign cancelled")
    announce_end(conn, [campaign.id], now)


def reschedule_campaign(
    conn: Connection, campaign: Row[Any], send_at: datetime | None, now: datetime
) -> None:
    """Move ``send_at`` before sending starts; ``None`` or a past time means now."""
    if send_at is not None and (send_at.tzinfo is None or send_at.utcoffset() is None):
        raise Unprocessable(
            "send_at needs a UTC offset, e.g. 2026-12-01T09:00:00+00:00.",
            code="timezone_required",
        )
    scheduled_at = send_at if send_at is not None and send_at > now else None
    values: dict[str, Any] = {"scheduled_at": scheduled_at}
    guard = campaigns.c.status.in_(RESCHEDULABLE)
    if campaign.status == CampaignStatus.SCHEDULED and scheduled_at is None:
        values.update(status=CampaignStatus.SENDING, started_at=now)
    moved = conn.execute(
        update(campaigns).where(campaigns.c.id == campaign.id, guard).values(values)
    ).rowcount
    if not moved:
        raise Conflict(
            f"The campaign is {campaign.status}: send_at can only move before sending starts.",
            code="campaign_already_started",
            details={"status": campaign.status},
        )


def confirm_campaign(
    conn: Connection, campaign: Row[Any], send_at: datetime | None, now: datetime
) -> str:
    """Send a held campaign: now, or at ``send_at`` (None or a past time means now).
    Returns the new status."""
    if send_at is not None and (send_at.tzinfo is None or send_at.utcoffset() is None):
        raise Unprocessable(
            "send_at needs a UTC offset, e.g. 2026-12-01T09:00:00+00:00.",
            code="timezone_required",
        )
    if campaign.status != CampaignStatus.HELD:
        if campaign.status == CampaignStatus.PROCESSING:
            raise Conflict(
                "The campaign's file is still being processed; confirm it once it is held.",
                code="campaign_not_held",
                details={"status": campaign.status},
            )
        raise Conflict(
            f"The campaign is {campaign.status}: only a held campaign can be confirmed.",
            code="campaign_not_held",
            details={"status": campaign.status},
        )
    scheduled_at = send_at if send_at is not None and send_at > now else None
    status = CampaignStatus.SCHEDULED if scheduled_at else CampaignStatus.SENDING
    confirmed = conn.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign.id, campaigns.c.status == CampaignStatus.HELD)
        .values(
            status=status,
            scheduled_at=scheduled_at,
            hold=False,
            paused_at=None,  # a pause asked for while the file was read ends with the hold
            started_at=None if scheduled_at else now,
        )
    ).rowcount
    if not confirmed:
        raise _cannot(campaign, "confirmed")
    return status


def _unless_processing(target: CampaignStatus) -> Any:
    # A campaign whose file is still being processed stays `processing` (with paused_at
    # set); lifecycle.finish_processing makes it paused when the file is in.
    return case(
        (campaigns.c.status == CampaignStatus.PROCESSING, CampaignStatus.PROCESSING.value),
        else_=target.value,
    )


def _cannot(campaign: Row[Any], what: str) -> Conflict:
    if campaign.status not in ACTIVE_CAMPAIGN_STATUSES:
        return Conflict(
            f"The campaign is {campaign.status} and cannot be {what}.",
            code="campaign_finished",
            details={"status": campaign.status},
        )
    # It was active when read and changed before the guarded update: another call won.
    return Conflict(
        f"The campaign changed while it was being {what}; read its status and try again.",
        code="campaign_changed",
        details={"status": campaign.status},
    )
