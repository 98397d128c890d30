"""Routes under /api/v1/campaigns."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Row

from postroom.api import idempotency
from postroom.api.deps import ApiKeyDep, CallerDep, RuntimeDep
from postroom.api.errors import error_responses
from postroom.api.scopes import needs
from postroom.campaigns import control, service
from postroom.campaigns.schemas import (
    CampaignAccepted,
    CampaignPage,
    CampaignRequest,
    CampaignStatusView,
    MessagePage,
    dump,
)
from postroom.campaigns.start import start_campaign
from postroom.db.notices import notify_workers
from postroom.events import service as events
from postroom.events.schemas import EventPage, MessageDetail
from postroom.runtime import Runtime
from postroom.tenants.service import Caller, authenticate

router = APIRouter(
    prefix="/api/v1/campaigns",
    tags=["campaigns"],
    dependencies=[needs("campaigns:read", "campaigns:write")],
    responses=error_responses(403),
)


@router.post(
    "",
    status_code=202,
    response_model=CampaignAccepted,
    responses=error_responses(400, 401, 404, 409, 410, 413, 422),
)
def create_campaign(
    body: CampaignRequest,
    rt: RuntimeDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    """Start a campaign: the file is processed asynchronously; follow ``status_url``.
    A campaign that would pass a quota is refused (422 for its file's rows, 403 for the
    messages of the day) and nothing is queued.

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

    def accepted(campaign_id: str) -> dict[str, Any]:
        return dump(
            CampaignAccepted(
                transaction_id=campaign_id,
                status="processing",
                status_url=f"{rt.settings.base_url}/api/v1/campaigns/{campaign_id}/status",
            )
        )

    def remember(conn: Connection, campaign_id: str) -> None:
        assert idempotency_key is not None
        idempotency.finish(conn, tenant_id, idempotency_key, 202, accepted(campaign_id))

    try:
        campaign_id = start_campaign(
            rt, tenant_id, body, on_created=None if idempotency_key is None else remember
        )
    except BaseException:
        if idempotency_key is not None:
            idempotency.abandon(rt.db, tenant_id, idempotency_key)
        raise
    return JSONResponse(accepted(campaign_id), status_code=202)


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
    email: Annotated[str | None, Query(max_length=320)] = None,
) -> Response:
    """One record per recipient, in file order, optionally filtered by status and by address
    (``email``: the addresses starting with it, case-insensitive)."""
    with rt.db.read_latest() as conn:
        campaign = service.get_campaign(conn, authenticate(conn, key).tenant_id, campaign_id)
        page = service.list_messages(
            conn, campaign.id, status=status, cursor=cursor, limit=limit, email=email
        )
    return _json(page)


@router.get(
    "/{campaign_id}/messages/{message_id}",
    response_model=MessageDetail,
    responses=error_responses(401, 404),
)
def campaign_message(campaign_id: str, message_id: int, rt: RuntimeDep, key: ApiKeyDep) -> Response:
    """One recipient's message: its record, outcome, and every status change and event."""
    with rt.db.read_latest() as conn:
        campaign = service.get_campaign(conn, authenticate(conn, key).tenant_id, campaign_id)
        detail = events.message_detail(conn, campaign.id, message_id)
    return _json(detail)


@router.get(
    "/{campaign_id}/events", response_model=EventPage, responses=error_responses(400, 401, 404)
)
def campaign_events(
    campaign_id: str,
    rt: RuntimeDep,
    key: ApiKeyDep,
    type: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """What happened after hand-over (delivered, bounced, opened…), oldest first."""
    with rt.db.read_latest() as conn:
        campaign = service.get_campaign(conn, authenticate(conn, key).tenant_id, campaign_id)
        page = events.list_events(conn, campaign.id, event_type=type, cursor=cursor, limit=limit)
    return _json(page)


_CONTROL_ERRORS = error_responses(401, 404, 409)


@router.post("/{campaign_id}/cancel", response_model=CampaignStatusView, responses=_CONTROL_ERRORS)
def cancel_campaign(campaign_id: str, rt: RuntimeDep, caller: CallerDep) -> CampaignStatusView:
    """Cancel: messages not yet handed to the relay become ``cancelled``."""
    return _control(rt, caller, campaign_id, control.cancel_campaign)


@router.post("/{campaign_id}/pause", response_model=CampaignStatusView, responses=_CONTROL_ERRORS)
def pause_campaign(campaign_id: str, rt: RuntimeDep, caller: CallerDep) -> CampaignStatusView:
    """Pause: no further batch is claimed; messages in flight finish. Pausing a campaign
    whose file is still being processed pauses it once the file is in."""
    return _control(rt, caller, campaign_id, control.pause_campaign)


@router.post("/{campaign_id}/resume", response_model=CampaignStatusView, responses=_CONTROL_ERRORS)
def resume_campaign(campaign_id: str, rt: RuntimeDep, caller: CallerDep) -> CampaignStatusView:
    """Resume a paused campaign: it sends again, or waits for its ``send_at``."""
    return _control(rt, caller, campaign_id, control.resume_campaign)


class CampaignChange(BaseModel):
    """Body of ``PATCH /api/v1/campaigns/{id}``."""

    model_config = ConfigDict(extra="forbid")
    send_at: datetime | None = Field(
        description="ISO-8601 with a UTC offset; null or a past time means now."
    )


@router.patch(
    "/{campaign_id}",
    response_model=CampaignStatusView,
    responses=error_responses(401, 404, 409, 422),
)
def change_campaign(
    campaign_id: str, body: CampaignChange, rt: RuntimeDep, caller: CallerDep
) -> CampaignStatusView:
    """Move ``send_at`` while the campaign has not started sending."""

    def reschedule(conn: Connection, campaign: Row[Any], now: datetime) -> None:
        control.reschedule_campaign(conn, campaign, body.send_at, now)

    return _control(rt, caller, campaign_id, reschedule)


class CampaignConfirmation(BaseModel):
    """Body of ``POST /api/v1/campaigns/{id}/confirm``."""

    model_config = ConfigDict(extra="forbid")
    send_at: datetime | None = Field(
        default=None, description="ISO-8601 with a UTC offset; null or a past time means now."
    )


@router.post(
    "/{campaign_id}/confirm",
    response_model=CampaignStatusView,
    responses=error_responses(401, 404, 409, 422),
)
def confirm_campaign(
    campaign_id: str, rt: RuntimeDep, caller: CallerDep, body: CampaignConfirmation | None = None
) -> CampaignStatusView:
    """Send a campaign created with ``hold`` once its file report has been read: now, or at
    ``send_at``. Cancel discards it instead."""
    send_at = body.send_at if body is not None else None

    def confirm(conn: Connection, campaign: Row[Any], now: datetime) -> None:
        control.confirm_campaign(conn, campaign, send_at, now)

    return _control(rt, caller, campaign_id, confirm)


def _control(
    rt: Runtime,
    caller: Caller,
    campaign_id: str,
    action: Callable[[Connection, Row[Any], datetime], object],
) -> CampaignStatusView:
    with rt.db.write() as conn:
        campaign = service.get_campaign(conn, caller.tenant_id, campaign_id)
        action(conn, campaign, rt.clock.now())
        campaign = service.get_campaign(conn, caller.tenant_id, campaign_id)
        view = service.campaign_status(campaign, base_url=rt.settings.base_url)
        notify_workers(conn, "campaign_control")
    rt.wakeups.notify()  # a resumed or rescheduled campaign may be due now
    return view


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
