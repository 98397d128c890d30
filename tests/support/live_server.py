"""Runs the real app (uvicorn, with the in-process worker) in a thread on a free port."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn

from postroom.api.app import create_app
from postroom.runtime import Runtime
from postroom.transports.base import Transport
from postroom.worker.loop import Worker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    def __init__(
        self,
        rt: Runtime,
        port: int,
        *,
        with_worker: bool = True,
        transport: Transport | None = None,
    ) -> None:
        self.rt = rt
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        worker = Worker(rt, transport) if with_worker else None
        app = create_app(rt, background=worker.run if worker else None)
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("live server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
