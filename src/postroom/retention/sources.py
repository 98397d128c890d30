"""Deletes the CSVs of recipient files that no campaign has needed for the retention time
(counted from when a campaign last finished reading the file, or, for a file no campaign
ever used, from its upload); the file row stays, marked, so that the API says it is gone."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update

from postroom.campaigns.states import CampaignStatus
from postroom.db.tables import campaigns, files
from postroom.runtime import Runtime

BATCH_FILES = 100


def delete_expired_sources(rt: Runtime, now: datetime, days: float) -> int:
    """Delete, a batch at a time, the CSVs last read by a campaign ``days`` or more before
    ``now`` and not being read by one now, and those uploaded that long ago that no campaign
    ever used; returns how many files lost their CSV.

    Each blob is deleted before its row is marked, outside any transaction: a worker that
    dies in between leaves a row that the next run marks, never a kept blob nobody knows
    of. Several workers may run this at once; deleting a blob twice is harmless and only
    one of them marks each row."""
    if days <= 0:
        return 0
    cutoff = now - timedelta(days=days)
    is_being_read = exists().where(
        campaigns.c.file_id == files.c.id, campaigns.c.status == CampaignStatus.PROCESSING
    )
    is_used = exists().where(campaigns.c.file_id == files.c.id)
    expired = or_(
        files.c.processed_at <= cutoff,
        and_(files.c.processed_at.is_(None), files.c.uploaded_at <= cutoff, ~is_used),
    )
    deleted = 0
    while True:
        with rt.db.read_latest() as conn:
            batch = conn.execute(
                select(files.c.id, files.c.blob_key)
                .where(
                    files.c.source_deleted_at.is_(None),
                    expired,
                    ~is_being_read,
                )
                .order_by(files.c.id)
                .limit(BATCH_FILES)
            ).all()
        for row in batch:
            rt.blobs.delete(row.blob_key)
        if batch:
            with rt.db.write() as conn:
                deleted += conn.execute(
                    update(files)
                    .where(
                        files.c.id.in_([r.id for r in batch]), files.c.source_deleted_at.is_(None)
                    )
                    .values(source_deleted_at=now)
                ).rowcount
        if len(batch) < BATCH_FILES:
            return deleted
