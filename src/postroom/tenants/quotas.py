"""What a tenant may use: its API request rate and its quotas (the largest recipient file,
rows per campaign, messages per UTC day), its own or the platform's, and the daily counter
the messages quota is checked against."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date
from typing import Any

from sqlalchemy import Connection, select, true, update
from sqlalchemy.dialects import postgresql, sqlite

from postroom.config import Settings
from postroom.db.tables import tenant_daily_usage, tenants
from postroom.errors import NotFound, QuotaExceeded
from postroom.rates import parse_rate


@dataclass(frozen=True, slots=True)
class OwnLimits:
    """A tenant's own settings (``postroom tenant quotas``); None: the platform's default.
    0 means no limit, except for ``file_bytes``, which POSTROOM_FILE_MAX_BYTES always caps."""

    api_rate: float | None = None  # requests per second per API key
    api_burst: int | None = None
    file_bytes: int | None = None
    rows_per_campaign: int | None = None
    messages_per_day: int | None = None


_COLUMNS = {
    "api_rate": tenants.c.api_rate_limit,
    "api_burst": tenants.c.api_rate_burst,
    "file_bytes": tenants.c.quota_file_bytes,
    "rows_per_campaign": tenants.c.quota_rows_per_campaign,
    "messages_per_day": tenants.c.quota_messages_per_day,
}


@dataclass(frozen=True, slots=True)
class RequestRate:
    """Requests per second per API key (0: none) and how many may come at once."""

    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class Quotas:
    """The quotas in force for a tenant; 0: none (``file_bytes`` is never 0)."""

    file_bytes: int
    rows_per_campaign: int
    messages_per_day: int


def own_limits(conn: Connection, tenant_id: str) -> OwnLimits:
    row = conn.execute(select(*_COLUMNS.values()).where(tenants.c.id == tenant_id)).first()
    if row is None:
        raise NotFound(f"No tenant {tenant_id!r}.", code="tenant_not_found")
    return OwnLimits(*row)


def set_own_limits(conn: Connection, tenant_id: str, limits: OwnLimits) -> None:
    """Replace a tenant's own settings (None: back to the platform's default)."""
    values = {_COLUMNS[f.name].name: getattr(limits, f.name) for f in fields(OwnLimits)}
    changed = conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(**values))
    if not changed.rowcount:
        raise NotFound(f"No tenant {tenant_id!r}.", code="tenant_not_found")


def changed_limits(current: OwnLimits, **changes: Any) -> OwnLimits:
    """``current`` with the given fields replaced (a field given as None is left alone; give
    ``"default"`` to clear it)."""
    wanted = {name: value for name, value in changes.items() if value is not None}
    return replace(
        current, **{name: None if value == "default" else value for name, value in wanted.items()}
    )


def request_rate(own: OwnLimits, settings: Settings) -> RequestRate:
    rate = parse_rate(settings.api_rate_limit) if own.api_rate is None else own.api_rate
    burst = settings.api_rate_burst if own.api_burst is None else own.api_burst
    return RequestRate(rate, max(1, burst))


def quotas(own: OwnLimits, settings: Settings) -> Quotas:
    platform_max = settings.file_max_bytes
    file_bytes = settings.quota_file_bytes if own.file_bytes is None else own.file_bytes
    rows = (
        settings.quota_rows_per_campaign if own.rows_per_campaign is None else own.rows_per_campaign
    )
    per_day = (
        settings.quota_messages_per_day if own.messages_per_day is None else own.messages_per_day
    )
    return Quotas(
        file_bytes=min(file_bytes, platform_max) if file_bytes > 0 else platform_max,
        rows_per_campaign=rows,
        messages_per_day=per_day,
    )


def tenant_quotas(conn: Connection, tenant_id: str, settings: Settings) -> Quotas:
    return quotas(own_limits(conn, tenant_id), settings)


def check_file_size(quota: Quotas, declared_bytes: int | None) -> None:
    """Refuse (413) a file declared larger than the tenant may upload."""
    if declared_bytes is not None and declared_bytes > quota.file_bytes:
        raise QuotaExceeded(
            f"The file is larger than this tenant's quota of {quota.file_bytes} bytes.",
            status=413,
            details={"quota": "file_bytes", "limit": quota.file_bytes, "requested": declared_bytes},
        )


def check_campaign_rows(quota: Quotas, rows: int) -> None:
    """Refuse (422) a campaign whose file has more rows than the tenant's quota."""
    if quota.rows_per_campaign and rows > quota.rows_per_campaign:
        raise QuotaExceeded(
            f"The file has more than {quota.rows_per_campaign} rows, this tenant's quota "
            "for one campaign.",
            status=422,
            details={
                "quota": "rows_per_campaign",
                "limit": quota.rows_per_campaign,
                "requested": rows,
            },
        )


def messages_on(conn: Connection, tenant_id: str, day: date) -> int:
    """Messages the tenant's campaigns took on during one UTC day."""
    used = conn.execute(
        select(tenant_daily_usage.c.messages).where(
            tenant_daily_usage.c.tenant_id == tenant_id, tenant_daily_usage.c.day == day
        )
    ).scalar()
    return int(used or 0)


def take_messages(conn: Connection, tenant_id: str, day: date, count: int, limit: int) -> None:
    """Count ``count`` more messages on ``day``, or raise QuotaExceeded (403) when that would
    pass ``limit`` (0: none). The check and the count are one conditional UPDATE of the
    day's row, which the database locks: two campaigns created at once cannot both squeeze
    under the limit."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(tenant_daily_usage)
        .values(tenant_id=tenant_id, day=day, messages=0)
        .on_conflict_do_nothing(index_elements=["tenant_id", "day"])
    )
    usage = tenant_daily_usage.c
    taken = conn.execute(
        update(tenant_daily_usage)
        .where(usage.tenant_id == tenant_id, usage.day == day)
        .where((usage.messages + count <= limit) if limit else true())
        .values(messages=usage.messages + count)
    ).rowcount
    if not taken:
        used = messages_on(conn, tenant_id, day)
        raise QuotaExceeded(
            f"This campaign's {count} messages would pass this tenant's quota of {limit} "
            f"messages a day ({used} taken on today, UTC).",
            status=403,
            details={
                "quota": "messages_per_day",
                "limit": limit,
                "used": used,
                "requested": count,
            },
        )
