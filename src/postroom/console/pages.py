"""Routes of the web console: sign-in, campaigns, one campaign, suppressions.

Each page calls the same domain services as the API, on a session made from an API key.
"""

from __future__ import annotations

import email
import email.policy
from datetime import date, datetime, time
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from fastapi import APIRouter, FastAPI, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError

from postroom.campaigns import control, service
from postroom.campaigns.schemas import CampaignRequest, Sender
from postroom.campaigns.states import ACTIVE_CAMPAIGN_STATUSES, CampaignStatus
from postroom.console import session as sessions
from postroom.console import uploads
from postroom.console.preview import first_recipient_preview
from postroom.errors import PostroomError
from postroom.files.addresses import Address, check_address
from postroom.runtime import Runtime
from postroom.suppressions import service as suppressions
from postroom.tenants.service import Caller, authenticate, caller_by_key_id
from postroom.transports.capture import CaptureTransport
from postroom.transports.outbox import list_outbox, read_outbox_message

_HERE = Path(__file__).parent
_templates = Environment(
    loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(default=True)
)

router = APIRouter(include_in_schema=False)
_ZONES = sorted(available_timezones())


class _SignInNeeded(Exception):
    pass


class _CsrfRefused(Exception):
    pass


def mount(app: FastAPI) -> None:
    """Serve the console at / and its static files at /static."""
    app.mount("/static", _CachedStatic(directory=_HERE / "static"), name="console-static")
    app.include_router(router)

    @app.exception_handler(_SignInNeeded)
    async def _to_sign_in(_request: Request, _exc: _SignInNeeded) -> Response:
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(sessions.COOKIE_NAME, path="/")
        return response

    @app.exception_handler(_CsrfRefused)
    async def _csrf_refused(_request: Request, _exc: _CsrfRefused) -> Response:
        body = _render(
            "message.html",
            title="Request refused",
            message="This form has expired or did not come from this console. Go back, "
            "reload the page and try again.",
        )
        return HTMLResponse(body, status_code=403)


class _CachedStatic(StaticFiles):
    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _render(name: str, **context: Any) -> str:
    return _templates.get_template(name).render(**context)


def _session(request: Request) -> tuple[Caller, sessions.Session]:
    """The signed-in caller, checked against the key store on every request."""
    rt = _rt(request)
    found = sessions.read(rt.secret_key, request.cookies.get(sessions.COOKIE_NAME), rt.clock.now())
    if found is None:
        raise _SignInNeeded
    try:
        with rt.db.read_latest() as conn:
            return caller_by_key_id(conn, found.key_id), found
    except PostroomError:
        raise _SignInNeeded from None


