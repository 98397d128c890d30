"""SmtpTransport: delivers through an SMTP relay over a small pool of reused connections.

URL: ``smtp://[user:password@]host[:port][?tls=...&pool=N&timeout=S&verify=false&helo=NAME]``

- ``tls``: ``starttls`` (required: fail if the relay does not offer it), ``implicit`` (TLS
  from the first byte, "SMTPS"), ``none`` (plain text, even if STARTTLS is offered), or
  ``opportunistic`` (upgrade with STARTTLS when offered, else plain text). Without ``tls``:
  ``implicit`` on port 465, ``opportunistic`` otherwise. An offered STARTTLS is used, and
  its certificate verified, so a relay with a bad certificate fails rather than silently
  falls back to plain text.
- port defaults to 465 for ``implicit``, 587 for ``starttls``, 25 otherwise.
- ``user``/``password`` (percent-decoded) enable AUTH after TLS is set up.
- ``pool``: open connections (default: the ``pool_size`` argument); ``timeout``: seconds per
  connect and per command (default: ``timeout_seconds``); ``verify=false`` skips certificate
  verification (test relays with self-signed certificates); ``helo``: the name sent in EHLO
  (default: this host's fully qualified name).
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NoReturn
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib
from aiosmtplib.email import parse_address

from postroom.errors import ConfigError
from postroom.transports.base import (
    TRANSPORT_URL_VARIABLE,
    Accepted,
    Envelope,
    Outcome,
    Permanent,
    Transient,
    send_each,
    to_wire_format,
)

# Relays cap messages per session and long sessions pile up state; reconnecting is cheap.
MESSAGES_PER_CONNECTION = 1000
# Relays drop idle sessions (Postfix after 300 s, NAT boxes silently); reopening after a
# shorter pause is cheaper than discovering a dead session through a timeout.
IDLE_SECONDS_BEFORE_REOPEN = 60.0
# A relay that cannot answer QUIT promptly is gone; waiting longer would only delay a send.
_QUIT_TIMEOUT_SECONDS = 2.0
_QUEUE_ID = re.compile(r"\bqueued as\s+<?([^\s<>;,()]+)|\bid=([^\s;,()]+)", re.IGNORECASE)
_QUERY_KEYS = ("tls", "pool", "timeout", "verify", "helo")
_TRUE_WORDS = ("true", "1", "yes", "on")
_FALSE_WORDS = ("false", "0", "no", "off")
_MAX_POOL_SIZE = 100


class TlsMode(StrEnum):
    OPPORTUNISTIC = "opportunistic"
    STARTTLS = "starttls"
    IMPLICIT = "implicit"
    NONE = "none"


# aiosmtplib's start_tls: None upgrades when offered, True insists, False never upgrades.
_STARTTLS_FLAG: dict[TlsMode, bool | None] = {
    TlsMode.OPPORTUNISTIC: None,
    TlsMode.STARTTLS: True,
    TlsMode.IMPLICIT: False,
    TlsMode.NONE: False,
}


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how to reach the relay; built from the transport URL."""

    host: str
    port: int
    tls: TlsMode = TlsMode.OPPORTUNISTIC
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    pool_size: int = 4
    timeout_seconds: float = 30.0
    verify_certificates: bool = True
    helo_name: str | None = None
    messages_per_connection: int = MESSAGES_PER_CONNECTION
    idle_seconds_before_reopen: float = IDLE_SECONDS_BEFORE_REOPEN

    @classmethod
    def from_url(cls, url: str, *, pool_size: int, timeout_seconds: float) -> SmtpSettings:
        """Parse an ``smtp://`` URL; raises ConfigError naming POSTROOM_TRANSPORT_URL.

        Query parameters win over the keyword defaults. Errors never echo the password.
        """
        parts = urlsplit(url)
        if parts.scheme != "smtp" or not parts.hostname:
            _reject("an SMTP URL looks like smtp://[user:password@]host[:port]")
        if parts.path not in ("", "/") or parts.fragment:
            _reject("an SMTP URL has no path or fragment; options go in ?tls=...&pool=...")
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0:
            _reject("the port must be a number from 1 to 65535")
        query = _parse_query(parts.query)
        tls = _parse_tls(query.get("tls"), port)
        username = unquote(parts.username) if parts.username else None
        if parts.password is not None and username is None:
            _reject("a password needs a user name: smtp://user:password@host")
        return cls(
            host=parts.hostname,
            port=port or _default_port(tls),
            tls=tls,
            username=username,
            password=unquote(parts.password) if parts.password is not None else None,
            pool_size=_parse_count("pool", query.get("pool"), pool_size),
            timeout_seconds=_parse_seconds(query.get("timeout"), timeout_seconds),
            verify_certificates=_parse_flag("verify", query.get("verify"), default=True),
            helo_name=_parse_helo(query.get("helo")),
        )


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
            start_tls=_STARTTLS_FLAG[settings.tls],
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


def _reject(problem: str) -> NoReturn:
    raise ConfigError(TRANSPORT_URL_VARIABLE, problem)


def _parse_query(query: str) -> dict[str, str]:
    values = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(values) - set(_QUERY_KEYS))
    if unknown:
        _reject(f"unknown SMTP option {unknown[0]!r}; known: {', '.join(_QUERY_KEYS)}")
    return values


def _parse_tls(value: str | None, port: int | None) -> TlsMode:
    if value is None:
        return TlsMode.IMPLICIT if port == 465 else TlsMode.OPPORTUNISTIC
    try:
        return TlsMode(value.lower())
    except ValueError:
        _reject(f"tls must be one of {', '.join(TlsMode)} (got {value!r})")


def _default_port(tls: TlsMode) -> int:
    return {TlsMode.IMPLICIT: 465, TlsMode.STARTTLS: 587}.get(tls, 25)


def _parse_count(name: str, value: str | None, default: int) -> int:
    count = default
    if value is not None:
        try:
            count = int(value)
        except ValueError:
            _reject(f"{name} must be a whole number (got {value!r})")
    if not 1 <= count <= _MAX_POOL_SIZE:
        _reject(f"{name} must be between 1 and {_MAX_POOL_SIZE} (got {count})")
    return count


def _parse_seconds(value: str | None, default: float) -> float:
    seconds = default
    if value is not None:
        try:
            seconds = float(value)
        except ValueError:
            _reject(f"timeout must be a number of seconds (got {value!r})")
    if not 0 < seconds < float("inf"):
        _reject(f"timeout must be a positive number of seconds (got {seconds})")
    return seconds


def _parse_flag(name: str, value: str | None, *, default: bool) -> bool:
    if value is None:
        return default
    if value.lower() in _TRUE_WORDS:
        return True
    if value.lower() in _FALSE_WORDS:
        return False
    _reject(f"{name} must be true or false (got {value!r})")


def _parse_helo(value: str | None) -> str | None:
    if value is not None and (not value or not value.isprintable() or " " in value):
        _reject(f"helo must be a host name without spaces (got {value!r})")
    return value
