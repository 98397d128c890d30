"""Response models of the analytics endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Stage(BaseModel):
    count: int
    #: delivered, bounced, complained: of sent; opened, clicked, unsubscribed: of delivered.
    #: null when that denominator is 0.
    rate: float | None


class Funnel(BaseModel):
    sent: Stage
    delivered: Stage
    opened: Stage
    clicked: Stage
    bounced: Stage
    complained: Stage
    unsubscribed: Stage


class Point(BaseModel):
    """Unique recipients whose first event of each kind fell in the bucket starting ``at``."""

    at: datetime
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0


class TimeSeries(BaseModel):
    """For a campaign, ``interval`` is ``minute`` then ``hour``: points before ``minute_until``
    (24 h after the campaign started) are minutes, later ones hours. Only non-empty buckets."""

    interval: str  # minute | minute_then_hour | hour | day
    minute_until: datetime | None = None
    points: list[Point]


class Link(BaseModel):
    url: str
    clicks: int
    unique_clicks: int


class BounceReason(BaseModel):
    bounce_type: str
    status: str
    subtype: str
    count: int


class DomainRow(BaseModel):
    domain: str  # "other": all domains after the top 20 by sent
    sent: int
    delivered: int
    bounced: int
    complained: int
    opened: int
    clicked: int
    unsubscribed: int


class CampaignAnalytics(BaseModel):
    campaign_id: str
    funnel: Funnel
    time_series: TimeSeries
    top_links: list[Link]
    bounce_reasons: list[BounceReason]
    domains: list[DomainRow]


class CampaignRow(BaseModel):
    id: str
    name: str
    sent: int
    delivered: int
    opened: int
    clicked: int
    bounced: int


class TenantAnalytics(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    funnel: Funnel
    time_series: TimeSeries
    campaigns: list[CampaignRow]
