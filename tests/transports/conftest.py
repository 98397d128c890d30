"""Real SMTP relays for the transport tests: aiosmtpd on 127.0.0.1, free ports, scripted replies."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

RELAY_HOST = "127.0.0.1"
GOOD_LOGIN = ("mailer", "p@ss w0rd:1")


@dataclass
class Received:
    """A message as the relay saw it."""

    sender: str
    recipients: list[str]
    data: bytes
    mail_options: list[str]
    peer: str
    used_tls: bool
    authenticated: bool


@dataclass
class RelayHandler:
    """Records everything and answers as scripted.

    ``rcpt_replies`` / ``mail_replies`` map an address to a reply; a reply starting with
    "421" is sent and then the connection is closed. Recipients in ``drop_at_data`` lose
    the connection during DATA with no reply. ``drop_reused_mail`` closes the connection,
    without a reply, when a second MAIL FROM arrives on one session. ``offers_pipelining``
    adds PIPELINING to the EHLO reply (aiosmtpd reads pipelined commands either way).
    """

    rcpt_replies: dict[str, str] = field(default_factory=dict)
    mail_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    drop_at_data: set[str] = field(default_factory=set)
    drop_reused_mail: bool = False
    rcpt_delay_seconds: float = 0.0
    data_delay_seconds: float = 0.0
    messages: list[Received] = field(default_factory=list)
    peers: set[str] = field(default_factory=set)  # one client address:port per connection
    mails_per_peer: dict[str, int] = field(default_factory=dict)
    quits: int = 0
    offers_pipelining: bool = False

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # this hook's duty in aiosmtpd
        if self.offers_pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        peer = str(session.peer)
        self.peers.add(peer)
        mails = self.mails_per_peer.get(peer, 0) + 1
        self.mails_per_peer[peer] = mails
        if self.drop_reused_mail and mails > 1:
            return _drop_connection(server)
        reply = self.mail_replies.get(address)
        if reply is not None:
            return _reply(server, reply)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.rcpt_delay_seconds)
        reply = self.rcpt_replies.get(address)
        if reply is not None:
            return _reply(server, reply)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.data_delay_seconds)
        if self.drop_at_data & set(envelope.rcpt_tos):
            return _drop_connection(server)
        if self.data_reply is not None:
            return _reply(server, self.data_reply)
        self.messages.append(
            Received(
                sender=str(envelope.mail_from),
                recipients=list(envelope.rcpt_tos),
                data=bytes(envelope.original_content or b""),
                mail_options=list(envelope.mail_options),
                peer=str(session.peer),
                used_tls=session.ssl is not None,
                authenticated=bool(session.authenticated),
            )
        )
        # The queue id names the recipient, so tests can check which outcome is whose.
        local_part = envelope.rcpt_tos[0].split("@")[0]
        return f"250 2.0.0 Ok: queued as Q-{local_part}"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.quits += 1
        return "221 Bye"


def _reply(server: SMTP, reply: str) -> str:
    if reply.startswith("421"):
        # Like a relay shutting down: the reply goes out, then the connection closes.
        asyncio.get_running_loop().call_later(0.05, _transport(server).close)
    return reply


def _drop_connection(server: SMTP) -> str:
    # abort, not close: close would still flush the reply returned here.
    _transport(server).abort()
    return "250 never sent"


def _transport(server: SMTP) -> asyncio.Transport:
    transport = server.transport
    assert isinstance(transport, asyncio.Transport)
    return transport


def check_login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    expected = LoginPassword(GOOD_LOGIN[0].encode(), GOOD_LOGIN[1].encode())
    # handled=False: aiosmtpd itself then answers 535 to a failed login.
    return AuthResult(success=auth_data == expected, handled=False)


class Relay:
    """One aiosmtpd server on a fixed free port; ``stop`` kills it, ``start`` brings it back."""

    def __init__(self, handler: RelayHandler, port: int, **server_options: Any) -> None:
        self.handler = handler
        self.port = port
        self._server_options = server_options
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://{RELAY_HOST}:{self.port}"

    def start(self) -> None:
        self._controller = Controller(
            self.handler, hostname=RELAY_HOST, port=self.port, **self._server_options
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((RELAY_HOST, 0))
        return int(probe.getsockname()[1])


StartRelay = Callable[..., Relay]


@pytest.fixture(params=["pipelining", "no_pipelining"])
def start_relay(request: pytest.FixtureRequest) -> Iterator[StartRelay]:
    """``start_relay(handler=None, **aiosmtpd_options)`` starts a relay, stopped after the test.

    Every test that uses it runs twice: once against a relay that offers PIPELINING (the
    client sends MAIL, RCPT and DATA in one write) and once against one that does not.
    """
    relays: list[Relay] = []
    offers_pipelining = request.param == "pipelining"

    def start(handler: RelayHandler | None = None, **server_options: Any) -> Relay:
        handler = handler or RelayHandler()
        handler.offers_pipelining = offers_pipelining
        relay = Relay(handler, free_port(), **server_options)
        relay.start()
        relays.append(relay)
        return relay

    yield start
    for relay in relays:
        relay.stop()


@pytest.fixture(scope="session")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls_context(certificate_authority: trustme.CA) -> ssl.SSLContext:
    """A certificate for 127.0.0.1 that no client trusts unless told to."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert(RELAY_HOST, "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_bundle(certificate_authority: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(path))
    return path
