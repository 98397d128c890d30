"""Routes under /api/v1/quotas: the caller's request rate and quotas, and today's usage."""

from __future__ import annotations

from datetime import UTC, date

from fastapi import APIRouter
from pydantic import BaseModel, Field

from postroom.api.deps import ApiKeyDep, RuntimeDep
from postroom.api.errors import error_responses
from postroom.api.scopes import needs
from postroom.tenants.quotas import messages_on, own_limits, quotas, request_rate
from postroom.tenants.service import authenticate

router = APIRouter(
    prefix="/api/v1/quotas",
    tags=["quotas"],
    dependencies=[needs("campaigns:read")],
    responses=error_responses(403),
)


class RequestRateView(BaseModel):
    per_second: float | None = Field(description="Requests per second per API key; null: none")
    burst: int = Field(description="Requests that may come at once after a quiet spell")


class DailyMessagesView(BaseModel):
    limit: int | None = Field(description="null: no limit")
    used: int | None = Field(
        description="Messages counted today (the rows of campaigns created today); null "
        "when there is no limit, since nothing is counted then"
    )
    day: date = Field(description="The UTC day the count is for")


class QuotasView(BaseModel):
    request_rate: RequestRateView
    file_bytes: int = Field(description="The largest recipient file that may be uploaded")
    rows_per_campaign: int | None = Field(description="null: no limit")
    messages_per_day: DailyMessagesView


@router.get("", response_model=QuotasView, responses=error_responses(401))
def tenant_quotas(rt: RuntimeDep, key: ApiKeyDep) -> QuotasView:
    """The limits this key's tenant is held to, and what it used of them today (UTC)."""
    today = rt.clock.now().astimezone(UTC).date()
    with rt.db.read_latest() as conn:
        tenant_id = authenticate(conn, key).tenant_id
        own = own_limits(conn, tenant_id)
        in_force = quotas(own, rt.settings)
        used = messages_on(conn, tenant_id, today) if in_force.messages_per_day else None
    rate = request_rate(own, rt.settings)
    return QuotasView(
        request_rate=RequestRateView(per_second=rate.rate or None, burst=rate.burst),
        file_bytes=in_force.file_bytes,
        rows_per_campaign=in_force.rows_per_campaign or None,
        messages_per_day=DailyMessagesView(
            limit=in_force.messages_per_day or None, used=used, day=today
        ),
    )
