"""A real SMTP server (aiosmtpd) on 127.0.0.1 that counts deliveries per recipient and per
client (the name each client gave in EHLO), and that can go away and come back on its port."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.live_server import free_port


class CountingHandler:
    """Accepts every message; counts are safe to read from any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.per_recipient: Counter[str] = Counter()
        self.per_client: Counter[str] = Counter()
        self.arrivals: list[tuple[float, str]] = []  # (time.monotonic(), recipient)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            for recipient in envelope.rcpt_tos:
                self.per_recipient[recipient] += 1
                self.arrivals.append((time.monotonic(), recipient))
            self.per_client[session.host_name or "unnamed"] += len(envelope.rcpt_tos)
        return "250 2.0.0 Ok: queued"


class _TrackedSmtp(SMTP):
    """An SMTP session that registers its connection so the relay can cut it."""

    def __init__(self, connections: set[asyncio.BaseTransport], *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._connections = connections

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._connections.add(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self.transport)
        super().connection_lost(exc)


class _TrackingController(Controller):
    def __init__(self, handler: CountingHandler, port: int) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=port, decode_data=False)
        self.connections: set[asyncio.BaseTransport] = set()

    def factory(self) -> SMTP:
        return _TrackedSmtp(self.connections, self.handler, **self.SMTP_kwargs)


class CountingRelay:
    """Runs in a thread of the test process, so it lives on while workers are killed."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = CountingHandler()
        self._controller: _TrackingController | None = None

    def url(self, helo: str | None = None) -> str:
        """The transport URL for a worker; ``helo`` names the worker in the relay's counts."""
        url = f"smtp://127.0.0.1:{self.port}?tls=none"
        return f"{url}&helo={helo}" if helo else url

    def start(self) -> None:
        """Listen on the relay's port (the same one after a stop)."""
        assert self._controller is None, "relay already running"
        self._controller = _TrackingController(self.handler, self.port)
        self._controller.start()

    def stop(self) -> None:
        """Close every client connection and the listening socket."""
        controller, self._controller = self._controller, None
        if controller is None:
            return

        def abort_connections() -> None:
            for transport in list(controller.connections):
                if isinstance(transport, asyncio.Transport):
                    transport.abort()

        controller.loop.call_soon_threadsafe(abort_connections)
        controller.stop()

    def per_recipient(self) -> Counter[str]:
        with self.handler.lock:
            return Counter(self.handler.per_recipient)

    def per_client(self) -> Counter[str]:
        with self.handler.lock:
            return Counter(self.handler.per_client)

    def arrivals(self) -> list[tuple[float, str]]:
        """When each delivery arrived (monotonic seconds) and for whom, in order."""
        with self.handler.lock:
            return list(self.handler.arrivals)

    def total(self) -> int:
        """Deliveries so far, repeats included."""
        with self.handler.lock:
            return sum(self.handler.per_recipient.values())
