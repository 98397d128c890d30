"""Routes that need no API key: the Amazon SNS hooks for SES events and S3 uploads (trusted
by their signature instead), and one-click unsubscribe links (trusted by their signed token)."""

from __future__ import annotations

import html
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from postroom.api.deps import RuntimeDep
from postroom.api.errors import error_responses
from postroom.api.uploads import receive_s3_notification
from postroom.blobs.s3 import S3BlobStore
from postroom.errors import NotFound, PayloadTooLarge
from postroom.events.sns import fetch_from_sns
from postroom.events.sns_intake import receive_sns_message
from postroom.events.unsubscribe import message_of_token, unsubscribe
from postroom.runtime import Runtime

#: An SNS message is at most 256 KiB; anything larger is not one.
SNS_MAX_BYTES = 512 * 1024

router = APIRouter(tags=["public"])


@router.post("/hooks/ses", responses=error_responses(400, 403, 413))
async def ses_hook(request: Request, rt: RuntimeDep) -> dict[str, Any]:
    """Amazon SNS deliveries of SES events (subscribe an SNS topic's HTTPS endpoint here).
    Only messages with a valid SNS signature are trusted; subscriptions are confirmed by
    fetching their SubscribeURL, only when it is an https URL on an SNS host."""
    body = await _sns_body(request)
    outcome = await run_in_threadpool(
        receive_sns_message,
        rt.db,
        body,
        verifier=request.app.state.sns_verifier,
        fetch=rt.sns_fetch or fetch_from_sns,
        now=rt.clock.now(),
    )
    answer: dict[str, Any] = {"type": outcome.message_type}
    if outcome.recorded is not None:
        answer["events"] = asdict(outcome.recorded)
    if outcome.confirmed:
        answer["confirmed"] = True
    return answer


@router.post("/hooks/s3", responses=error_responses(400, 403, 404, 413))
async def s3_hook(request: Request, rt: RuntimeDep) -> dict[str, Any]:
    """S3 event notifications (ObjectCreated) delivered by Amazon SNS, with s3:// storage:
    each upload they name is noticed at once rather than when its template or file is next
    used. Trusted, and subscriptions confirmed, exactly as on /hooks/ses."""
    store = rt.blobs
    if not isinstance(store, S3BlobStore):
        raise NotFound("Blobs are not stored in S3 here.", code="not_found")
    body = await _sns_body(request)
    return await run_in_threadpool(
        receive_s3_notification,
        rt,
        store,
        body,
        verifier=request.app.state.sns_verifier,
        fetch=rt.sns_fetch or fetch_from_sns,
    )


async def _sns_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():  # stop reading as soon as it is too large
        body += chunk
        if len(body) > SNS_MAX_BYTES:
            raise PayloadTooLarge("An SNS message is never this large.", code="payload_too_large")
    return bytes(body)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.6rem 1.2rem}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=title, body=body), status_code=status)


def _unsubscribe_target(rt: Runtime, token: str) -> int:
    message_pk = message_of_token(rt.secret_key, token)
    if message_pk is None:
        raise NotFound("This unsubscribe link is not valid.", code="not_found")
    return message_pk


@router.get("/u/{token}", response_class=HTMLResponse, include_in_schema=False)
def unsubscribe_page(token: str, rt: RuntimeDep) -> HTMLResponse:
    """The link in a message: a page with one button (a GET never unsubscribes, so that link
    scanners cannot)."""
    _unsubscribe_target(rt, token)
    return _page(
        "Unsubscribe",
        '<p>Stop receiving these emails?</p><form method="post">'
        '<button type="submit" name="List-Unsubscribe" value="One-Click">Unsubscribe</button>'
        "</form>",
    )


@router.post("/u/{token}", response_class=HTMLResponse, include_in_schema=False)
def unsubscribe_now(token: str, rt: RuntimeDep) -> HTMLResponse:
    """RFC 8058 one-click: unsubscribes at once, whatever the body; repeating it is harmless."""
    message_pk = _unsubscribe_target(rt, token)
    with rt.db.write() as conn:
        done = unsubscribe(conn, message_pk, rt.clock.now(), how="link")
    if done is None:
        return _page("Link expired", "<p>This message is no longer known.</p>", status=404)
    address = html.escape(done.email)
    return _page("You are unsubscribed", f"<p>{address} will get no more of these emails.</p>")
