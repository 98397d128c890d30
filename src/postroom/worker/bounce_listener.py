"""``postroom bounces serve``: an SMTP listener (aiosmtpd) for the bounce address's domain.
It takes mail only for the bounce address itself and its VERP and unsubscribe forms, records
each mail before it answers 250 (so a mail is never acknowledged and then lost), and answers
451 when it cannot record it, so that the sending server tries again later."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from postroom.events.inbound_mail import receive_inbound_mail
from postroom.events.verp import read_address
from postroom.runtime import Runtime

log = logging.getLogger(__name__)
MAX_RECIPIENTS = 20


class BounceHandler:
    """The aiosmtpd handler: RCPT checks the address, DATA records the mail."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.bounce_address = rt.settings.bounce_address

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if read_address(self.bounce_address, address) is None:
            return "550 5.1.1 No such mailbox here"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode("utf-8", "surrogateescape")
        mail_from = str(envelope.mail_from or "")
        rcpts = [str(r) for r in envelope.rcpt_tos]
        try:
            result = await asyncio.to_thread(
                receive_inbound_mail,
                self.rt,
                envelope_from=mail_from,
                envelope_to=rcpts,
                raw=raw,
            )
        except Exception as exc:
            log.error("inbound mail from <%s> to %s not recorded: %s", mail_from, rcpts, exc)
            return "451 4.3.0 Cannot record the message now; try again later"
        log.info(
            "inbound mail from <%s> to %s: %s (%s)",
            mail_from,
            ", ".join(rcpts),
            result.outcome,
            result.detail,
        )
        return "250 2.0.0 Ok: recorded"


def bounce_listener(rt: Runtime, host: str, port: int) -> Controller:
    """A listener ready to ``start()`` (and ``stop()``); it runs in its own thread."""
    return Controller(
        BounceHandler(rt),
        hostname=host,
        port=port,
        decode_data=False,
        data_size_limit=rt.settings.bounce_max_message_bytes,
        ident="Postroom bounces",
    )
