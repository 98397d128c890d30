"""SMTP replies off the wire: a buffering asyncio Protocol that hands out whole replies.

A reply (RFC 5321 4.2, one line or many) is parsed only once all of it has arrived, so a
pipelined burst of replies costs one read and no per-line coroutine.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast

_MAX_REPLY_BYTES = 64 * 1024  # a relay that never finishes a reply is not a relay


@dataclass(frozen=True, slots=True)
class Reply:
    """A relay's reply: its code and its text (the lines after the code, joined by "\\n")."""

    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


class NotSmtpReply(Exception):
    """The relay sent bytes that are not a well-formed SMTP reply."""


class RelayProtocol(asyncio.Protocol):
    """Buffers what the relay sends and hands out whole replies; tracks write flow control."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.is_lost = False
        self._data_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self.is_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's do not subclass asyncio.Transport, so no isinstance.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake(self._data_waiter)

    def eof_received(self) -> bool:
        return False  # the relay is done talking: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_lost = True
        self._wake(self._data_waiter)
        self._wake(self._drain_waiter)

    def pause_writing(self) -> None:
        self.is_paused = True

    def resume_writing(self) -> None:
        self.is_paused = False
        self._wake(self._drain_waiter)

    def write(self, data: bytes) -> None:
        if self.is_lost or self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the connection is closed")
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        while self.is_paused and not self.is_lost:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter
        if self.is_lost:
            raise ConnectionResetError("the relay closed the connection")

    async def read_reply(self) -> Reply:
        """The next complete reply; raises ConnectionError, TimeoutError (from the caller's
        deadline) or NotSmtpReply."""
        reply = self.take_reply()
        while reply is None:
            if self.is_lost:
                raise ConnectionResetError("the relay closed the connection")
            self._data_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._data_waiter
            finally:
                self._data_waiter = None
            reply = self.take_reply()
        return reply

    def take_reply(self) -> Reply | None:
        """Remove and return the first complete reply in the buffer, if there is one."""
        buffer = self.buffer
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                if len(buffer) > _MAX_REPLY_BYTES:
                    raise NotSmtpReply(f"a reply longer than {_MAX_REPLY_BYTES} bytes")
                return None
            # "250-..." continues the reply, "250 ..." (or a bare "250") ends it.
            separator = buffer[start + 3 : start + 4] if end > start + 3 else b"\n"
            if end < start + 3 or not buffer[start : start + 3].isdigit():
                raise NotSmtpReply(f"not an SMTP reply: {bytes(buffer[start:end])[:80]!r}")
            if separator == b"-":
                start = end + 1
                continue
            if separator not in (b" ", b"\r", b"\n"):
                raise NotSmtpReply(f"not an SMTP reply: {bytes(buffer[start:end])[:80]!r}")
            reply = parse_reply(bytes(buffer[: end + 1]))
            del buffer[: end + 1]
            return reply

    @staticmethod
    def _wake(waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def parse_extensions(text: str) -> dict[str, str]:
    """The extensions an EHLO reply's text offers: keyword (lower case) -> its parameters.

    The first line is the relay's name; each other line is "KEYWORD [parameters]". The
    pre-RFC 4954 spelling "AUTH=LOGIN PLAIN" some relays add counts as AUTH too.
    """
    extensions: dict[str, str] = {}
    for line in text.split("\n")[1:]:
        words = line.split()
        if not words:
            continue
        keyword, parameters = words[0].lower(), words[1:]
        if keyword.startswith("auth="):
            keyword, parameters = "auth", [words[0][len("auth=") :], *parameters]
        if keyword in extensions:
            parameters = [*extensions[keyword].split(), *parameters]
        extensions[keyword] = " ".join(parameters)
    return extensions


def parse_reply(raw: bytes) -> Reply:
    """One whole reply's bytes (lines ending in LF) as a Reply; raises NotSmtpReply."""
    # Every line starts with three digits (take_reply checked); the first line's code counts.
    lines = raw.decode("utf-8", "replace").split("\n")
    lines.pop()  # after the final line ending
    code = int(lines[0][:3])
    if not 100 <= code <= 599:
        raise NotSmtpReply(f"not an SMTP reply code: {code}")
    if len(lines) == 1:
        return Reply(code, lines[0][4:].rstrip("\r"))
    return Reply(code, "\n".join(line[4:].rstrip("\r") for line in lines))
