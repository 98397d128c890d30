"""A scripted SES v2 endpoint on 127.0.0.1: records every request and answers as told.

For what moto cannot show: the quota (GetAccount), the exact request (ConfigurationSetName),
error replies, slow replies and dropped connections, each counted so a test can prove that
exactly one attempt was made.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STUB_HOST = "127.0.0.1"
ACCOUNT = {
    "SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 12.0},
    "SendingEnabled": True,
    "ProductionAccessEnabled": True,
}


@dataclass(frozen=True)
class StubReply:
    """An HTTP reply; ``drop`` closes the connection instead of answering."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    error_type: str | None = None
    delay_seconds: float = 0.0
    drop: bool = False


def error_reply(status: int, error_type: str, message: str) -> StubReply:
    """An AWS JSON error, as SES v2 sends it."""
    return StubReply(status=status, body={"message": message}, error_type=error_type)


@dataclass(frozen=True)
class StubRequest:
    method: str
    path: str
    body: dict[str, Any]


class SesStub:
    """Answers SendEmail with ``send_reply`` (default: a MessageId) and GetAccount with
    ``account_reply`` (default: a quota of 14 messages per second)."""

    def __init__(self) -> None:
        self.requests: list[StubRequest] = []
        self.send_reply: StubReply | None = None
        self.account_reply = StubReply(body=ACCOUNT)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((STUB_HOST, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def endpoint_url(self) -> str:
        return f"http://{STUB_HOST}:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reply_to(self, method: str, path: str, body: dict[str, Any]) -> StubReply:
        with self._lock:
            self.requests.append(StubRequest(method, path, body))
            if method == "GET" and path == "/v2/email/account":
                return self.account_reply
            if method == "POST" and path == "/v2/email/outbound-emails":
                return self.send_reply or StubReply(
                    body={"MessageId": f"stub-{len(self.requests)}"}
                )
        return error_reply(404, "NotFoundException", f"no such operation {method} {path}")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                reply = stub.reply_to(self.command, self.path, json.loads(raw) if raw else {})
                time.sleep(reply.delay_seconds)
                if reply.drop:
                    self.close_connection = True
                    self.connection.close()
                    return
                payload = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if reply.error_type is not None:
                    self.send_header("x-amzn-ErrorType", reply.error_type)
                self.end_headers()
                # The client may have given up waiting already (the read-timeout test).
                with contextlib.suppress(OSError):
                    self.wfile.write(payload)

        return Handler
