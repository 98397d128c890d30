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

from fastapi import APIRouter, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from postroom.analytics.reports import campaign_analytics
from postroom.campaigns import control, service
from postroom.campaigns.schemas import CampaignRequest, Sender
from postroom.campaigns.start import start_campaign
from postroom.campaigns.states import ACTIVE_CAMPAIGN_STATUSES, CampaignStatus
from postroom.console import framing, key_pages, sign_in_throttle, uploads, webhook_pages
from postroom.console import session as sessions
from postroom.console.preview import first_recipient_preview
from postroom.console.results_chart import funnel_bars, totals_chart
from postroom.db.notices import notify_workers
from postroom.errors import PostroomError, Unprocessable
from postroom.files.addresses import Address, check_address
from postroom.runtime import Runtime
from postroom.suppressions import service as suppressions
from postroom.templates import service as template_service
from postroom.tenants.scopes import ADMIN
from postroom.tenants.service import authenticate
from postroom.transports.capture import outbox_directory
from postroom.transports.outbox import list_outbox, read_outbox_message
from postroom.wiretext import one_line

router = APIRouter(include_in_schema=False)
_ZONES = sorted(available_timezones())


def mount(app: FastAPI) -> None:
    """Serve the console at / and its static files at /static."""
    app.mount("/static", _CachedStatic(directory=framing.HERE / "static"), name="console-static")
    app.include_router(router)
    app.include_router(key_pages.router)
    app.include_router(webhook_pages.router)

    @app.exception_handler(framing.SignInNeeded)
    async def _to_sign_in(_request: Request, _exc: framing.SignInNeeded) -> Response:
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(sessions.COOKIE_NAME, path="/")
        return response

    @app.exception_handler(framing.CsrfRefused)
    async def _csrf_refused(_request: Request, _exc: framing.CsrfRefused) -> Response:
        body = framing.render(
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


@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    return RedirectResponse("/campaigns", status_code=303)


@router.get("/signin", response_class=HTMLResponse)
def sign_in_page() -> HTMLResponse:
    return HTMLResponse(framing.render("signin.html", error=None))


@router.post("/signin", response_class=HTMLResponse)
def sign_in(request: Request, api_key: Annotated[str, Form()] = "") -> Response:
    rt = framing.runtime_of(request)
    wait = sign_in_throttle.seconds_to_wait(rt, request.client.host if request.client else None)
    if wait:
        message = f"Too many sign-in attempts from your address; try again in {wait} s."
        return HTMLResponse(
            framing.render("signin.html", error=message),
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    try:
        with rt.db.read_latest() as conn:
            caller = authenticate(conn, api_key.strip())
    except PostroomError as exc:
        return HTMLResponse(framing.render("signin.html", error=exc.message), status_code=401)
    if caller.scopes is not None and ADMIN not in caller.scopes:
        message = "This key cannot sign in to the console: it lacks the admin scope."
        return HTMLResponse(framing.render("signin.html", error=message), status_code=403)
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
    framing.checked_post(request, csrf)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(sessions.COOKIE_NAME, path="/")
    return response


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(
    request: Request, status: str | None = None, cursor: str | None = None
) -> HTMLResponse:
    caller, _ = framing.signed_in(request)
    rt = framing.runtime_of(request)
    with rt.db.read_latest() as conn:
        page = service.list_campaigns(
            conn,
            caller.tenant_id,
            base_url=rt.settings.base_url,
            status=status or None,
            cursor=cursor,
            limit=25,
        )
    return framing.page(
        request,
        "campaigns.html",
        page=page,
        status=status or "",
        statuses=[s.value for s in CampaignStatus],
    )


@router.get("/campaigns/new", response_class=HTMLResponse)
def new_campaign_page(request: Request) -> HTMLResponse:
    return framing.page(
        request, "new_campaign.html", error=None, form={}, **_new_campaign_choices(request)
    )


def _new_campaign_choices(request: Request) -> dict[str, Any]:
    caller, _ = framing.signed_in(request)
    rt = framing.runtime_of(request)
    with rt.db.read_latest() as conn:
        earlier = template_service.ready_templates(conn, caller.tenant_id, limit=50)
    return {"default_from": rt.settings.default_from, "templates": earlier}


def _campaign_context(
    request: Request,
    campaign_id: str,
    status: str | None,
    cursor: str | None,
    email: str | None = None,
) -> dict[str, Any]:
    caller, _ = framing.signed_in(request)
    rt = framing.runtime_of(request)
    with rt.db.read_latest() as conn:
        row = service.get_campaign(conn, caller.tenant_id, campaign_id)
        view = service.campaign_status(row, base_url=rt.settings.base_url)
        messages = service.list_messages(
            conn, campaign_id, status=status or None, cursor=cursor, limit=50, email=email
        )
        analytics = campaign_analytics(conn, row) if view.counts.sent else None
        issues = (
            service.sample_row_issues(conn, campaign_id, limit=5)
            if view.file.invalid + view.file.duplicates
            else []
        )
    return {
        "c": view,
        "funnel": funnel_bars(analytics) if analytics else None,
        "chart": totals_chart(analytics) if analytics else None,
        "issues": issues,
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
    return framing.page(request, "campaign.html", **context)


@router.get("/campaigns/{campaign_id}/preview", response_class=HTMLResponse)
def campaign_preview(request: Request, campaign_id: str) -> HTMLResponse:
    """The template rendered for the first recipient, shown on the review step."""
    caller, _ = framing.signed_in(request)
    preview = first_recipient_preview(framing.runtime_of(request), caller.tenant_id, campaign_id)
    return framing.page(request, "_preview.html", preview=preview)


@router.get("/campaigns/{campaign_id}/live", response_class=HTMLResponse)
def campaign_live(
    request: Request, campaign_id: str, status: str | None = None, email: str | None = None
) -> HTMLResponse:
    """The changing part of the campaign page, for htmx to swap in every 2 s."""
    context = _campaign_context(request, campaign_id, status, None, email)
    return framing.page(request, "_live.html", **context)


@router.post("/campaigns/new", response_class=HTMLResponse)
def create_campaign(
    request: Request,
    recipients: UploadFile,
    template: Annotated[UploadFile | None, File()] = None,
    template_id: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    sender: Annotated[str, Form()] = "",
    subject: Annotated[str, Form()] = "",
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    """Store the files as uploads (or take a template uploaded before), then create the
    campaign held for review."""
    caller = framing.checked_post(request, csrf)
    rt = framing.runtime_of(request)
    form = {"name": name, "sender": sender, "subject": subject, "template_id": template_id}
    try:
        if not template_id:
            template_id = _uploaded_template(rt, caller.tenant_id, name, subject, template)
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
            # Line breaks go first: parseaddr reads a quoted name broken over lines as empty.
            from_name, from_email = parseaddr(one_line(sender))
            fields["from"] = Sender(name=from_name or None, email=from_email)
        body = CampaignRequest.model_validate(fields)
        campaign_id = start_campaign(rt, caller.tenant_id, body)
    except (PostroomError, ValidationError) as exc:
        error = exc.message if isinstance(exc, PostroomError) else _first_problem(exc)
        return framing.page(
            request,
            "new_campaign.html",
            http_status=exc.status if isinstance(exc, PostroomError) else 422,
            error=error,
            form=form,
            **_new_campaign_choices(request),
        )
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
    caller = framing.checked_post(request, csrf)
    rt = framing.runtime_of(request)
    try:
        send_at = _send_at(when, send_date, send_time, zone)
        with rt.db.write() as conn:
            row = service.get_campaign(conn, caller.tenant_id, campaign_id)
            control.confirm_campaign(conn, row, send_at, rt.clock.now())
            notify_workers(conn, "campaign_control")
    except (PostroomError, _BadTime) as exc:
        message = exc.message if isinstance(exc, PostroomError) else str(exc)
        return HTMLResponse(
            framing.render("message.html", title="Not confirmed", message=message), status_code=422
        )
    rt.wakeups.notify()
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


def _uploaded_template(
    rt: Runtime, tenant_id: str, name: str, subject: str, template: UploadFile | None
) -> str:
    if template is None or not template.filename:
        raise Unprocessable(
            "Upload a template, or pick one you used before.", code="template_not_uploaded"
        )
    if not subject.strip():
        raise Unprocessable("Write a subject for the new template.", code="invalid_subject")
    return uploads.store_template(rt, tenant_id, name or "console", subject, template.file)


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
    caller = framing.checked_post(request, csrf)
    rt = framing.runtime_of(request)
    actions = {
        "pause": control.pause_campaign,
        "resume": control.resume_campaign,
        "cancel": control.cancel_campaign,
    }
    if action not in actions:
        return HTMLResponse(framing.render("message.html", title="Not found", message=""), 404)
    try:
        with rt.db.write() as conn:
            row = service.get_campaign(conn, caller.tenant_id, campaign_id)
            actions[action](conn, row, rt.clock.now())
            notify_workers(conn, "campaign_control")
    except PostroomError as exc:
        return HTMLResponse(
            framing.render("message.html", title="Not possible", message=exc.message),
            status_code=409,
        )
    rt.wakeups.notify()
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


_OUTBOX_PAGE = 25


def _outbox_dir(request: Request) -> Path | None:
    """The capture transport's directory, or None when mail really leaves the machine."""
    return outbox_directory(framing.runtime_of(request).settings.transport_url)


@router.get("/outbox", response_class=HTMLResponse)
def outbox_page(request: Request, page: int = 1) -> HTMLResponse:
    directory = _outbox_dir(request)
    if directory is None:
        framing.signed_in(request)
        body = "The outbox exists only with the capture transport (capture://DIR)."
        return HTMLResponse(framing.render("message.html", title="No outbox", message=body), 404)
    page = max(page, 1)
    entries = list_outbox(directory, limit=page * _OUTBOX_PAGE + 1)
    shown = entries[(page - 1) * _OUTBOX_PAGE : page * _OUTBOX_PAGE]
    more = len(entries) > page * _OUTBOX_PAGE
    return framing.page(request, "outbox.html", entries=shown, page=page, more=more)


@router.get("/outbox/{message_id}", response_class=HTMLResponse)
def outbox_message(request: Request, message_id: str) -> HTMLResponse:
    directory = _outbox_dir(request)
    if directory is None:
        return outbox_page(request)
    framing.signed_in(request)
    try:
        raw = read_outbox_message(directory, message_id)
    except PostroomError as exc:
        return HTMLResponse(
            framing.render("message.html", title="Not found", message=exc.message), 404
        )
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    html_part = parsed.get_body(("html",))
    html = html_part.get_content() if isinstance(html_part, EmailMessage) else None
    return framing.page(
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
    caller, _ = framing.signed_in(request)
    rt = framing.runtime_of(request)
    with rt.db.read_latest() as conn:
        page = suppressions.list_page(conn, caller.tenant_id, cursor=cursor, limit=50)
    return framing.page(request, "suppressions.html", page=page, error=error)


@router.post("/suppressions", response_class=HTMLResponse)
def add_suppression(
    request: Request,
    email: Annotated[str, Form()] = "",
    detail: Annotated[str, Form()] = "",
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    caller = framing.checked_post(request, csrf)
    rt = framing.runtime_of(request)
    checked = check_address(email)
    if not isinstance(checked, Address):
        with rt.db.read_latest() as conn:
            page = suppressions.list_page(conn, caller.tenant_id, cursor=None, limit=50)
        return framing.page(
            request, "suppressions.html", http_status=422, page=page, error=checked.detail
        )
    with rt.db.write() as conn:
        suppressions.add_by_hand(
            conn,
            caller.tenant_id,
            checked.email,
            checked.key,
            rt.clock.now(),
            detail or None,
            rt.secret_key,
        )
    return RedirectResponse("/suppressions", status_code=303)


@router.post("/suppressions/remove", response_class=HTMLResponse)
def remove_suppression(
    request: Request,
    email: Annotated[str, Form()] = "",
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    caller = framing.checked_post(request, csrf)
    rt = framing.runtime_of(request)
    checked = check_address(email)
    email_key = checked.key if isinstance(checked, Address) else email.strip().lower()
    try:
        with rt.db.write() as conn:
            suppressions.remove(conn, caller.tenant_id, email_key, rt.secret_key)
    except PostroomError:
        pass  # already gone: the page shows the list as it is
    return RedirectResponse("/suppressions", status_code=303)


@router.get("/suppressions/export.csv")
def export_suppressions(request: Request) -> Response:
    caller, _ = framing.signed_in(request)
    rt = framing.runtime_of(request)
    with rt.db.read() as conn:
        body = "".join(suppressions.export_csv(conn, caller.tenant_id))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="suppressions.csv"'},
    )


@router.get("/campaigns/{campaign_id}/errors.csv")
def campaign_errors(request: Request, campaign_id: str) -> Response:
    caller, _ = framing.signed_in(request)
    rt = framing.runtime_of(request)
    with rt.db.read() as conn:
        service.get_campaign(conn, caller.tenant_id, campaign_id)
        body = "".join(service.row_report(conn, campaign_id))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{campaign_id}-errors.csv"'},
    )
