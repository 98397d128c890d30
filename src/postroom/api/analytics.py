"""Routes of the analytics reads: one campaign's, and the tenant's over a window."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from postroom.analytics import reports
from postroom.analytics.schemas import CampaignAnalytics, TenantAnalytics
from postroom.api.deps import ApiKeyDep, RuntimeDep
from postroom.api.errors import error_responses
from postroom.api.scopes import needs
from postroom.campaigns import service
from postroom.errors import Unprocessable
from postroom.tenants.service import authenticate

router = APIRouter(
    prefix="/api/v1",
    tags=["analytics"],
    dependencies=[needs("campaigns:read")],
    responses=error_responses(403),
)

DEFAULT_WINDOW = timedelta(days=30)
#: The longest window of each grouping (an hour series longer than this is too many points).
LONGEST = {"hour": timedelta(days=31), "day": timedelta(days=366)}


@router.get(
    "/campaigns/{campaign_id}/analytics",
    response_model=CampaignAnalytics,
    responses=error_responses(401, 404),
)
def campaign_analytics(campaign_id: str, rt: RuntimeDep, key: ApiKeyDep) -> Response:
    """A campaign's funnel (unique recipients; delivered, bounced and complained rates are of
    sent, opened, clicked and unsubscribed rates of delivered), its time series (minutes for
    the first 24 h after it started, then hours), top links, bounce reasons and domains."""
    with rt.db.read() as conn:
        campaign = service.get_campaign(conn, authenticate(conn, key).tenant_id, campaign_id)
        view = reports.campaign_analytics(conn, campaign)
    return Response(view.model_dump_json(), media_type="application/json")


@router.get("/analytics", response_model=TenantAnalytics, responses=error_responses(401, 422))
def tenant_analytics(
    rt: RuntimeDep,
    key: ApiKeyDep,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    group_by: Literal["day", "hour"] = "day",
) -> Response:
    """The tenant's funnel over ``[from, to)`` (ISO dates or datetimes, UTC when no offset; a
    date ``to`` includes that day; default the last 30 days), a time series per day or hour
    and its campaigns by sent."""
    now = rt.clock.now()
    end = _moment(to, "to", end_of_day=True) if to is not None else now
    start = _moment(from_, "from", end_of_day=False) if from_ is not None else end - DEFAULT_WINDOW
    if start >= end:
        raise Unprocessable(
            "from must be before to", code="invalid_range", details={"from": from_, "to": to}
        )
    if end - start > LONGEST[group_by]:
        raise Unprocessable(
            f"a range grouped by {group_by} may span at most {LONGEST[group_by].days} days",
            code="range_too_large",
            details={"group_by": group_by, "max_days": LONGEST[group_by].days},
        )
    with rt.db.read() as conn:
        view = reports.tenant_analytics(
            conn, authenticate(conn, key).tenant_id, start, end, group_by
        )
    return Response(view.model_dump_json(by_alias=True), media_type="application/json")


def _moment(text: str, name: str, *, end_of_day: bool) -> datetime:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Unprocessable(
            f"{name} must be an ISO date or datetime", code="invalid_date", details={name: text}
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
