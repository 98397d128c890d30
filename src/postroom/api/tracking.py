"""Open pixel and click redirect (no API key): ``GET /t/o/{token}.gif`` and ``GET /t/c/{token}``.

A forged or altered token is a 404. Recording never stands in the way of the answer: if the
database fails, the GIF is still served and the redirect still happens (a warning is logged).
"""

from __future__ import annotations

import base64
import logging

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from postroom.api.deps import RuntimeDep
from postroom.errors import NotFound
from postroom.events.tracking import message_of_open_token, target_of_click_token
from postroom.events.tracking_hits import record_hit
from postroom.runtime import Runtime

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
_NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}


def _record(rt: Runtime, request: Request, event_type: str, pk: int, url: str | None) -> None:
    client = request.scope.get("client")
    try:
        with rt.db.write() as conn:
            record_hit(
                conn,
                event_type,
                pk,
                url=url,
                user_agent=request.headers.get("user-agent", ""),
                ip=client[0] if client else None,
                now=rt.clock.now(),
                bot_window_seconds=rt.settings.tracking_bot_window_seconds,
            )
    except Exception:  # the recipient must get the pixel or the page whatever happens here
        log.warning("could not record %s of message %s", event_type, pk, exc_info=True)


@router.get("/t/o/{token}.gif")
def open_pixel(token: str, request: Request, rt: RuntimeDep) -> Response:
    pk = message_of_open_token(rt.secret_key, token)
    if pk is None:
        raise NotFound("This tracking link is not valid.", code="not_found")
    _record(rt, request, "opened", pk, None)
    return Response(GIF, media_type="image/gif", headers=_NO_CACHE)


@router.get("/t/c/{token}")
def click_redirect(token: str, request: Request, rt: RuntimeDep) -> Response:
    target = target_of_click_token(rt.secret_key, token)
    if target is None:
        raise NotFound("This tracking link is not valid.", code="not_found")
    pk, url = target
    _record(rt, request, "clicked", pk, url)
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
