"""Analytics reads: a campaign's funnel, time series, links, bounce reasons and domains, and
the tenant-wide funnel over a window, all from the rollups (never from the events)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, func, select

from postroom.analytics.rollups import DOMAIN_TYPES
from postroom.analytics.schemas import (
    BounceReason,
    CampaignAnalytics,
    CampaignRow,
    DomainRow,
    Funnel,
    Link,
    Point,
    Stage,
    TenantAnalytics,
    TimeSeries,
)
from postroom.db.tables import (
    analytics_bounces,
    analytics_domains,
    analytics_links,
    analytics_minutes,
    campaigns,
)

MINUTES_FOR = timedelta(hours=24)
TOP_LINKS = 10
TOP_DOMAINS = 20
TOP_CAMPAIGNS = 50
#: The denominator of each stage's rate.
RATE_OF = {
    "delivered": "sent",
    "bounced": "sent",
    "complained": "sent",
    "opened": "delivered",
    "clicked": "delivered",
    "unsubscribed": "delivered",
}


def funnel(counts: dict[str, int]) -> Funnel:
    stages: dict[str, Stage] = {"sent": Stage(count=counts.get("sent", 0), rate=None)}
    for name, of in RATE_OF.items():
        count, base = counts.get(name, 0), counts.get(of, 0)
        stages[name] = Stage(count=count, rate=round(count / base, 6) if base else None)
    return Funnel(**stages)


def _points(buckets: dict[datetime, dict[str, int]]) -> list[Point]:
    return [Point(at=at, **values) for at, values in sorted(buckets.items())]


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def campaign_analytics(conn: Connection, campaign: Row[Any]) -> CampaignAnalytics:
    cid = campaign.id
    totals: dict[str, int] = defaultdict(int)
    buckets: dict[datetime, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = conn.execute(
        select(
            analytics_minutes.c.bucket, analytics_minutes.c.type, analytics_minutes.c.uniques
        ).where(analytics_minutes.c.campaign_id == cid, analytics_minutes.c.uniques > 0)
    ).all()
    started = campaign.started_at or min((r.bucket for r in rows), default=None)
    minute_until = started + MINUTES_FOR if started is not None else None
    for bucket, kind, uniques in rows:
        if kind not in DOMAIN_TYPES:
            continue
        totals[kind] += uniques
        at = bucket if minute_until is None or bucket < minute_until else _hour(bucket)
        buckets[at][kind] += uniques
    links = conn.execute(
        select(analytics_links)
        .where(analytics_links.c.campaign_id == cid)
        .order_by(analytics_links.c.clicks.desc(), analytics_links.c.url)
        .limit(TOP_LINKS)
    ).all()
    bounces = conn.execute(
        select(analytics_bounces)
        .where(analytics_bounces.c.campaign_id == cid)
        .order_by(
            analytics_bounces.c.count.desc(),
            analytics_bounces.c.bounce_type,
            analytics_bounces.c.status,
            analytics_bounces.c.subtype,
        )
    ).all()
    domains = conn.execute(
        select(analytics_domains)
        .where(analytics_domains.c.campaign_id == cid)
        .order_by(analytics_domains.c.sent.desc(), analytics_domains.c.domain)
    ).all()
    return CampaignAnalytics(
        campaign_id=cid,
        funnel=funnel(totals),
        time_series=TimeSeries(
            interval="minute_then_hour", minute_until=minute_until, points=_points(buckets)
        ),
        top_links=[Link(url=r.url, clicks=r.clicks, unique_clicks=r.unique_clicks) for r in links],
        bounce_reasons=[
            BounceReason(
                bounce_type=r.bounce_type,
                status=r.status,
                subtype=r.subtype,
                count=r._mapping["count"],
            )
            for r in bounces
        ],
        domains=_domain_rows(domains),
    )


def _domain_rows(rows: Iterable[Row[Any]]) -> list[DomainRow]:
    rows = list(rows)
    shown = [
        DomainRow(domain=r.domain, **{name: getattr(r, name) for name in DOMAIN_TYPES})
        for r in rows[:TOP_DOMAINS]
    ]
    rest = rows[TOP_DOMAINS:]
    if rest:
        shown.append(
            DomainRow(
                domain="other",
                **{name: sum(getattr(r, name) for r in rest) for name in DOMAIN_TYPES},
            )
        )
    return shown


def tenant_analytics(
    conn: Connection, tenant_id: str, start: datetime, end: datetime, group_by: str
) -> TenantAnalytics:
    """Unique firsts whose minute falls in [start, end), summed over the tenant's campaigns."""
    m = analytics_minutes
    window = (m.c.tenant_id == tenant_id, m.c.bucket >= start, m.c.bucket < end, m.c.uniques > 0)
    totals: dict[str, int] = defaultdict(int)
    buckets: dict[datetime, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_minute = conn.execute(
        select(m.c.bucket, m.c.type, func.sum(m.c.uniques))
        .where(*window)
        .group_by(m.c.bucket, m.c.type)
    ).all()
    for bucket, kind, uniques in per_minute:
        if kind not in DOMAIN_TYPES:
            continue
        at = (
            _hour(bucket)
            if group_by == "hour"
            else bucket.replace(hour=0, minute=0, second=0, microsecond=0)
        )
        totals[kind] += int(uniques)
        buckets[at][kind] += int(uniques)
    per_campaign: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for cid, kind, uniques in conn.execute(
        select(m.c.campaign_id, m.c.type, func.sum(m.c.uniques))
        .where(*window)
        .group_by(m.c.campaign_id, m.c.type)
    ).all():
        per_campaign[cid][kind] += int(uniques)
    names = (
        dict(
            conn.execute(
                select(campaigns.c.id, campaigns.c.name).where(campaigns.c.id.in_(per_campaign))
            ).all()
        )
        if per_campaign
        else {}
    )
    rows = sorted(
        (
            CampaignRow(
                id=cid,
                name=names.get(cid, ""),
                **{k: c.get(k, 0) for k in ("sent", "delivered", "opened", "clicked", "bounced")},
            )
            for cid, c in per_campaign.items()
        ),
        key=lambda row: (-row.sent, row.id),
    )
    series = TimeSeries(interval=group_by, points=_points(buckets))
    return TenantAnalytics.model_validate(
        {
            "from": start,
            "to": end,
            "funnel": funnel(totals),
            "time_series": series,
            "campaigns": rows[:TOP_CAMPAIGNS],
        }
    )
