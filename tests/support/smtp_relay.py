"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it receives."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.live_server import free_port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed: EmailMessage = message_from_bytes(self.data, policy=policy.default)  # type: ignore[assignment]
        return parsed


@dataclass
class RecordingHandler:
    """Accepts everything, except recipients in ``reject`` (address -> reply, every time) and
    ``reject_once`` (address -> reply, the first time only). ``delay_seconds`` slows every
    DATA down, as a busy relay would."""

    received: list[Received] = field(default_factory=list)
    reject: dict[str, str] = field(default_factory=dict)
    reject_once: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay_seconds: float = 0.0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.reject:
            return self.reject[address]
        with self.lock:
            once = self.reject_once.pop(address, None)
        if once is not None:
            return once
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        with self.lock:
            self.received.append(
                Received(
                    sender=str(envelope.mail_from),
                    recipients=list(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or envelope.content or b""),
                )
            )
        return "250 2.0.0 Ok: queued as TEST"


class SmtpRelay:
    def __init__(self) -> None:
        self.port = free_port()
        self.handler = RecordingHandler()
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, decode_data=False
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?tls=none"

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
