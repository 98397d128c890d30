"""SmtpTransport: delivers through an SMTP relay over a small pool of reused connections.

Where and how to reach the relay comes from :mod:`postroom.transports.smtp_settings`.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Sequence

import aiosmtplib
from aiosmtplib.email import parse_address

from postroom.transports.base import (
    Accepted,
    Envelope,
    Outcome,
    Permanent,
    Transient,
    send_each,
    to_wire_format,
)
from postroom.transports.smtp_settings import STARTTLS_FLAG, SmtpSettings, TlsMode

# A relay that cannot answer QUIT promptly is gone; waiting longer would only delay a send.
_QUIT_TIMEOUT_SECONDS = 2.0
_QUEUE_ID = re.compile(r"\bqueued as\s+<?([^\s<>;,()]+)|\bid=([^\s;,()]+)", re.IGNORECASE)


class _StaleConnection(Exception):
    """A reused connection died before the relay accepted MAIL FROM: nothing was sent."""


class RelayConnection:
    """One open SMTP session, used by one send at a time."""

    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self.client = client
        self.transactions = 0
        self.idle_since = time.monotonic()
        self.is_usable = True

    @classmethod
    async def open(cls, settings: SmtpSettings, helo_name: str) -> RelayConnection:
        """Connect, set up TLS, authenticate and EHLO; raises aiosmtplib/OS errors."""
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password,
            local_hostname=helo_name,
            timeout=settings.timeout_seconds,
            use_tls=settings.tls is TlsMode.IMPLICIT,
            start_tls=STARTTLS_FLAG[settings.tls],
            validate_certs=settings.verify_certificates,
        )
        await client.connect()
        try:
            # The extensions (SMTPUTF8, SIZE, 8BITMIME) must be known before the first MAIL.
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
        except BaseException:
            client.close()
            raise
        return cls(client)

    async def deliver(self, envelope: Envelope, wire: bytes) -> Outcome:
        """One MAIL/RCPT/DATA transaction. Leaves ``is_usable`` False if it must be discarded."""
        is_reused = self.transactions > 0
        self.transactions += 1
        encoding = "utf-8" if _needs_smtputf8(envelope) else "ascii"
        options = self._mail_options(envelope, wire)
        if isinstance(options, Permanent):
            return options
        # Until the transaction ends cleanly (even if cancelled), the session state is unknown.
        self.is_usable = False
        stage = "MAIL FROM"
        try:
            await self.client.mail(envelope.sender, options=options, encoding=encoding)
            stage = "RCPT TO"
            await self.client.rcpt(envelope.recipient, encoding=encoding)
            stage = "DATA"
            response = await self.client.data(wire)
        except aiosmtplib.SMTPResponseException as exc:
            return await self._refused(exc)
        except (aiosmtplib.SMTPException, OSError) as exc:
            self.client.close()
            if is_reused and stage == "MAIL FROM" and isinstance(exc, ConnectionError):
                raise _StaleConnection from exc
            unknown = " (the relay may have the message)" if stage == "DATA" else ""
            return Transient(f"{stage}: {exc}{unknown}", transport_level=True)
        self.is_usable = True
        return _accepted(response)

    async def quit(self) -> None:
        """Say QUIT politely; a relay that is already gone is fine."""
        try:
            await self.client.quit(timeout=_QUIT_TIMEOUT_SECONDS)
        except (aiosmtplib.SMTPException, OSError):
            pass
        finally:
            self.client.close()

    def _mail_options(self, envelope: Envelope, wire: bytes) -> list[str] | Permanent:
        options: list[str] = []
        if self.client.supports_extension("size"):
            options.append(f"SIZE={len(wire)}")
        if not wire.isascii() and self.client.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        if _needs_smtputf8(envelope):
            if not self.client.supports_extension("smtputf8"):
                return Permanent("smtputf8_unsupported")
            options.append("SMTPUTF8")
        return options

    async def _refused(self, exc: aiosmtplib.SMTPResponseException) -> Transient | Permanent:
        outcome = classify_reply(exc.code, exc.message)
        if isinstance(outcome, Transient) and outcome.transport_level:
            self.client.close()
            return outcome
        # A refusal of this message only: reset the envelope and keep the session.
        try:
            await self.client.rset()
        except (aiosmtplib.SMTPException, OSError):
            self.client.close()
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
                connection.client.is_connected
                and idle_seconds < self.settings.idle_seconds_before_reopen
            ):
                return connection
            await connection.quit()
        return None

    async def _release(self, connection: RelayConnection) -> None:
        if not connection.is_usable:
            connection.client.close()
        elif connection.transactions >= self.settings.messages_per_connection:
            await connection.quit()
        else:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)

    async def _open_connection(self) -> RelayConnection | Transient:
        relay = f"{self.settings.host}:{self.settings.port}"
        try:
            return await RelayConnection.open(self.settings, await self._local_name())
        except aiosmtplib.SMTPAuthenticationError as exc:
            return Transient(
                f"authentication at {relay} failed: {exc.code} {exc.message}",
                code=exc.code,
                transport_level=True,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            code = exc.code if isinstance(exc, aiosmtplib.SMTPResponseException) else None
            return Transient(f"cannot use relay {relay}: {exc}", code=code, transport_level=True)

    async def _local_name(self) -> str:
        # getfqdn may consult DNS, so it runs once per transport and off the event loop.
        if self._helo_name is None:
            self._helo_name = await asyncio.to_thread(socket.getfqdn)
        return self._helo_name


def classify_reply(code: int, message: str) -> Transient | Permanent:
    """What an SMTP refusal means for this message.

    4xx: try later; 5xx: never retry. 421 (the relay is closing) and 530 (authentication
    or STARTTLS required: the relay's set-up, which every message would hit) are
    transport-level. Anything else is a protocol surprise: transport-level too.
    """
    reply = f"{code} {message}"
    if code in (421, 530):
        return Transient(reply, code=code, transport_level=True)
    if 400 <= code < 500:
        return Transient(reply, code=code)
    if 500 <= code < 600:
        return Permanent(reply, code=code)
    return Transient(f"unexpected reply {reply}", code=code, transport_level=True)


def _accepted(response: aiosmtplib.SMTPResponse) -> Accepted:
    match = _QUEUE_ID.search(response.message)
    queue_id = next((group for group in match.groups() if group), None) if match else None
    return Accepted(f"{response.code} {response.message}", queue_id=queue_id)


def _needs_smtputf8(envelope: Envelope) -> bool:
    return envelope.needs_smtputf8 or not (envelope.sender + envelope.recipient).isascii()


def _address_problem(envelope: Envelope) -> Permanent | None:
    # Checked before MAIL FROM, so that an unusable address never leaves a half-open envelope.
    # aiosmtplib would quietly reduce "Ada <a@b>" (or worse, text after a line break) to the
    # first address it finds; an envelope address must go on the wire exactly as given.
    for address in (envelope.sender, envelope.recipient):
        try:
            is_bare = parse_address(address) == address
        except ValueError:
            is_bare = False
        if not is_bare:
            return Permanent(f"invalid_address: {address!r} is not a bare mailbox")
    return None
