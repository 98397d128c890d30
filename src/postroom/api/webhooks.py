"""Routes under /api/v1/webhooks: the tenant's endpoints and each one's delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from postroom.api.deps import ApiKeyDep, CallerDep, RuntimeDep
from postroom.api.errors import error_responses
from postroom.api.scopes import needs
from postroom.tenants.service import authenticate
from postroom.webhooks import service
from postroom.webhooks.schemas import (
    DeliveryPage,
    WebhookCreated,
    WebhookList,
    WebhookRequest,
    WebhookSecret,
    WebhookUpdate,
    WebhookView,
)

router = APIRouter(
    prefix="/api/v1/webhooks",
    tags=["webhooks"],
    dependencies=[needs("webhooks:write")],
    responses=error_responses(403),
)


@router.post(
    "", status_code=201, response_model=WebhookCreated, responses=error_responses(401, 409, 422)
)
def create_webhook(body: WebhookRequest, rt: RuntimeDep, caller: CallerDep) -> WebhookCreated:
    """Register an endpoint for the given event types. The answer holds its signing secret,
    which is never shown again."""
    with rt.db.write() as conn:
        return service.create(
            conn,
            caller.tenant_id,
            body,
            rt.clock.now(),
            allow_private=rt.settings.webhook_allow_private_addresses,
        )


@router.get("", response_model=WebhookList, responses=error_responses(401))
def list_webhooks(rt: RuntimeDep, key: ApiKeyDep) -> WebhookList:
    with rt.db.read_latest() as conn:
        return service.list_all(conn, authenticate(conn, key).tenant_id)


@router.get("/{webhook_id}", response_model=WebhookView, responses=error_responses(401, 404))
def get_webhook(webhook_id: str, rt: RuntimeDep, key: ApiKeyDep) -> WebhookView:
    with rt.db.read_latest() as conn:
        return service.get(conn, authenticate(conn, key).tenant_id, webhook_id)


@router.patch("/{webhook_id}", response_model=WebhookView, responses=error_responses(401, 404, 422))
def update_webhook(
    webhook_id: str, body: WebhookUpdate, rt: RuntimeDep, caller: CallerDep
) -> WebhookView:
    """Change the URL, the event types or the description; ``enabled`` turns it off or on."""
    with rt.db.write() as conn:
        return service.change(
            conn,
            caller.tenant_id,
            webhook_id,
            body,
            rt.clock.now(),
            allow_private=rt.settings.webhook_allow_private_addresses,
        )


@router.delete("/{webhook_id}", status_code=204, responses=error_responses(401, 404))
def delete_webhook(webhook_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    """The endpoint, its pending deliveries and its log go; nothing more is sent to it."""
    with rt.db.write() as conn:
        service.remove(conn, caller.tenant_id, webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookSecret,
    responses=error_responses(401, 404),
)
def rotate_secret(webhook_id: str, rt: RuntimeDep, caller: CallerDep) -> WebhookSecret:
    """A new signing secret, shown once; the old one stops signing at once."""
    with rt.db.write() as conn:
        return service.rotate_secret(conn, caller.tenant_id, webhook_id, rt.clock.now())


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryPage,
    responses=error_responses(400, 401, 404),
)
def list_deliveries(
    webhook_id: str,
    rt: RuntimeDep,
    key: ApiKeyDep,
    status: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryPage:
    """The delivery log, newest first: each event's status, attempts, the receiver's last
    answer and, while pending, the next try. ``status`` filters; ``next_cursor`` continues."""
    with rt.db.read_latest() as conn:
        return service.deliveries(
            conn,
            authenticate(conn, key).tenant_id,
            webhook_id,
            status=status,
            cursor=cursor,
            limit=limit,
        )
