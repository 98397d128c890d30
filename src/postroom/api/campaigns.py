"""Routes under /api/v1/campaigns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from postroom.api import idempotency
from postroom.api.deps import ApiKeyDep, CallerDep, RuntimeDep
from postroom.api.errors import error_responses
from postroom.campaigns import service
from postroom.campaigns.schemas import (
    CampaignAccepted,
    CampaignPage,
    CampaignRequest,
    CampaignStatusView,
    MessagePage,
    dump,
)
from postroom.runtime import Runtime
from postroom.tenants.service import authenticate

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])


@router.post(
    "",
    status_code=202,
    response_model=CampaignAccepted,
    responses=error_responses(400, 401, 404, 409, 422),
)
def create_campaign(
    body: CampaignRequest,
    rt: RuntimeDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    """Start a campaign: the file is processed asynchronously; follow ``status_url``.

    With an ``Idempotency-Key`` header a retried request replays the first answer (24 h)."""
    now = rt.clock.now()
    tenant_id = caller.tenant_id
    if idempotency_key is not None:
        body_hash = idempotency.request_hash(body.model_dump(mode="json", by_alias=True))
        replay = idempotency.begin(
            rt.db, tenant_id, idempotency_key, body_hash, now, rt.settings.idempotency_ttl_seconds
        )
        if replay is not None:
            return JSONResponse(replay.body, status_code=replay.status)
    try:
        with rt.db.write() as conn:
            campaign_id = service.create_campaign(
                conn, tenant_id, body, default_from=rt.settings.default_from, now=now
            )
            answer = dump(
                CampaignAccepted(
                    transaction_id=campaign_id,
                    status="processing",
                    status_url=f"{rt.settings.base_url}/api/v1/campaigns/{campaign_id}/status",
                )
            )
            if idempotency_key is not None:
                idempotency.finish(conn, tenant_id, idempotency_key, 202, answer)
    except BaseException:
        if idempotency_key is not None:
            idempotency.abandon(rt.db, tenant_id, idempotency_key)
        raise
    rt.wakeups.notify()
    return JSONResponse(answer, status_code=202)


@router.get("", response_model=CampaignPage, responses=error_responses(400, 401))
def list_campaigns(
    rt: RuntimeDep,
    key: ApiKeyDep,
    status: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CampaignPage:
    """The tenant's campaigns, newest first."""
    with rt.db.read_latest() as conn:
        return service.list_campaigns(
            conn,
            authenticate(conn, key).tenant_id,
            base_url=rt.settings.base_url,
            status=status,
            cursor=cursor,
            limit=limit,
        )


@router.get(
    "/{campaign_id}/status", response_model=CampaignStatusView, responses=error_responses(401, 404)
)
def campaign_status(campaign_id: str, rt: RuntimeDep, key: ApiKeyDep) -> Response:
    """Where a campaign stands: status, message counts, the file report and progress."""
    with rt.db.read_latest() as conn:
        campaign = service.get_campaign(conn, authenticate(conn, key).tenant_id, campaign_id)
    return _json(service.campaign_status(campaign, base_url=rt.settings.base_url))


def _json(model: BaseModel) -> Response:
    # The model is built and checked by the service already; the hot read endpoints skip
    # FastAPI's second validation of the return value (response_model still documents it)
    # and serialise in pydantic's compiled encoder rather than through dicts and json.dumps.
    return Response(model.model_dump_json(), media_type="application/json")


@router.get(
    "/{campaign_id}/messages", response_model=MessagePage, responses=error_responses(400, 401, 404)
)
def campaign_messages(
    campaign_id: str,
    rt: RuntimeDep,
    key: ApiKeyDep,
    status: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """One record per recipient, in file order, optionally filtered by status."""
    with rt.db.read_latest() as conn:
        campaign = service.get_campaign(conn, authenticate(conn, key).tenant_id, campaign_id)
        page = service.list_messages(conn, campaign.id, status=status, cursor=cursor, limit=limit)
    return _json(page)


@router.post(
    "/{campaign_id}/cancel",
    response_model=CampaignStatusView,
    responses=error_responses(401, 404, 409),
)
def cancel_campaign(campaign_id: str, rt: RuntimeDep, caller: CallerDep) -> CampaignStatusView:
    """Cancel: messages not yet handed to the relay become ``cancelled``."""
    with rt.db.write() as conn:
        campaign = service.get_campaign(conn, caller.tenant_id, campaign_id)
        service.cancel_campaign(conn, campaign, rt.clock.now())
        campaign = service.get_campaign(conn, caller.tenant_id, campaign_id)
        return service.campaign_status(campaign, base_url=rt.settings.base_url)


@router.get(
    "/{campaign_id}/errors",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "row,email,reason,detail"},
        **error_responses(401, 404),
    },
)
def campaign_errors(campaign_id: str, rt: RuntimeDep, key: ApiKeyDep) -> StreamingResponse:
    """The file's invalid and duplicate rows as CSV; formula-like cells are neutralised."""
    with rt.db.read() as conn:
        campaign = service.get_campaign(conn, authenticate(conn, key).tenant_id, campaign_id)
    return StreamingResponse(
        _report(rt, campaign.id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{campaign.id}-errors.csv"'},
    )


def _report(rt: Runtime, campaign_id: str) -> Iterator[str]:
    with rt.db.read() as conn:
        yield from service.row_report(conn, campaign_id)
