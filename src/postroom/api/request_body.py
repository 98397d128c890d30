"""Limits on request bodies, enforced as they arrive: a size cap (413, before anything is
parsed) and a cut-off for bodies that trickle in (408, slow-loris), both answered with the
house error body and the connection closed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postroom.errors import PayloadTooLarge, PostroomError

log = logging.getLogger(__name__)


class BodyTooSlow(PostroomError):
    code = "request_timeout"
    status = 408


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """``max_bytes`` for bodies without a limit of their own; every body must bring at least
    ``min_bytes_per_second * timeout_seconds`` bytes in each span of ``timeout_seconds``
    (with 0 bytes per second: some bytes)."""

    max_bytes: int
    timeout_seconds: float
    min_bytes_per_second: int

    @property
    def min_bytes_per_span(self) -> int:
        return max(1, int(self.min_bytes_per_second * self.timeout_seconds))


#: (method, path) → whether the route enforces a body size limit of its own.
OwnLimit = Callable[[str, str], bool]


class RequestBodyGuard:
    """ASGI middleware. When a body breaks a limit, the app is told the client went away
    (``http.disconnect``, so an upload in progress is discarded), whatever it answers is
    dropped, and the guard answers instead."""

    def __init__(self, app: ASGIApp, *, limits: BodyLimits, has_own_limit: OwnLimit) -> None:
        self.app = app
        self.limits = limits
        self.has_own_limit = has_own_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        own_limit = self.has_own_limit(scope["method"], scope["path"])
        max_bytes = None if own_limit else self.limits.max_bytes
        declared = _content_length(scope)
        if max_bytes is not None and declared is not None and declared > max_bytes:
            await _answer(scope, receive, send, _too_large(max_bytes))
            return
        body = _GuardedBody(receive, self.limits, max_bytes)
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if body.refusal is not None:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, body.receive, guarded_send)
        except Exception:
            if body.refusal is None:
                raise
        if body.refusal is None:
            return
        log.warning(
            "request body cut off (%s): %s %s from %s",
            body.refusal.code,
            scope["method"],
            scope["path"],
            _client(scope),
        )
        if not started:
            await _answer(scope, receive, send, body.refusal)


class _GuardedBody:
    """The app's ``receive``: counts the bytes and times each span of the body."""

    def __init__(self, receive: Receive, limits: BodyLimits, max_bytes: int | None) -> None:
        self._receive = receive
        self._limits = limits
        self._max_bytes = max_bytes
        self._received = 0
        self._is_complete = False
        self._span_started: float | None = None
        self._span_bytes = 0
        self.refusal: PostroomError | None = None

    async def receive(self) -> Message:
        if self.refusal is not None:
            return {"type": "http.disconnect"}
        if self._is_complete:
            # The app waits for a disconnect (a streaming response): not part of the body.
            return await self._receive()
        if self._span_started is None:
            self._span_started = time.monotonic()
        deadline = self._span_started + self._limits.timeout_seconds
        message: Message | None = None
        with anyio.move_on_after(deadline - time.monotonic()):
            message = await self._receive()
        if message is None:
            return self._refuse(_too_slow(self._limits))
        if message["type"] == "http.request":
            size = len(message.get("body", b""))
            self._received += size
            self._span_bytes += size
            if self._max_bytes is not None and self._received > self._max_bytes:
                return self._refuse(_too_large(self._max_bytes))
            if not message.get("more_body", False):
                self._is_complete = True
            elif self._span_bytes >= self._limits.min_bytes_per_span:
                self._span_started = time.monotonic()
                self._span_bytes = 0
        return message

    def _refuse(self, error: PostroomError) -> Message:
        self.refusal = error
        return {"type": "http.disconnect"}


def _too_large(max_bytes: int) -> PostroomError:
    return PayloadTooLarge(
        f"The request body is larger than {max_bytes} bytes.",
        code="payload_too_large",
        details={"max_bytes": max_bytes},
    )


def _too_slow(limits: BodyLimits) -> PostroomError:
    return BodyTooSlow(
        f"The request body arrived too slowly (fewer than {limits.min_bytes_per_span} bytes "
        f"in {limits.timeout_seconds:g} s); the connection is closed.",
        details={
            "timeout_seconds": limits.timeout_seconds,
            "min_bytes_per_second": limits.min_bytes_per_second,
        },
    )


async def _answer(scope: Scope, receive: Receive, send: Send, error: PostroomError) -> None:
    # The rest of the body is never read, so the connection cannot carry another request.
    response = JSONResponse(error.to_body(), status_code=error.status)
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isascii() and value.isdigit() else None
    return None


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "?"
