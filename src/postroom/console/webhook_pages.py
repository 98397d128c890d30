"""The webhooks pages: the tenant's endpoints, adding one (its secret shown once), and one
endpoint with its delivery log, enable/disable, a new secret and delete."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from postroom.console import framing
from postroom.errors import PostroomError
from postroom.webhooks import service as webhooks
from postroom.webhooks.catalogue import EVENT_TYPES, EVERY_TYPE
from postroom.webhooks.schemas import WebhookRequest, WebhookUpdate

router = APIRouter(include_in_schema=False)


@router.get("/webhooks", response_class=HTMLResponse)
def webhooks_page(request: Request) -> HTMLResponse:
    return _list(request)


@router.post("/webhooks", response_class=HTMLResponse)
def add_webhook(
    request: Request,
    url: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    events: Annotated[list[str] | None, Form()] = None,
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    caller = framing.checked_post(request, csrf)
    rt = framing.runtime_of(request)
    form = {"url": url, "description": description, "events": events or []}
    try:
        body = WebhookRequest(url=url, events=events or [], description=description or None)
        with rt.db.write() as conn:
            created = webhooks.create(
                conn,
                caller.tenant_id,
                body,
                rt.clock.now(),
                allow_private=rt.settings.webhook_allow_private_addresses,
            )
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else "form"
        message = "Choose at least one event." if field == "events" else problem["msg"]
        return _list(request, error=message, form=form, http_status=422)
    except PostroomError as exc:
        return _list(request, error=exc.message, form=form, http_status=exc.status)
    return _detail(request, created.id, secret=created.secret, http_status=201)


@router.get("/webhooks/{webhook_id}", response_class=HTMLResponse)
def webhook_page(request: Request, webhook_id: str, status: str | None = None) -> HTMLResponse:
    return _detail(request, webhook_id, status=status or None)


@router.post("/webhooks/{webhook_id}/{action}", response_class=HTMLResponse)
def webhook_action(
    request: Request,
    webhook_id: str,
    action: str,
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    """enable, disable, rotate (a new secret, shown once) or delete."""
    caller = framing.checked_post(request, csrf)
    rt = framing.runtime_of(request)
    now = rt.clock.now()
    try:
        with rt.db.write() as conn:
            if action in ("enable", "disable"):
                change = WebhookUpdate(enabled=action == "enable")
                webhooks.change(
                    conn,
                    caller.tenant_id,
                    webhook_id,
                    change,
                    now,
                    allow_private=rt.settings.webhook_allow_private_addresses,
                )
            elif action == "rotate":
                secret = webhooks.rotate_secret(conn, caller.tenant_id, webhook_id, now).secret
            elif action == "delete":
                webhooks.remove(conn, caller.tenant_id, webhook_id)
            else:
                raise _not_found()
    except PostroomError as exc:
        body = framing.render("message.html", title="Not possible", message=exc.message)
        return HTMLResponse(body, status_code=exc.status)
    if action == "rotate":
        return _detail(request, webhook_id, secret=secret)
    target = "/webhooks" if action == "delete" else f"/webhooks/{webhook_id}"
    return RedirectResponse(target, status_code=303)


def _not_found() -> PostroomError:
    return PostroomError("No such action.", code="not_found", status=404)


def _list(
    request: Request,
    *,
    error: str | None = None,
    form: Mapping[str, object] | None = None,
    http_status: int = 200,
) -> HTMLResponse:
    caller, _ = framing.signed_in(request)
    rt = framing.runtime_of(request)
    with rt.db.read_latest() as conn:
        endpoints = webhooks.list_all(conn, caller.tenant_id).webhooks
    return framing.page(
        request,
        "webhooks.html",
        http_status=http_status,
        endpoints=endpoints,
        event_types=EVENT_TYPES,
        every_type=EVERY_TYPE,
        error=error,
        form=form or {"events": []},
    )


def _detail(
    request: Request,
    webhook_id: str,
    *,
    secret: str | None = None,
    status: str | None = None,
    http_status: int = 200,
) -> HTMLResponse:
    caller, _ = framing.signed_in(request)
    rt = framing.runtime_of(request)
    try:
        with rt.db.read_latest() as conn:
            endpoint = webhooks.get(conn, caller.tenant_id, webhook_id)
            log = webhooks.deliveries(
                conn, caller.tenant_id, webhook_id, status=status, cursor=None, limit=50
            )
    except PostroomError as exc:
        body = framing.render("message.html", title="Not found", message=exc.message)
        return HTMLResponse(body, status_code=exc.status)
    return framing.page(
        request,
        "webhook.html",
        http_status=http_status,
        w=endpoint,
        log=log,
        secret=secret,
        status=status or "",
    )
