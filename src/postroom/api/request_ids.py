"""Every HTTP answer carries ``X-Request-Id``: the caller's own when it sent a sane one, else a
new one. It is kept in the request's state for the audit log and in every log line."""

from __future__ import annotations

import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postroom.observability.logs import log_context

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        presented = dict(scope["headers"]).get(HEADER, b"")
        request_id = (
            presented.decode("ascii")
            if _SANE.fullmatch(presented)
            else "req_" + secrets.token_hex(8)
        )
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != HEADER]
                message["headers"] = [*headers, (HEADER, request_id.encode("ascii"))]
            await send(message)

        with log_context(request_id=request_id):
            await self.app(scope, receive, send_with_id)