def _page(request: Request, name: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    _caller, found = _session(request)
    csrf = sessions.csrf_token(_rt(request).secret_key, found)
    outbox = _rt(request).settings.transport_url.startswith("capture://")
    body = _render(name, csrf=csrf, signed_in=True, outbox=outbox, **context)
    return HTMLResponse(body, status_code=http_status)


def _checked_post(request: Request, token: str | None) -> Caller:
    caller, found = _session(request)
    presented = token or request.headers.get("X-CSRF-Token")
    if not sessions.csrf_matches(_rt(request).secret_key, found, presented):
        raise _CsrfRefused
    return caller


@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    return RedirectResponse("/campaigns", status_code=303)


@router.get("/signin", response_class=HTMLResponse)
def sign_in_page() -> HTMLResponse:
    return HTMLResponse(_render("signin.html", error=None))


@router.post("/signin", response_class=HTMLResponse)
def sign_in(request: Request, api_key: Annotated[str, Form()] = "") -> Response:
    rt = _rt(request)
    try:
        with rt.db.read_latest() as conn:
            caller = authenticate(conn, api_key.strip())
    except PostroomError as exc:
        return HTMLResponse(_render("signin.html", error=exc.message), status_code=401)
    response = RedirectResponse("/campaigns", status_code=303)
    response.set_cookie(
        sessions.COOKIE_NAME,
        sessions.issue(rt.secret_key, caller.key_id, rt.clock.now()),
        max_age=int(sessions.LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=urlsplit(rt.settings.base_url).scheme == "https",
        path="/",
    )
    return response


@router.post("/signout")
def sign_out(request: Request, csrf: Annotated[str | None, Form()] = None) -> Response:
    _checked_post(request, csrf)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(sessions.COOKIE_NAME, path="/")
    return response


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(
    request: Request, status: str | None = None, cursor: str | None = None
) -> HTMLResponse:
    caller, _ = _session(request)
    rt = _rt(request)
    with rt.db.read_latest() as conn:
        page = service.list_campaigns(
            conn,
            caller.tenant_id,
            base_url=rt.settings.base_url,
            status=status or None,
            cursor=cursor,
            limit=25,
        )
    return _page(
        request,
        "campaigns.html",
        page=page,
        status=status or "",
        statuses=[s.value for s in CampaignStatus],
    )


@router.get("/campaigns/new", response_class=HTMLResponse)
def new_campaign_page(request: Request) -> HTMLResponse:
    return _page(
        request, "new_campaign.html", error=None, form={}, **_new_campaign_choices(request)
    )


def _new_campaign_choices(request: Request) -> dict[str, Any]:
    return {"default_from": _rt(request).settings.default_from}


def _campaign_context(
    request: Request,
    campaign_id: str,
    status: str | None,
    cursor: str | None,
    email: str | None = None,
) -> dict[str, Any]:
    caller, _ = _session(request)
    rt = _rt(request)
    with rt.db.read_latest() as conn:
        row = service.get_campaign(conn, caller.tenant_id, campaign_id)
        view = service.campaign_status(row, base_url=rt.settings.base_url)
        messages = service.list_messages(
            conn, campaign_id, status=status or None, cursor=cursor, limit=50, email=email
        )
    return {
        "c": view,
        "zones": _ZONES,
        "live": view.status in ACTIVE_CAMPAIGN_STATUSES,
        "messages": messages,
        "status": status or "",
        "email": email or "",
    }


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(
    request: Request,
    campaign_id: str,
    status: str | None = None,
    cursor: str | None = None,
    email: str | None = None,
) -> HTMLResponse:
    context = _campaign_context(request, campaign_id, status, cursor, email)
    return _page(request, "campaign.html", **context)


@router.get("/campaigns/{campaign_id}/preview", response_class=HTMLResponse)
def campaign_preview(request: Request, campaign_id: str) -> HTMLResponse:
    """The template rendered for the first recipient, shown on the review step."""
    caller, _ = _session(request)
    preview = first_recipient_preview(_rt(request), caller.tenant_id, campaign_id)
    return _page(request, "_preview.html", preview=preview)


@router.get("/campaigns/{campaign_id}/live", response_class=HTMLResponse)
def campaign_live(
    request: Request, campaign_id: str, status: str | None = None, email: str | None = None
) -> HTMLResponse:
    """The changing part of the campaign page, for htmx to swap in every 2 s."""
    context = _campaign_context(request, campaign_id, status, None, email)
    return _page(request, "_live.html", **context)


@router.post("/campaigns/new", response_class=HTMLResponse)
def create_campaign(
    request: Request,
    template: UploadFile,
    recipients: UploadFile,
    name: Annotated[str, Form()] = "",
    sender: Annotated[str, Form()] = "",
    subject: Annotated[str, Form()] = "",
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    """Store both files as uploads, then create the campaign held for review."""
    caller = _checked_post(request, csrf)
    rt = _rt(request)
    form = {"name": name, "sender": sender, "subject": subject}
    try:
        template_id = uploads.store_template(
            rt, caller.tenant_id, name or "console", subject, template.file
        )
        file_id = uploads.store_file(
            rt, caller.tenant_id, recipients.filename or "recipients.csv", recipients.file
        )
        fields: dict[str, Any] = {
            "template_id": template_id,
            "file_id": file_id,
            "name": name or None,
            "hold": True,
        }
        if sender.strip() and sender.strip() != rt.settings.default_from:
            from_name, from_email = parseaddr(sender)
            fields["from"] = Sender(name=from_name or None, email=from_email)
        body = CampaignRequest.model_validate(fields)
        with rt.db.write() as conn:
            campaign_id = service.create_campaign(
                conn,
                caller.tenant_id,
                body,
                default_from=rt.settings.default_from,
                now=rt.clock.now(),
            )
    except (PostroomError, ValidationError) as exc:
        error = exc.message if isinstance(exc, PostroomError) else _first_problem(exc)
        return _page(
            request,
            "new_campaign.html",
            http_status=exc.status if isinstance(exc, PostroomError) else 422,
            error=error,
            form=form,
            **_new_campaign_choices(request),
        )
    rt.wakeups.notify()
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


@router.post("/campaigns/{campaign_id}/confirm")
def confirm_campaign(
    request: Request,
    campaign_id: str,
    when: Annotated[str, Form()] = "now",
    send_date: Annotated[str, Form()] = "",
    send_time: Annotated[str, Form()] = "",
    zone: Annotated[str, Form()] = "UTC",
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    caller = _checked_post(request, csrf)
    rt = _rt(request)
    try:
        send_at = _send_at(when, send_date, send_time, zone)
        with rt.db.write() as conn:
            row = service.get_campaign(conn, caller.tenant_id, campaign_id)
            control.confirm_campaign(conn, row, send_at, rt.clock.now())
    except (PostroomError, _BadTime) as exc:
        message = exc.message if isinstance(exc, PostroomError) else str(exc)
        return HTMLResponse(
            _render("message.html", title="Not confirmed", message=message), status_code=422
        )
    rt.wakeups.notify()
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


def _first_problem(exc: ValidationError) -> str:
    problem = exc.errors()[0]
    field = ".".join(str(part) for part in problem["loc"])
    return f"{field}: {problem['msg']}"


class _BadTime(Exception):
    pass


def _send_at(when: str, send_date: str, send_time: str, zone: str) -> datetime | None:
    """The moment the form names, in its time zone; None for now."""
    if when != "later":
        return None
    try:
        tz = ZoneInfo(zone)
        day = date.fromisoformat(send_date)
        clock = time.fromisoformat(send_time)
    except (ValueError, ZoneInfoNotFoundError):
        raise _BadTime("Give a date, a time and a time zone to send later.") from None
    return datetime.combine(day, clock, tzinfo=tz)


@router.post("/campaigns/{campaign_id}/{action}")
def campaign_action(
    request: Request, campaign_id: str, action: str, csrf: Annotated[str | None, Form()] = None
) -> Response:
    caller = _checked_post(request, csrf)
    rt = _rt(request)
    actions = {
        "pause": control.pause_campaign,
        "resume": control.resume_campaign,
        "cancel": control.cancel_campaign,
    }
    if action not in actions:
        return HTMLResponse(_render("message.html", title="Not found", message=""), 404)
    try:
        with rt.db.write() as conn:
            row = service.get_campaign(conn, caller.tenant_id, campaign_id)
            actions[action](conn, row, rt.clock.now())
    except PostroomError as exc:
        return HTMLResponse(
            _render("message.html", title="Not possible", message=exc.message), status_code=409
        )
    rt.wakeups.notify()
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


_OUTBOX_PAGE = 25


def _outbox_dir(request: Request) -> Path | None:
    """The capture transport's directory, or None when mail really leaves the machine."""
    url = _rt(request).settings.transport_url
    return CaptureTransport.from_url(url).directory if url.startswith("capture://") else None


@router.get("/outbox", response_class=HTMLResponse)
def outbox_page(request: Request, page: int = 1) -> HTMLResponse:
    directory = _outbox_dir(request)
    if directory is None:
        _session(request)
        body = "The outbox exists only with the capture transport (capture://DIR)."
        return HTMLResponse(_render("message.html", title="No outbox", message=body), 404)
    page = max(page, 1)
    entries = list_outbox(directory, limit=page * _OUTBOX_PAGE + 1)
    shown = entries[(page - 1) * _OUTBOX_PAGE : page * _OUTBOX_PAGE]
    more = len(entries) > page * _OUTBOX_PAGE
    return _page(request, "outbox.html", entries=shown, page=page, more=more)


@router.get("/outbox/{message_id}", response_class=HTMLResponse)
def outbox_message(request: Request, message_id: str) -> HTMLResponse:
    directory = _outbox_dir(request)
    if directory is None:
        return outbox_page(request)
    _session(request)
    try:
        raw = read_outbox_message(directory, message_id)
    except PostroomError as exc:
        return HTMLResponse(_render("message.html", title="Not found", message=exc.message), 404)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    html_part = parsed.get_body(("html",))
    html = html_part.get_content() if isinstance(html_part, EmailMessage) else None
    return _page(
        request,
        "outbox_message.html",
        message_id=message_id,
        subject=parsed.get("Subject", ""),
        recipient=parsed.get("To", ""),
        html=html,
        raw=raw.decode("utf-8", errors="replace"),
    )


@router.get("/suppressions", response_class=HTMLResponse)
def suppressions_page(
    request: Request, cursor: str | None = None, error: str | None = None
) -> HTMLResponse:
    caller, _ = _session(request)
    rt = _rt(request)
    with rt.db.read_latest() as conn:
        page = suppressions.list_page(conn, caller.tenant_id, cursor=cursor, limit=50)
    return _page(request, "suppressions.html", page=page, error=error)


@router.post("/suppressions", response_class=HTMLResponse)
def add_suppression(
    request: Request,
    email: Annotated[str, Form()] = "",
    detail: Annotated[str, Form()] = "",
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    caller = _checked_post(request, csrf)
    rt = _rt(request)
    checked = check_address(email)
    if not isinstance(checked, Address):
        with rt.db.read_latest() as conn:
            page = suppressions.list_page(conn, caller.tenant_id, cursor=None, limit=50)
        return _page(request, "suppressions.html", http_status=422, page=page, error=checked.detail)
    with rt.db.write() as conn:
        suppressions.add_by_hand(
            conn, caller.tenant_id, checked.email, checked.key, rt.clock.now(), detail or None
        )
    return RedirectResponse("/suppressions", status_code=303)


@router.post("/suppressions/remove", response_class=HTMLResponse)
def remove_suppression(
    request: Request,
    email: Annotated[str, Form()] = "",
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    caller = _checked_post(request, csrf)
    rt = _rt(request)
    checked = check_address(email)
    email_key = checked.key if isinstance(checked, Address) else email.strip().lower()
    try:
        with rt.db.write() as conn:
            suppressions.remove(conn, caller.tenant_id, email_key)
    except PostroomError:
        pass  # already gone: the page shows the list as it is
    return RedirectResponse("/suppressions", status_code=303)


@router.get("/suppressions/export.csv")
def export_suppressions(request: Request) -> Response:
    caller, _ = _session(request)
    rt = _rt(request)
    with rt.db.read() as conn:
        body = "".join(suppressions.export_csv(conn, caller.tenant_id))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="suppressions.csv"'},
    )


@router.get("/campaigns/{campaign_id}/errors.csv")
def campaign_errors(request: Request, campaign_id: str) -> Response:
    caller, _ = _session(request)
    rt = _rt(request)
    with rt.db.read() as conn:
        service.get_campaign(conn, caller.tenant_id, campaign_id)
        body = "".join(service.row_report(conn, campaign_id))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{campaign_id}-errors.csv"'},
    )
