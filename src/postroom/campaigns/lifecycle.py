"""Campaign transitions made by workers: claim for processing, finish or fail processing,
start scheduled campaigns, and complete campaigns whose messages are all done."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, delete, func, select, update

from postroom.campaigns.announcements import announce_end
from postroom.campaigns.states import CampaignStatus
from postroom.campaigns.withheld import suppress_listed
from postroom.db.bulk import refresh_statistics
from postroom.db.tables import MESSAGE_STATUSES, campaigns, files, messages

# A campaign this large refreshes the database's statistics of the message table once its
# file is in; smaller ones are left to the database's own schedule.
BULK_LOAD_ROWS = 10_000


def claim_campaign_for_processing(
    conn: Connection, worker_id: str, now: datetime, lease_seconds: int
) -> Row[Any] | None:
    """Lease the oldest campaign whose file nobody is processing (or whose processor died)."""
    candidate = (
        select(campaigns.c.id)
        .where(
            campaigns.c.status == CampaignStatus.PROCESSING,
            (campaigns.c.lease_expires_at.is_(None)) | (campaigns.c.lease_expires_at < now),
        )
        .order_by(campaigns.c.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return conn.execute(
        update(campaigns)
        .where(campaigns.c.id == candidate)
        .values(lease_owner=worker_id, lease_expires_at=now + timedelta(seconds=lease_seconds))
        .returning(*campaigns.c)
    ).first()


def still_processing(conn: Connection, campaign_id: str, worker_id: str) -> bool:
    """True while this worker holds the processing lease (not cancelled, not taken over).

    The row stays locked until the caller's transaction ends (PostgreSQL), so a cancel
    waits for the batch being written and then cancels its messages too.
    """
    return (
        conn.execute(
            select(campaigns.c.id)
            .where(
                campaigns.c.id == campaign_id,
                campaigns.c.status == CampaignStatus.PROCESSING,
                campaigns.c.lease_owner == worker_id,
            )
            .with_for_update()
        ).first()
        is not None
    )


def release_processing(conn: Connection, campaign_id: str, worker_id: str) -> None:
    """Give the lease back (on shutdown) so another worker resumes at once."""
    conn.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign_id, campaigns.c.lease_owner == worker_id)
        .values(lease_owner=None, lease_expires_at=None)
    )


def finish_processing(conn: Connection, campaign: Row[Any], worker_id: str, now: datetime) -> str:
    """The whole file is in: the campaign becomes scheduled or starts sending. A file without
    a single valid recipient fails the campaign. Returns the new status."""
    current = conn.execute(select(campaigns).where(campaigns.c.id == campaign.id)).one()
    if current.valid_rows == 0:
        fail_campaign(
            conn,
            campaign.id,
            worker_id,
            code="no_valid_recipients",
            message="No row of the file holds a valid, unique address; see the row report.",
            now=now,
        )
        return CampaignStatus.FAILED
    if current.valid_rows >= BULK_LOAD_ROWS:
        refresh_statistics(conn, messages)
    suppress_listed(conn, campaign.id, current.tenant_id, now)
    _mark_file_processed(conn, current.file_id, now)
    is_scheduled = current.scheduled_at is not None and current.scheduled_at > now
    status = CampaignStatus.SCHEDULED if is_scheduled else CampaignStatus.SENDING
    if current.paused_at is not None:  # paused while its file was being processed
        status = CampaignStatus.PAUSED
    if current.hold:  # its owner confirms it after reading the file report
        status = CampaignStatus.HELD
    conn.execute(
        update(campaigns)
        .where(
            campaigns.c.id == campaign.id,
            campaigns.c.status == CampaignStatus.PROCESSING,
            campaigns.c.lease_owner == worker_id,
        )
        .values(
            status=status,
            lease_owner=None,
            lease_expires_at=None,
            started_at=now if status == CampaignStatus.SENDING else None,
        )
    )
    return status


def fail_campaign(
    conn: Connection, campaign_id: str, worker_id: str, *, code: str, message: str, now: datetime
) -> None:
    """A whole-file problem: the campaign fails and the messages already written from the file
    are removed, so nothing from a broken file is ever sent."""
    result = conn.execute(
        update(campaigns)
        .where(
            campaigns.c.id == campaign_id,
            campaigns.c.status == CampaignStatus.PROCESSING,
            campaigns.c.lease_owner == worker_id,
        )
        .values(
            status=CampaignStatus.FAILED,
            error_code=code,
            error_message=message,
            completed_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )
    )
    if result.rowcount:
        file_id = conn.execute(
            select(campaigns.c.file_id).where(campaigns.c.id == campaign_id)
        ).scalar_one()
        _mark_file_processed(conn, file_id, now)
        conn.execute(delete(messages).where(messages.c.campaign_id == campaign_id))
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .values({f"{status}_count": 0 for status in MESSAGE_STATUSES})
        )
        announce_end(conn, [campaign_id], now)


def _mark_file_processed(conn: Connection, file_id: str, now: datetime) -> None:
    """Source retention counts from the last time a campaign finished reading the file."""
    conn.execute(update(files).where(files.c.id == file_id).values(processed_at=now))


def start_due_campaigns(conn: Connection, now: datetime) -> int:
    """Scheduled campaigns whose time has come start sending."""
    return conn.execute(
        update(campaigns)
        .where(campaigns.c.status == CampaignStatus.SCHEDULED, campaigns.c.scheduled_at <= now)
        .values(status=CampaignStatus.SENDING, started_at=now)
    ).rowcount


def next_scheduled_start(conn: Connection) -> datetime | None:
    """When the earliest scheduled campaign is due, so the scheduler can wake exactly then."""
    return conn.execute(
        select(func.min(campaigns.c.scheduled_at)).where(
            campaigns.c.status == CampaignStatus.SCHEDULED
        )
    ).scalar()


def complete_finished_campaigns(
    conn: Connection, now: datetime, campaign_ids: list[str] | None = None
) -> int:
    """Sending campaigns with no message left to send become ``completed``."""
    query = update(campaigns).where(
        campaigns.c.status == CampaignStatus.SENDING,
        campaigns.c.queued_count == 0,
        campaigns.c.sending_count == 0,
        campaigns.c.deferred_count == 0,
    )
    if campaign_ids is not None:
        query = query.where(campaigns.c.id.in_(campaign_ids))
    completed = list(
        conn.execute(
            query.values(status=CampaignStatus.COMPLETED, completed_at=now).returning(
                campaigns.c.id
            )
        ).scalars()
    )
    announce_end(conn, completed, now)
    return len(completed)


def sending_campaigns(conn: Connection) -> list[Row[Any]]:
    """Campaigns whose messages may be claimed now, in id order (the order in which every
    transaction locks campaign rows, so that claims and outcomes never deadlock)."""
    return list(
        conn.execute(
            select(campaigns)
            .where(campaigns.c.status == CampaignStatus.SENDING)
            .order_by(campaigns.c.id)
        ).all()
    )
