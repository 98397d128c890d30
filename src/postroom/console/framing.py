"""What every console page shares: the runtime, the signed-in session checked on each
request, CSRF checks on every form, and rendering a template inside the page frame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from postroom.console import session as sessions
from postroom.errors import PostroomError
from postroom.runtime import Runtime
from postroom.tenants.service import Caller, caller_by_key_id

HERE = Path(__file__).parent
_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True)
)


class SignInNeeded(Exception):
    """No valid session: the console answers with the sign-in page."""


class CsrfRefused(Exception):
    """A form without this session's token: refused with 403."""


def runtime_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def render(name: str, **context: Any) -> str:
    return _templates.get_template(name).render(**context)


def signed_in(request: Request) -> tuple[Caller, sessions.Session]:
    """The signed-in caller, checked against the key store on every request."""
    rt = runtime_of(request)
    found = sessions.read(rt.secret_key, request.cookies.get(sessions.COOKIE_NAME), rt.clock.now())
    if found is None:
        raise SignInNeeded
    try:
        with rt.db.read_latest() as conn:
            caller = caller_by_key_id(conn, found.key_id)
    except PostroomError:
        raise SignInNeeded from None
    request.state.caller = caller  # for the audit log
    return caller, found


def page(request: Request, name: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    """A page of the signed-in console, its forms carrying the session's CSRF token."""
    _caller, found = signed_in(request)
    rt = runtime_of(request)
    csrf = sessions.csrf_token(rt.secret_key, found)
    outbox = rt.settings.transport_url.startswith("capture://")
    body = render(name, csrf=csrf, signed_in=True, outbox=outbox, **context)
    return HTMLResponse(body, status_code=http_status)


def checked_post(request: Request, token: str | None) -> Caller:
    """The caller of a form post whose CSRF token (field or X-CSRF-Token header) matches."""
    caller, found = signed_in(request)
    presented = token or request.headers.get("X-CSRF-Token")
    if not sessions.csrf_matches(runtime_of(request).secret_key, found, presented):
        raise CsrfRefused
    return caller
