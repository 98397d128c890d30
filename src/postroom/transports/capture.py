"""CaptureTransport: delivers into a local outbox directory instead of a relay."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote

from postroom.clock import Clock, SystemClock
from postroom.errors import ConfigError
from postroom.transports.base import (
    TRANSPORT_URL_VARIABLE,
    Accepted,
    Envelope,
    Outcome,
    Transient,
    send_each,
    to_wire_format,
)
from postroom.transports.outbox import ENVELOPE_SUFFIX, MESSAGE_SUFFIX, file_stem

_SCHEME_PREFIX = "capture://"


def outbox_directory(transport_url: str) -> Path | None:
    """The outbox of a ``capture://`` transport URL; None when mail really leaves the machine."""
    if not transport_url.lower().startswith(_SCHEME_PREFIX):
        return None
    return CaptureTransport.from_url(transport_url).directory


class CaptureTransport:
    """Writes ``<DIR>/<message id>.eml`` and its envelope ``.json``; accepts everything.

    Each file is written under a temporary dot-name and renamed into place, so a crash
    never leaves a half-written message (renames are atomic; files are not fsynced, as
    this is a development outbox). The same message id sent twice replaces the first.
    """

    name = "capture"

    def __init__(self, directory: Path, *, clock: Clock | None = None) -> None:
        self.directory = directory
        self._clock = clock or SystemClock()
        self._is_closed = False

    @classmethod
    def from_url(cls, url: str) -> CaptureTransport:
        """``capture://var/outbox`` (relative to the working directory) or ``capture:///abs``."""
        if not url.lower().startswith(_SCHEME_PREFIX):
            raise ConfigError(TRANSPORT_URL_VARIABLE, "a capture URL starts with capture://")
        location = unquote(url[len(_SCHEME_PREFIX) :])
        if not location or "?" in location or "#" in location:
            raise ConfigError(
                TRANSPORT_URL_VARIABLE,
                "capture:// needs a directory, e.g. capture://var/outbox or capture:///srv/outbox",
            )
        # Resolved now, so a later change of working directory cannot move the outbox.
        return cls(Path(location).absolute())

    async def send(self, envelope: Envelope) -> Outcome:
        """Capture the message; Accepted("250 captured", queue_id=message_id)."""
        if self._is_closed:
            return Transient("transport_closed", transport_level=True)
        try:
            await asyncio.to_thread(self._write, envelope)
        except OSError as exc:
            # A full disk or a read-only directory is the outbox's problem, not the recipient's.
            return Transient(f"cannot write to outbox: {exc}", transport_level=True)
        return Accepted("250 captured", queue_id=envelope.message_id)

    async def send_many(self, envelopes: Sequence[Envelope]) -> list[Outcome]:
        """Capture each envelope; outcomes in input order."""
        return await send_each(self.send, envelopes)

    async def max_send_rate(self) -> float | None:
        """None: the outbox takes messages as fast as they come."""
        return None

    async def close(self) -> None:
        """Refuse later sends. Writes are awaited by their senders, so nothing is in flight."""
        self._is_closed = True

    def _write(self, envelope: Envelope) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = file_stem(envelope.message_id)
        sidecar = {
            "sender": envelope.sender,
            "recipient": envelope.recipient,
            "message_id": envelope.message_id,
            "captured_at": self._clock.now().isoformat(),
        }
        # Message first, envelope last: the listing only shows messages whose envelope exists.
        self._write_atomically(stem + MESSAGE_SUFFIX, to_wire_format(envelope.data))
        self._write_atomically(
            stem + ENVELOPE_SUFFIX, json.dumps(sidecar, ensure_ascii=False).encode("utf-8")
        )

    def _write_atomically(self, filename: str, content: bytes) -> None:
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as temporary_file:
                temporary_file.write(content)
            os.replace(temporary, self.directory / filename)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
