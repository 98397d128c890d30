"""Security headers on every response: a Content-Security-Policy, no framing, no sniffing,
no referrer."""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The console runs only its own scripts (htmx and console.js, served from /static; no inline
#: script, no eval). Styles may be inline and images come from anywhere because previews of a
#: campaign's HTML sit in ``<iframe sandbox srcdoc>``, which inherits this policy, and mail is
#: styled inline and shows remote images; the empty sandbox keeps scripts out of them anyway.
CONSOLE_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: https: http:",
        "font-src 'self' data: https:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
#: For pages that bring their own scripts (FastAPI's /docs and /redoc load them from a CDN).
FRAMING_ONLY_POLICY = "frame-ancestors 'none'"

_COMMON = (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    # Console URLs and tracking redirects (whose URL holds a token) tell no one where the
    # browser came from.
    ("Referrer-Policy", "no-referrer"),
)


class SecurityHeaders:
    """ASGI middleware adding the headers to each HTTP response (a value the route set
    itself is kept). ``own_script_paths`` get only the framing part of the policy."""

    def __init__(self, app: ASGIApp, *, own_script_paths: Collection[str] = ()) -> None:
        self.app = app
        self.own_script_paths = frozenset(own_script_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = FRAMING_ONLY_POLICY if scope["path"] in self.own_script_paths else CONSOLE_POLICY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", policy)
                for name, value in _COMMON:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
