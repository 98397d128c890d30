"""SmtpTransport: delivers through an SMTP relay over a small pool of reused connections.

Where and how to reach the relay comes from :mod:`postroom.transports.smtp_settings`.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from collections.abc import Sequence

from postroom.transports.base import (
    Accepted,
    Envelope,
    Outcome,
    Permanent,
    Transient,
    send_each,
    to_wire_format,
)
from postroom.transports.smtp_session import (
    AuthenticationRefused,
    BrokenSession,
    RefusedReply,
    Reply,
    SmtpError,
    SmtpSession,
    client_tls_context,
)
from postroom.transports.smtp_settings import SmtpSettings, TlsMode

# A relay that cannot answer QUIT promptly is gone; waiting longer would only delay a send.
_QUIT_TIMEOUT_SECONDS = 2.0
_QUEUE_ID = re.compile(r"\bqueued as\s+<?([^\s<>;,()]+)|\bid=([^\s;,()]+)", re.IGNORECASE)
# An envelope address goes on the wire exactly as given, between "<" and ">", so it must be
# one bare mailbox (RFC 5321 Mailbox, with RFC 6531's UTF-8): a dot-atom or quoted local
# part, "@", and a domain or address literal. No spaces outside quotes, no brackets, no
# commas or comments, no line breaks: nothing that could end the address or the command.
_NON_ASCII = "\u0080-\U0010ffff"
_ATOM = rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~\-{_NON_ASCII}]+"
_QUOTED = rf'"(?:[\x20\x21\x23-\x5b\x5d-\x7e{_NON_ASCII}]|\\[\x20-\x7e])*"'
_LABEL = rf"[A-Za-z0-9{_NON_ASCII}](?:[A-Za-z0-9\-{_NON_ASCII}]*[A-Za-z0-9{_NON_ASCII}])?"
_ADDRESS_LITERAL = r"\[[\x21-\x5a\x5e-\x7e]+\]"
_BARE_MAILBOX = re.compile(
    rf"(?:{_ATOM}(?:\.{_ATOM})*|{_QUOTED})@(?:{_LABEL}(?:\.{_LABEL})*|{_ADDRESS_LITERAL})"
)


class _StaleConnection(Exception):
    """A reused connection died before the relay accepted MAIL FROM: nothing was sent."""


class RelayConnection:
    """One open SMTP session, used by one send at a time."""

    def __init__(self, session: SmtpSession) -> None:
        self.session = session
        self.transactions = 0
        self.idle_since = time.monotonic()
        self.is_usable = True

    @classmethod
    async def open(
        cls, settings: SmtpSettings, helo_name: str, tls_context: ssl.SSLContext | None
    ) -> RelayConnection:
        """Connect, greet, set up TLS and authenticate as the settings say; raises SmtpError."""
        return cls(await SmtpSession.open(settings, helo_name, tls_context))

    async def deliver(self, envelope: Envelope, wire: bytes) -> Outcome:
        """One MAIL/RCPT/DATA transaction. Leaves ``is_usable`` False if it must be discarded."""
        is_reused = self.transactions > 0
        self.transactions += 1
        options = self._mail_options(envelope, wire)
        if isinstance(options, Permanent):
            return options
        # Until the transaction ends cleanly (even if cancelled), the session state is unknown.
        self.is_usable = False
        try:
            reply = await self.session.send_message(
                envelope.sender, envelope.recipient, options, wire
            )
        except RefusedReply as exc:
            if is_reused and exc.command == "MAIL FROM" and exc.reply.code == 421:
                self.session.close()  # a relay's idle timeout, noticed only now
                raise _StaleConnection from exc
            return await self._refused(exc.reply)
        except BrokenSession as exc:
            if is_reused and exc.command == "MAIL FROM" and exc.is_connection_lost:
                raise _StaleConnection from exc
            if exc.command == "DATA":
                return Transient(
                    f"DATA: {exc} (the relay may have the message)",
                    transport_level=True,
                    possible_duplicate=True,
                )
            return Transient(f"{exc.command}: {exc}", transport_level=True)
        self.is_usable = True
        return _accepted(reply)

    async def quit(self) -> None:
        """Say QUIT politely; a relay that is already gone is fine."""
        await self.session.quit(_QUIT_TIMEOUT_SECONDS)

    def _mail_options(self, envelope: Envelope, wire: bytes) -> list[str] | Permanent:
        options: list[str] = []
        if self.session.supports("size"):
            options.append(f"SIZE={len(wire)}")
        if not wire.isascii() and self.session.supports("8bitmime"):
            options.append("BODY=8BITMIME")
        if _needs_smtputf8(envelope):
            if not self.session.supports("smtputf8"):
                return Permanent("smtputf8_unsupported")
            options.append("SMTPUTF8")
        return options

    async def _refused(self, reply: Reply) -> Transient | Permanent:
        outcome = classify_reply(reply.code, reply.text)
        if isinstance(outcome, Transient) and outcome.transport_level:
            self.session.close()
            return outcome
        # A refusal of this message only: reset the envelope and keep the session.
        try:
            await self.session.reset()
        except SmtpError:
            self.session.close()
        else:
            self.is_usable = True
        return outcome


class SmtpTransport:
    """Sends each envelope once over a pool of at most ``pool_size`` relay connections.

    A reused connection found dead before the relay accepted MAIL FROM is replaced by a
    fresh one for that same send: nothing of the message had been transmitted, so this
    cannot deliver twice, and a relay's idle timeout is not mistaken for an outage.
    """

    name = "smtp"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.pool_size)
        self._idle: list[RelayConnection] = []
        self._sends_in_flight = 0
        self._no_sends_in_flight = asyncio.Event()
        self._no_sends_in_flight.set()
        self._is_closing = False
        self._helo_name = settings.helo_name
        self._tls_context: ssl.SSLContext | None = None

    async def send(self, envelope: Envelope) -> Outcome:
        """Deliver once; every delivery problem comes back as a Transient or Permanent."""
        if self._is_closing:
            return Transient("transport_closed", transport_level=True)
        problem = _address_problem(envelope)
        if problem is not None:
            return problem
        self._sends_in_flight += 1
        self._no_sends_in_flight.clear()
        try:
            async with self._slots:
                return await self._send_in_slot(envelope, to_wire_format(envelope.data))
        finally:
            self._sends_in_flight -= 1
            if self._sends_in_flight == 0:
                self._no_sends_in_flight.set()

    async def send_many(self, envelopes: Sequence[Envelope]) -> list[Outcome]:
        """Send concurrently over the pool; outcomes in input order."""
        return await send_each(self.send, envelopes)

    async def max_send_rate(self) -> float | None:
        """None: an SMTP relay announces no sending rate."""
        return None

    async def close(self) -> None:
        """Refuse new sends, let in-flight ones finish, then QUIT every connection."""
        self._is_closing = True
        await self._no_sends_in_flight.wait()
        idle, self._idle = self._idle, []
        await asyncio.gather(*(connection.quit() for connection in idle))

    async def _send_in_slot(self, envelope: Envelope, wire: bytes) -> Outcome:
        connection = await self._take_idle_connection()
        if connection is not None:
            try:
                return await self._deliver_and_release(connection, envelope, wire)
            except _StaleConnection:
                pass  # nothing reached the relay; one fresh connection is safe
        opened = await self._open_connection()
        if isinstance(opened, Transient):
            return opened
        return await self._deliver_and_release(opened, envelope, wire)

    async def _deliver_and_release(
        self, connection: RelayConnection, envelope: Envelope, wire: bytes
    ) -> Outcome:
        try:
            return await connection.deliver(envelope, wire)
        finally:
            await self._release(connection)

    async def _take_idle_connection(self) -> RelayConnection | None:
        # Most recently used first, so that spare connections age out when traffic is light.
        while self._idle:
            connection = self._idle.pop()
            idle_seconds = time.monotonic() - connection.idle_since
            if (
                connection.session.is_open
                and idle_seconds < self.settings.idle_seconds_before_reopen
            ):
                return connection
            await connection.quit()
        return None

    async def _release(self, connection: RelayConnection) -> None:
        if not connection.is_usable:
            connection.session.close()
        elif connection.transactions >= self.settings.messages_per_connection:
            await connection.quit()
        else:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)

    async def _open_connection(self) -> RelayConnection | Transient:
        relay = f"{self.settings.host}:{self.settings.port}"
        try:
            return await RelayConnection.open(
                self.settings, await self._local_name(), await self._client_tls_context()
            )
        except AuthenticationRefused as exc:
            return Transient(
                f"authentication at {relay} failed: {exc.reply}",
                code=exc.reply.code,
                transport_level=True,
            )
        except SmtpError as exc:
            code = exc.reply.code if isinstance(exc, RefusedReply) else None
            return Transient(
                f"cannot use relay {relay}: {exc.command}: {exc}", code=code, transport_level=True
            )

    async def _local_name(self) -> str:
        # getfqdn may consult DNS, so it runs once per transport and off the event loop.
        if self._helo_name is None:
            self._helo_name = await asyncio.to_thread(socket.getfqdn)
        return self._helo_name

    async def _client_tls_context(self) -> ssl.SSLContext | None:
        # Loading the system's trusted roots takes milliseconds: once per transport, off the loop.
        if self._tls_context is None and self.settings.tls is not TlsMode.NONE:
            verify = self.settings.verify_certificates
            self._tls_context = await asyncio.to_thread(
                client_tls_context, verify_certificates=verify
            )
        return self._tls_context


def classify_reply(code: int, message: str) -> Transient | Permanent:
    """What an SMTP refusal means for this message.

    4xx: try later; 5xx: never retry. 421 (the relay is closing) and 530 (authentication
    or STARTTLS required: the relay's set-up, which every message would hit) are
    transport-level; a 454 throttling reply means we sent too fast. Anything else is a
    protocol surprise: transport-level too.
    """
    reply = f"{code} {message}"
    if code in (421, 530):
        return Transient(reply, code=code, transport_level=True)
    if code == 454 and "throttl" in message.lower():
        # Amazon SES's SMTP interface: "454 Throttling failure: Maximum sending rate
        # exceeded". The message was dropped; send it again, and more slowly.
        return Transient(reply, code=code, throttled=True)
    if 400 <= code < 500:
        return Transient(reply, code=code)
    if 500 <= code < 600:
        return Permanent(reply, code=code)
    return Transient(f"unexpected reply {reply}", code=code, transport_level=True)


def _accepted(reply: Reply) -> Accepted:
    match = _QUEUE_ID.search(reply.text)
    queue_id = next((group for group in match.groups() if group), None) if match else None
    return Accepted(str(reply), queue_id=queue_id)


def _needs_smtputf8(envelope: Envelope) -> bool:
    return envelope.needs_smtputf8 or not (envelope.sender + envelope.recipient).isascii()


def _address_problem(envelope: Envelope) -> Permanent | None:
    # Checked before MAIL FROM, so that an unusable address never leaves a half-open envelope.
    # "Ada <a@b>", two addresses, or text after a line break must never be reduced to, or
    # smuggled in beside, the address the caller meant. Only the sender may be "" (<>).
    for address, may_be_null in ((envelope.sender, True), (envelope.recipient, False)):
        if address == "" and may_be_null:
            continue
        if not (address.isprintable() and _BARE_MAILBOX.fullmatch(address)):
            return Permanent(f"invalid_address: {address!r} is not a bare mailbox")
    return None
