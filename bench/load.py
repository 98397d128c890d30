"""A fixed-rate reader of the API (open loop): ``python -m bench.load URL KEY CAMPAIGN RATE
SECONDS``; prints latency percentiles of GET status and GET messages as JSON.

The client is a few lines of HTTP/1.1 over keep-alive sockets rather than a full HTTP library,
for the same reason the send benchmark uses smtp-sink: a heavy client on the same two cores
would measure itself. Each latency runs from the moment the request was due, not from when it
was actually sent, so a stalled server cannot hide its backlog (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit

MAX_CONNECTIONS = 64


class HttpError(Exception):
    """The server answered something that is not a complete HTTP/1.1 response."""


class StaleConnection(HttpError):
    """The server closed the connection before this request got any answer."""


class Connection:
    """One keep-alive HTTP/1.1 connection for GETs with a Content-Length body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def get(self, request: bytes) -> int:
        """Send one GET and read the whole answer; StaleConnection if the server had closed
        the connection before answering anything."""
        if self.reader.at_eof():
            raise StaleConnection
        self.writer.write(request)
        try:
            status_line = await self.reader.readline()
        except ConnectionResetError:
            raise StaleConnection from None
        if not status_line:
            raise StaleConnection
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HttpError(f"bad status line {status_line!r}")
        length = None
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise HttpError("no Content-Length")
        await self.reader.readexactly(length)
        return int(parts[1])

    def close(self) -> None:
        self.writer.close()


async def run(
    url: str,
    key: str,
    campaign_id: str,
    rate: float,
    seconds: float,
    *,
    kinds: tuple[str, ...] = ("status", "messages"),
    until: Callable[[], bool] | None = None,
    at_least: int = 0,
) -> dict[str, object]:
    """Requests of ``kinds`` in turn at ``rate`` per second for ``seconds``, or until
    ``until()`` is true if sooner (but not before ``at_least`` requests)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = {
        kind: (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {key}\r\nAccept: application/json\r\n\r\n"
        ).encode()
        for kind, path in (
            ("status", f"/api/v1/campaigns/{campaign_id}/status"),
            ("messages", f"/api/v1/campaigns/{campaign_id}/messages?limit=100"),
        )
    }
    latencies: dict[str, list[float]] = {kind: [] for kind in kinds}
    errors = 0
    problems: Counter[str] = Counter()
    idle: list[Connection] = []
    slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def one(kind: str, due: float) -> None:
        nonlocal errors
        request = requests[kind]
        async with slots:
            connection = idle.pop() if idle else None
            try:
                status = None
                if connection is not None:
                    try:
                        status = await asyncio.wait_for(connection.get(request), timeout=30)
                    except StaleConnection:
                        # A kept-alive connection the server closed while it was idle (uvicorn
                        # does after 5 s): a GET may be retried on a fresh one, as browsers do.
                        connection.close()
                if status is None:
                    connection = Connection(*await asyncio.open_connection(host, port))
                    status = await asyncio.wait_for(connection.get(request), timeout=30)
            except (OSError, HttpError, asyncio.IncompleteReadError, TimeoutError) as exc:
                errors += 1
                problems[f"{type(exc).__name__}: {exc}"[:120]] += 1
                if connection is not None:
                    connection.close()
                return
            idle.append(connection)
        if status != 200:
            errors += 1
            problems[f"HTTP {status}"] += 1
        latencies[kind].append((time.perf_counter() - due) * 1000)

    tasks = []
    start = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        if until is not None and i >= at_least and until():
            total = i
            break
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(kinds[i % len(kinds)], due)))
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.close()
    return {
        "rate": rate,
        "requests": total,
        "errors": errors,
        "error_kinds": dict(problems),
        **{kind: _percentiles(values) for kind, values in latencies.items()},
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {}
    cuts = statistics.quantiles(values, n=100)
    return {
        "p50_ms": round(cuts[49], 2),
        "p95_ms": round(cuts[94], 2),
        "p99_ms": round(cuts[98], 2),
    }


def main() -> None:
    url, key, campaign_id, rate, seconds = sys.argv[1:6]
    print(json.dumps(asyncio.run(run(url, key, campaign_id, float(rate), float(seconds)))))


if __name__ == "__main__":
    main()
