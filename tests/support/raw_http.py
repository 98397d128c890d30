"""HTTP/1.1 over a bare socket, for clients no library will imitate: a body that never
arrives, arrives a byte at a time, or is announced larger than it is."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    #: The server closed the connection after the response.
    closed: bool
    #: Seconds from the first byte sent to the end of the response.
    elapsed: float
    sent_bytes: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


class RawClient:
    """One connection to ``url``'s host; ``request_head`` is written first, then body parts."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1", "tests talk to 127.0.0.1 only"
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
        self.started = time.monotonic()
        self.sent = 0

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> bool:
        """False once the server has closed or reset the connection."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        self.sent += len(data)
        return True

    def trickle(self, data: bytes, *, every_seconds: float, until: float) -> bool:
        """Send ``data`` a byte at a time, stopping early when the server has answered (or
        hung up) or when ``until`` seconds have passed; True if all was sent."""
        self.sock.setblocking(False)
        try:
            for i in range(len(data)):
                if time.monotonic() - self.started > until:
                    return False
                try:
                    self.sock.recv(1, socket.MSG_PEEK)
                    return False  # an answer (or EOF) is waiting: stop sending
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    return False
                try:
                    self.sock.send(data[i : i + 1])
                except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                    return False
                self.sent += 1
                time.sleep(every_seconds)
            return True
        finally:
            self.sock.setblocking(True)

    def response(self) -> RawResponse:
        """Read until the server closes the connection, or until one whole response (by
        Content-Length) has come and the connection stays open."""
        data = b""
        closed = False
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                length = _content_length(head)
                if length is not None and len(rest) >= length:
                    # Give a closing server a moment to say so.
                    self.sock.settimeout(0.5)
                    try:
                        closed = self.sock.recv(1) == b""
                    except (TimeoutError, ConnectionResetError):
                        closed = False
                    break
        elapsed = time.monotonic() - self.started
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1]) if lines and lines[0] else 0
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return RawResponse(status, headers, body, closed, elapsed, self.sent)


def request_head(method: str, url: str, headers: dict[str, str]) -> bytes:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None
