"""A tiny SMTP server for wire-level tests: scripted replies, and every read recorded as it came.

It runs in the test's own event loop, answers each command from ``replies`` (or a sensible
default) and, like Postfix, writes the replies to everything one read held in one write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

_DEFAULT_REPLIES = {
    "HELO": "250 scripted",
    "MAIL": "250 2.1.0 Ok",
    "RCPT": "250 2.1.5 Ok",
    "DATA": "354 End data with <CR><LF>.<CR><LF>",
    ".": "250 2.0.0 Ok: queued as Q{number}",
    "RSET": "250 2.0.0 Ok",
    "QUIT": "221 2.0.0 Bye",
}


@dataclass
class ScriptedRelay:
    """``replies`` maps a verb ("EHLO", "MAIL", "RCPT", "DATA", "." for the end of the body,
    "RSET"...) to replies used once each, in order; a reply may span lines ("\\r\\n")."""

    greeting: str = "220 scripted ESMTP"
    ehlo: str = "250-scripted\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10240000"
    replies: dict[str, list[str]] = field(default_factory=dict)
    reads: list[bytes] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)  # bodies with dot-stuffing undone
    connections: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?tls=none"

    def _reply(self, verb: str) -> str:
        queued = self.replies.get(verb)
        if queued:
            return queued.pop(0)
        if verb == "EHLO":
            return self.ehlo
        default = _DEFAULT_REPLIES.get(verb, "502 5.5.2 Error: command not recognized")
        return default.format(number=len(self.messages))

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(self.greeting.encode() + b"\r\n")
        pending = b""
        body: list[bytes] | None = None  # lines of the body while in DATA
        while chunk := await reader.read(65536):
            self.reads.append(chunk)
            pending += chunk
            out: list[str] = []
            while b"\r\n" in pending:
                line, pending = pending.split(b"\r\n", 1)
                if body is not None:
                    if line != b".":
                        body.append(line[1:] if line.startswith(b".") else line)
                        continue
                    self.messages.append(b"".join(part + b"\r\n" for part in body))
                    body = None
                    out.append(self._reply("."))
                    continue
                command = line.decode()
                self.commands.append(command)
                verb = command.split(" ", 1)[0].split(":", 1)[0].upper()
                reply = self._reply(verb)
                out.append(reply)
                if verb == "DATA" and reply.startswith("354"):
                    body = []
                if verb == "QUIT" or reply.startswith("421"):
                    writer.write("".join(r + "\r\n" for r in out).encode())
                    writer.close()
                    return
            if out:
                writer.write("".join(r + "\r\n" for r in out).encode())
        writer.close()


@asynccontextmanager
async def running(relay: ScriptedRelay) -> AsyncIterator[ScriptedRelay]:
    """Serve ``relay`` on a free port of 127.0.0.1 for the length of the block."""
    server = await asyncio.start_server(relay.serve, "127.0.0.1", 0)
    relay.port = server.sockets[0].getsockname()[1]
    try:
        yield relay
    finally:
        server.close()
