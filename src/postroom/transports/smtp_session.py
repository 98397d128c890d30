"""SmtpSession: one client conversation with an SMTP relay (RFC 5321), lean enough for bulk mail.

Lean rather than general: replies come whole from :mod:`postroom.transports.smtp_replies`,
a whole transaction is one or two writes (RFC 2920 PIPELINING when the relay offers it), and
the body is dot-stuffed with one ``bytes.replace``.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Sequence
from typing import cast

from postroom.transports.smtp_replies import NotSmtpReply, RelayProtocol, Reply, parse_extensions
from postroom.transports.smtp_settings import SmtpSettings, TlsMode

_AUTH_MECHANISMS = ("PLAIN", "LOGIN")  # in order of preference
_PIPELINED_COMMANDS = (("MAIL FROM", (250,)), ("RCPT TO", (250, 251)), ("DATA", (354,)))


class SmtpError(Exception):
    """Every way an SMTP conversation can fail; ``command`` names the step that failed."""

    def __init__(self, command: str, problem: str) -> None:
        super().__init__(problem)
        self.command = command


class RefusedReply(SmtpError):
    """The relay answered ``command`` with an unexpected code; the session is still in step."""

    def __init__(self, command: str, reply: Reply) -> None:
        super().__init__(command, str(reply))
        self.reply = reply


class AuthenticationRefused(RefusedReply):
    """The relay refused the user name and password with every mechanism tried."""


class MissingExtension(SmtpError):
    """The settings need an extension (STARTTLS, AUTH) that the relay does not offer."""


class BrokenSession(SmtpError):
    """The conversation cannot go on: connection lost, no reply in time, or not SMTP.

    ``is_connection_lost`` is True when the relay hung up (or was gone before we wrote).
    """

    def __init__(self, command: str, cause: BaseException) -> None:
        super().__init__(command, _describe(cause))
        self.is_connection_lost = isinstance(cause, ConnectionError)


class SmtpSession:
    """An open, greeted (and, as the settings say, TLS-protected and authenticated) session.

    Used by one transaction at a time. Every read has the settings' timeout. Methods raise
    SmtpError subclasses only; after a BrokenSession the session is closed.
    """

    def __init__(self, protocol: RelayProtocol, settings: SmtpSettings) -> None:
        self._protocol = protocol
        self._settings = settings
        self._timeout_seconds = settings.timeout_seconds
        self.extensions: dict[str, str] = {}  # EHLO keyword (lower case) -> its parameters
        self.is_tls = settings.tls is TlsMode.IMPLICIT

    @classmethod
    async def open(
        cls, settings: SmtpSettings, helo_name: str, tls_context: ssl.SSLContext | None
    ) -> SmtpSession:
        """Connect, read the greeting, EHLO (HELO if refused), STARTTLS and AUTH as set.

        ``tls_context`` is needed unless ``settings.tls`` is ``none``.
        """
        loop = asyncio.get_running_loop()
        use_tls = settings.tls is TlsMode.IMPLICIT
        try:
            async with asyncio.timeout(settings.timeout_seconds):
                _, protocol = await loop.create_connection(
                    RelayProtocol,
                    settings.host,
                    settings.port,
                    ssl=tls_context if use_tls else None,
                    ssl_handshake_timeout=settings.timeout_seconds if use_tls else None,
                )
        except (OSError, ssl.SSLError) as exc:
            raise BrokenSession("connect", exc) from exc
        session = cls(protocol, settings)
        try:
            await session._set_up(helo_name, tls_context)
        except BaseException:
            session.close()
            raise
        return session

    @property
    def is_open(self) -> bool:
        """Connected and quiet: a relay that spoke out of turn (a 421 before hanging up) is not."""
        protocol = self._protocol
        return not protocol.is_lost and not protocol.buffer

    def supports(self, extension: str) -> bool:
        """Whether the relay's last EHLO offered ``extension`` (any case)."""
        return extension.lower() in self.extensions

    async def send_message(
        self, sender: str, recipient: str, mail_options: Sequence[str], wire: bytes
    ) -> Reply:
        """One MAIL/RCPT/DATA transaction; returns the relay's 250 reply to the body.

        ``sender`` and ``recipient`` are bare addresses the caller has checked; ``wire`` is
        the message with CRLF line endings (to_wire_format). Raises RefusedReply (its
        ``command`` is "MAIL FROM", "RCPT TO" or "DATA"; RSET before the next transaction)
        or BrokenSession; ValueError, before anything is sent, if an address or option holds
        a line break (a caller's bug). With PIPELINING the three commands go in one write.
        """
        options = "".join(" " + option for option in mail_options)
        commands = f"MAIL FROM:<{sender}>{options}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode()
        if commands.count(b"\n") != 3 or commands.count(b"\r") != 3:
            raise ValueError("an address or option holds a line break")
        if "pipelining" in self.extensions:
            await self._send_pipelined(commands)
        else:
            mail, rcpt, data = commands.split(b"\r\n", 2)
            await self._exchange("MAIL FROM", mail + b"\r\n", (250,))
            await self._exchange("RCPT TO", rcpt + b"\r\n", (250, 251))
            await self._exchange("DATA", data, (354,))
        return await self._exchange("DATA", dot_stuffed(wire), (250,))

    async def reset(self) -> None:
        """RSET: forget the current envelope."""
        await self._exchange("RSET", b"RSET\r\n", (250,))

    async def quit(self, timeout_seconds: float) -> None:
        """Say QUIT, wait up to ``timeout_seconds`` for the reply, and close; never raises."""
        try:
            self._protocol.write(b"QUIT\r\n")
            async with asyncio.timeout(timeout_seconds):
                await self._protocol.read_reply()
        except (OSError, NotSmtpReply):
            pass
        finally:
            self.close()

    def close(self) -> None:
        """Drop the connection at once (nothing pending is worth flushing)."""
        transport = self._protocol.transport
        if transport is not None and not transport.is_closing():
            transport.abort()

    async def _send_pipelined(self, commands: bytes) -> None:
        # RFC 2920: read every reply, in order; the first refusal decides the outcome.
        self._write("MAIL FROM", commands)
        refusal: RefusedReply | None = None
        reply = None
        for command, accepted in _PIPELINED_COMMANDS:
            try:
                reply = await self._read(command)
            except BrokenSession:
                if refusal is None:
                    raise
                raise refusal from None  # refused, then hung up: the refusal is the news
            if reply.code == 421:
                raise RefusedReply(command, reply)  # the relay is hanging up: nothing more comes
            if refusal is None and reply.code not in accepted:
                refusal = RefusedReply(command, reply)
        if refusal is not None:
            if reply is not None and reply.code == 354:
                # The relay wants a body despite the refusal: an empty one ends DATA.
                try:
                    await self._exchange("DATA", b".\r\n", None)
                except BrokenSession:
                    raise refusal from None
            raise refusal

    async def _exchange(self, command: str, data: bytes, accepted: tuple[int, ...] | None) -> Reply:
        """Write ``data`` (if any) and read the reply; refuse codes not in ``accepted``."""
        if data:
            self._write(command, data)
            if self._protocol.is_paused:
                try:
                    async with asyncio.timeout(self._timeout_seconds):
                        await self._protocol.drain()
                except OSError as exc:
                    self.close()
                    raise BrokenSession(command, exc) from exc
        reply = await self._read(command)
        if accepted is not None and reply.code not in accepted:
            raise RefusedReply(command, reply)
        return reply

    def _write(self, command: str, data: bytes) -> None:
        try:
            self._protocol.write(data)
        except OSError as exc:
            self.close()
            raise BrokenSession(command, exc) from exc

    async def _read(self, command: str) -> Reply:
        protocol = self._protocol
        try:
            reply = protocol.take_reply()
            if reply is None:
                async with asyncio.timeout(self._timeout_seconds):
                    reply = await protocol.read_reply()
        except (OSError, NotSmtpReply) as exc:
            self.close()
            raise BrokenSession(command, exc) from exc
        return reply

    async def _set_up(self, helo_name: str, tls_context: ssl.SSLContext | None) -> None:
        await self._exchange("greeting", b"", (220,))
        await self._greet(helo_name)
        tls = self._settings.tls
        if tls is TlsMode.STARTTLS or (tls is TlsMode.OPPORTUNISTIC and self.supports("starttls")):
            if not self.supports("starttls"):
                raise MissingExtension("STARTTLS", "the relay does not offer STARTTLS")
            assert tls_context is not None
            await self._start_tls(tls_context)
            await self._greet(helo_name)  # RFC 3207: forget what was said before TLS
        if self._settings.username is not None:
            await self._authenticate(self._settings.username, self._settings.password or "")

    async def _greet(self, helo_name: str) -> None:
        self.extensions = {}
        reply = await self._exchange("EHLO", f"EHLO {helo_name}\r\n".encode(), None)
        if reply.code == 250:
            self.extensions = parse_extensions(reply.text)
        elif reply.code == 421:
            raise RefusedReply("EHLO", reply)
        else:
            await self._exchange("HELO", f"HELO {helo_name}\r\n".encode(), (250,))

    async def _start_tls(self, tls_context: ssl.SSLContext) -> None:
        await self._exchange("STARTTLS", b"STARTTLS\r\n", (220,))
        protocol = self._protocol
        if protocol.buffer:
            # Bytes sent before the handshake must not be read as if they came over TLS.
            self.close()
            raise BrokenSession(
                "STARTTLS", NotSmtpReply("the relay spoke before the TLS handshake")
            )
        assert protocol.transport is not None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout_seconds):
                transport = await loop.start_tls(
                    protocol.transport,
                    protocol,
                    tls_context,
                    server_hostname=self._settings.host,
                    ssl_handshake_timeout=self._timeout_seconds,
                )
        except (OSError, ssl.SSLError) as exc:
            self.close()
            raise BrokenSession("STARTTLS", exc) from exc
        protocol.transport = cast(asyncio.Transport, transport)
        self.is_tls = True

    async def _authenticate(self, username: str, password: str) -> None:
        if not self.supports("auth"):
            hint = "" if self.is_tls else " without TLS"
            raise MissingExtension("AUTH", f"the relay does not offer AUTH{hint}")
        offered = self.extensions["auth"].upper().split()
        mechanisms = [name for name in _AUTH_MECHANISMS if name in offered]
        if not mechanisms:
            raise MissingExtension("AUTH", f"the relay offers no AUTH mechanism we know: {offered}")
        refusal: RefusedReply | None = None
        for mechanism in mechanisms:
            try:
                await self._authenticate_with(mechanism, username, password)
                return
            except RefusedReply as exc:
                refusal = exc
                if exc.reply.code == 421:
                    break
        assert refusal is not None
        raise AuthenticationRefused("AUTH", refusal.reply)

    async def _authenticate_with(self, mechanism: str, username: str, password: str) -> None:
        user, secret = username.encode(), password.encode()
        if mechanism == "PLAIN":
            token = _base64(b"\0" + user + b"\0" + secret)
            await self._exchange("AUTH", b"AUTH PLAIN " + token + b"\r\n", (235,))
        else:
            await self._exchange("AUTH", b"AUTH LOGIN\r\n", (334,))
            await self._exchange("AUTH", _base64(user) + b"\r\n", (334,))
            await self._exchange("AUTH", _base64(secret) + b"\r\n", (235,))


def dot_stuffed(wire: bytes) -> bytes:
    """``wire`` (CRLF line endings) as the DATA body: every line starting with "." gets
    another, and the body ends with CRLF "." CRLF (RFC 5321 4.5.2)."""
    body = wire.replace(b"\r\n.", b"\r\n..")
    if body.startswith(b"."):
        body = b"." + body
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def client_tls_context(*, verify_certificates: bool) -> ssl.SSLContext:
    """The system's default client context; without verification, any certificate passes."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = verify_certificates
    context.verify_mode = ssl.CERT_REQUIRED if verify_certificates else ssl.CERT_NONE
    return context


def _base64(data: bytes) -> bytes:
    return base64.b64encode(data)


def _describe(cause: BaseException) -> str:
    if isinstance(cause, TimeoutError):
        return "timed out waiting for the relay"
    return str(cause) or type(cause).__name__
