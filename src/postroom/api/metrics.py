"""``GET /metrics`` for Prometheus, and the ASGI middleware that counts and times requests.

/metrics takes no API key: keep it off the public internet (scrape it on a private network,
or have the proxy refuse it). It carries no tenant's data, only aggregate counts.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postroom.observability.metrics import (
    EXPOSITION_CONTENT_TYPE,
    MessageGauges,
    exposition,
    http_requests,
)

router = APIRouter(tags=["public"])

#: Anything else is counted as OTHER: a client must not be able to mint label values.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text format: this process's counters, and the message gauges from the
    database."""
    gauges: MessageGauges = request.app.state.message_gauges
    return Response(exposition(gauges), media_type=EXPOSITION_CONTENT_TYPE)


class RequestMetrics:
    """Pure ASGI middleware: counts requests by method, route template and status, and times
    them. The route is read from the scope once the router has matched it, so a path with ids
    in it is counted under its template, and a path no route knows as ``unmatched``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before it responds

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            method = scope["method"]
            http_requests.record(
                method if method in KNOWN_METHODS else "OTHER",
                route_template(scope),
                status,
                time.perf_counter() - started,
            )


def route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    if route is None:
        return UNMATCHED_ROUTE
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else UNMATCHED_ROUTE
