"""The API keys page: the tenant's keys, a new key shown once, revoking one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from postroom.console import framing
from postroom.tenants import service as tenants

router = APIRouter(include_in_schema=False)


@router.get("/keys", response_class=HTMLResponse)
def keys_page(request: Request) -> HTMLResponse:
    return _keys(request, new_key=None)


@router.post("/keys", response_class=HTMLResponse)
def create_key(request: Request, csrf: Annotated[str | None, Form()] = None) -> HTMLResponse:
    """A new key for this tenant; the page shows it this once."""
    caller = framing.checked_post(request, csrf)
    rt = framing.runtime_of(request)
    with rt.db.write() as conn:
        new_key = tenants.create_key(conn, caller.tenant_id, rt.clock.now())
    return _keys(request, new_key=new_key, http_status=201)


@router.post("/keys/revoke")
def revoke_key(
    request: Request,
    key_id: Annotated[str, Form()] = "",
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    """Revoke one of the tenant's keys; revoking the session's own key signs it out."""
    caller = framing.checked_post(request, csrf)
    rt = framing.runtime_of(request)
    with rt.db.write() as conn:
        owned = {key.key_id for key in tenants.list_keys(conn, caller.tenant_id)}
        if key_id not in owned:
            body = framing.render("message.html", title="Not found", message="No such key.")
            return HTMLResponse(body, status_code=404)
        tenants.revoke_key(conn, key_id, rt.clock.now())
    return RedirectResponse("/signin" if key_id == caller.key_id else "/keys", status_code=303)


def _keys(request: Request, *, new_key: str | None, http_status: int = 200) -> HTMLResponse:
    caller, _ = framing.signed_in(request)
    rt = framing.runtime_of(request)
    with rt.db.read_latest() as conn:
        keys = tenants.list_keys(conn, caller.tenant_id)
    keys.sort(key=lambda key: (key.revoked_at is not None, key.created_at), reverse=False)
    return framing.page(
        request,
        "keys.html",
        http_status=http_status,
        keys=keys,
        new_key=new_key,
        current_key_id=caller.key_id,
    )
