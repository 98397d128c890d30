"""A small layer-4 load balancer for `make cluster`: ``python -m bench.balancer PORT BACKEND…``.

It listens on 127.0.0.1:PORT and hands each new TCP connection to the next healthy backend
(127.0.0.1:BACKEND) in turn; a backend is healthy while ``GET /readyz`` answers 200 (probed
every second). It balances connections, not requests: a client that keeps one connection
alive talks to one API process, as it would behind any layer-4 balancer."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import sys
from typing import Any

CHUNK_BYTES = 64 * 1024
PROBE_SECONDS = 1.0


class Balancer:
    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.healthy = set(backends)  # trusted until the first probe says otherwise
        self._turn = itertools.cycle(backends)
        # The connections being forwarded: asyncio keeps only weak references to tasks.
        self._forwarding: set[asyncio.Task[Any] | None] = set()

    def next_backend(self) -> int | None:
        """The next healthy backend in round-robin order; None when none is."""
        for _ in range(len(self.backends)):
            port = next(self._turn)
            if port in self.healthy:
                return port
        return None

    async def forward(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        port = self.next_backend()
        if port is None:
            client.transport.abort()
            return
        try:
            backend_reader, backend = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            self.healthy.discard(port)
            client.transport.abort()
            return
        task = asyncio.current_task()
        self._forwarding.add(task)
        try:
            await asyncio.gather(_pipe(client_reader, backend), _pipe(backend_reader, client))
        except asyncio.CancelledError:
            pass  # the balancer is stopping: end quietly, the connections close below
        finally:
            self._forwarding.discard(task)
            for writer in (client, backend):
                writer.close()

    async def probe_forever(self) -> None:
        while True:
            for port in self.backends:
                if await _is_ready(port):
                    self.healthy.add(port)
                else:
                    self.healthy.discard(port)
            await asyncio.sleep(PROBE_SECONDS)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK_BYTES):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # a half-close passes through: the other way may still talk
    except (ConnectionError, OSError):
        writer.transport.abort()


async def _is_ready(port: int) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: balancer\r\nConnection: close\r\n\r\n")
        status_line = await asyncio.wait_for(reader.readline(), 5)
        return status_line.split(b" ")[1:2] == [b"200"]
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def serve(port: int, backends: list[int]) -> None:
    balancer = Balancer(backends)
    server = await asyncio.start_server(balancer.forward, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    probing = asyncio.create_task(balancer.probe_forever())
    async with server:
        await stop.wait()
    probing.cancel()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), [int(arg) for arg in sys.argv[2:]]))
