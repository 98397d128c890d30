"""The quotas a new campaign is checked against before anything is queued: the rows of its
file, and the messages its tenant's campaigns took on today. The rows are counted only for a
tenant with either quota, by reading the file up to one row past the smaller limit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, select

from postroom.db.tables import files
from postroom.files.csvreader import CsvLimits
from postroom.files.service import count_rows
from postroom.runtime import Runtime
from postroom.tenants.quotas import Quotas, check_campaign_rows, take_messages, tenant_quotas


@dataclass(frozen=True, slots=True)
class CampaignQuota:
    """A tenant's quotas and the rows of the new campaign's file (None: not counted)."""

    quotas: Quotas
    file_rows: int | None


def campaign_quota(
    rt: Runtime,
    tenant_id: str,
    file_id: str,
    *,
    delimiter: str | None,
    email_column: str | None,
) -> CampaignQuota:
    """Read the tenant's quotas and, when it has a rows or daily quota, count the file's
    rows. Runs before the campaign's transaction: no transaction is held over the file."""
    with rt.db.read_latest() as conn:
        quota = tenant_quotas(conn, tenant_id, rt.settings)
        limits = [n for n in (quota.rows_per_campaign, quota.messages_per_day) if n > 0]
        if not limits:
            return CampaignQuota(quota, None)
        blob_key = conn.execute(
            select(files.c.blob_key).where(
                files.c.id == file_id, files.c.tenant_id == tenant_id, files.c.status == "uploaded"
            )
        ).scalar()
    if blob_key is None:  # creating the campaign refuses it with the reason
        return CampaignQuota(quota, None)
    settings = rt.settings
    rows = count_rows(
        rt.blobs,
        blob_key,
        delimiter=delimiter,
        email_column=email_column,
        limits=CsvLimits(
            max_columns=settings.csv_max_columns,
            max_field_bytes=settings.csv_max_field_bytes,
            max_file_bytes=settings.file_max_bytes,
        ),
        up_to=min(limits) + 1,
    )
    return CampaignQuota(quota, rows)


def charge_campaign(conn: Connection, tenant_id: str, quota: CampaignQuota, now: datetime) -> None:
    """Refuse the campaign when its rows pass a quota, else count them against today (UTC);
    in the campaign's own transaction, so a refused campaign leaves nothing behind."""
    if quota.file_rows is None:
        return
    check_campaign_rows(quota.quotas, quota.file_rows)
    if quota.quotas.messages_per_day:
        day = now.astimezone(UTC).date()
        take_messages(conn, tenant_id, day, quota.file_rows, quota.quotas.messages_per_day)
