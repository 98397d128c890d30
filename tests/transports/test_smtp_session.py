"""The SMTP session on the wire: pipelining, dot-stuffing, multi-line replies, address checks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
import uvloop
from hypothesis import given
from hypothesis import strategies as st

from postroom.transports import open_transport
from postroom.transports.base import (
    Accepted,
    Envelope,
    Outcome,
    Permanent,
    Transient,
    Transport,
    to_wire_format,
)
from postroom.transports.smtp_replies import parse_extensions
from postroom.transports.smtp_session import dot_stuffed
from tests.transports.conftest import GOOD_LOGIN, StartRelay, check_login, free_port
from tests.transports.scripted_relay import ScriptedRelay, running


def envelope(
    recipient: str = "ada@example.test",
    data: bytes = b"Subject: hi\r\n\r\nhello\r\n",
    **fields: str,
) -> Envelope:
    return Envelope(
        sender=fields.get("sender", "bounces@postroom.test"),
        recipient=recipient,
        data=data,
        message_id="m@postroom.test",
    )


T = TypeVar("T")
RunLoop = Callable[[Coroutine[Any, Any, T]], T]


@pytest.fixture(params=["asyncio", "uvloop"])
def run_loop(request: pytest.FixtureRequest) -> RunLoop[Any]:
    """Runs a coroutine on a fresh event loop: the standard one, or uvloop (the worker's)."""
    factory = uvloop.new_event_loop if request.param == "uvloop" else None

    def run(coroutine: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(coroutine)

    return run


def send_all(run_loop: RunLoop[Any], relay: ScriptedRelay, items: list[Envelope]) -> list[Outcome]:
    """Send ``items`` one after another over one pooled connection to a scripted relay."""

    async def main() -> list[Outcome]:
        async with running(relay):
            transport = open_transport(relay.url, pool_size=1, timeout_seconds=5.0)
            try:
                return [await transport.send(item) for item in items]
            finally:
                await transport.close()

    outcomes: list[Outcome] = run_loop(main())
    return outcomes


def unstuffed(body: bytes) -> bytes:
    """What a receiver makes of a DATA body (RFC 5321 4.5.2), checking its terminator."""
    assert body.endswith(b"\r\n.\r\n") or body == b".\r\n"
    lines = body[: -len(b".\r\n")].split(b"\r\n")
    assert lines.pop() == b""
    assert b"." not in lines  # no line of the body may end it early
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)


# --- dot-stuffing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "body"),
    [
        (b"hello\r\n", b"hello\r\n.\r\n"),
        (b".leading\r\n", b"..leading\r\n.\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r\n..two\r\n", b"a\r\n...two\r\n.\r\n"),
        (b"no final line ending", b"no final line ending\r\n.\r\n"),
        (b"a\r\n.", b"a\r\n..\r\n.\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b"", b".\r\n"),
        (b"mid.dot and .x\r\n", b"mid.dot and .x\r\n.\r\n"),
    ],
)
def test_dot_stuffing(wire: bytes, body: bytes) -> None:
    assert dot_stuffed(wire) == body


@given(st.lists(st.sampled_from([b"", b".", b"..", b".x", b"x.", b"a", b" .", b"\xc3\xa9."])))
def test_dot_stuffing_is_undone_by_the_receiver(lines: list[bytes]) -> None:
    wire = b"".join(line + b"\r\n" for line in lines)

    assert unstuffed(dot_stuffed(wire)) == wire


@pytest.mark.parametrize(
    "data",
    [
        b".first line starts with a dot\r\nsecond\r\n",
        b"Subject: x\r\n\r\nno final line ending",
        b"Subject: x\r\n\r\na lone dot follows\r\n.\r\nand more\r\n",
        b"Subject: x\r\n\r\nends with a lone dot\r\n.",
        b"Subject: x\r\n\r\n..\r\n...\r\n. \r\n",
        b".",
    ],
)
def test_bodies_reach_the_relay_exactly(
    start_relay: StartRelay, run_loop: RunLoop[Any], data: bytes
) -> None:
    relay = start_relay()

    async def main() -> Outcome:
        transport = open_transport(relay.url, timeout_seconds=5.0)
        try:
            return await transport.send(envelope(data=data))
        finally:
            await transport.close()

    assert isinstance(run_loop(main()), Accepted)
    assert relay.handler.messages[0].data == to_wire_format(data)


# --- pipelining ---------------------------------------------------------------------------


def test_with_pipelining_the_envelope_is_one_write_and_the_body_another(
    run_loop: RunLoop[Any],
) -> None:
    relay = ScriptedRelay()

    [outcome] = send_all(run_loop, relay, [envelope()])

    assert outcome == Accepted("250 2.0.0 Ok: queued as Q1", queue_id="Q1")
    envelope_read = next(read for read in relay.reads if read.startswith(b"MAIL FROM"))
    assert envelope_read == (
        b"MAIL FROM:<bounces@postroom.test> SIZE=22\r\nRCPT TO:<ada@example.test>\r\nDATA\r\n"
    )
    body_read = relay.reads[relay.reads.index(envelope_read) + 1]
    assert body_read == b"Subject: hi\r\n\r\nhello\r\n.\r\n"
    assert relay.messages == [b"Subject: hi\r\n\r\nhello\r\n"]


def test_without_pipelining_one_command_at_a_time(run_loop: RunLoop[Any]) -> None:
    relay = ScriptedRelay(ehlo="250-scripted\r\n250 8BITMIME")

    [outcome] = send_all(run_loop, relay, [envelope()])

    assert isinstance(outcome, Accepted)
    first = next(n for n, read in enumerate(relay.reads) if read.startswith(b"MAIL FROM"))
    assert relay.reads[first : first + 3] == [
        b"MAIL FROM:<bounces@postroom.test>\r\n",  # no SIZE: not offered
        b"RCPT TO:<ada@example.test>\r\n",
        b"DATA\r\n",
    ]


def test_pipelined_rcpt_refusal_is_reported_and_the_connection_stays_usable(
    run_loop: RunLoop[Any],
) -> None:
    relay = ScriptedRelay(
        replies={
            "RCPT": ["550 5.1.1 <gone@example.test>: Recipient address rejected"],
            "DATA": ["554 5.5.1 Error: no valid recipients"],
        }
    )

    refused, accepted = send_all(run_loop, relay, [envelope("gone@example.test"), envelope()])

    assert refused == Permanent(
        "550 5.1.1 <gone@example.test>: Recipient address rejected", code=550
    )
    assert accepted == Accepted("250 2.0.0 Ok: queued as Q1", queue_id="Q1")
    assert relay.connections == 1
    assert relay.commands[relay.commands.index("DATA") + 1] == "RSET"
    assert len(relay.messages) == 1


def test_pipelined_mail_refusal_decides_even_when_later_replies_differ(
    run_loop: RunLoop[Any],
) -> None:
    relay = ScriptedRelay(
        replies={
            "MAIL": ["553 5.7.1 Sender not allowed"],
            "RCPT": ["503 5.5.1 Error: need MAIL command"],
            "DATA": ["503 5.5.1 Error: need RCPT command"],
        }
    )

    refused, accepted = send_all(run_loop, relay, [envelope(), envelope()])

    assert refused == Permanent("553 5.7.1 Sender not allowed", code=553)
    assert isinstance(accepted, Accepted)
    assert relay.connections == 1


def test_a_relay_that_wants_a_body_after_refusing_the_recipient_gets_an_empty_one(
    run_loop: RunLoop[Any],
) -> None:
    relay = ScriptedRelay(
        replies={"RCPT": ["550 5.1.1 No such user"], ".": ["554 5.5.1 No valid recipients"]}
    )

    refused, accepted = send_all(run_loop, relay, [envelope("gone@example.test"), envelope()])

    assert refused == Permanent("550 5.1.1 No such user", code=550)
    assert isinstance(accepted, Accepted)
    assert relay.messages[0] == b""  # the empty body that ended the refused DATA
    assert relay.connections == 1


def test_a_421_to_mail_on_a_reused_connection_is_replaced_without_loss(
    run_loop: RunLoop[Any],
) -> None:
    relay = ScriptedRelay(replies={"MAIL": ["250 2.1.0 Ok", "421 4.4.2 Idle timeout"]})

    outcomes = send_all(run_loop, relay, [envelope("a@example.test"), envelope("b@example.test")])

    assert all(isinstance(outcome, Accepted) for outcome in outcomes)
    assert relay.connections == 2
    assert len(relay.messages) == 2


# --- replies ------------------------------------------------------------------------------


def test_multi_line_refusal_keeps_every_line(run_loop: RunLoop[Any]) -> None:
    relay = ScriptedRelay(
        replies={
            "RCPT": [
                "550-5.1.1 The email account that you tried to reach\r\n550 5.1.1 does not exist"
            ],
            "DATA": ["554 5.5.1 Error: no valid recipients"],
        }
    )

    [refused] = send_all(run_loop, relay, [envelope()])

    assert refused == Permanent(
        "550 5.1.1 The email account that you tried to reach\n5.1.1 does not exist", code=550
    )


def test_multi_line_greeting_and_extensions(run_loop: RunLoop[Any]) -> None:
    relay = ScriptedRelay(
        greeting="220-relay.test ESMTP\r\n220-no UCE\r\n220 welcome",
        ehlo="250-relay.test\r\n250-size 4096\r\n250-AUTH=LOGIN\r\n250-SMTPUTF8\r\n250 8bitmime",
    )

    [outcome] = send_all(
        run_loop, relay, [envelope("jos\u00e9@example.test", data="Subject: é\r\n\r\n".encode())]
    )

    assert isinstance(outcome, Accepted)
    mail = next(command for command in relay.commands if command.startswith("MAIL FROM"))
    assert mail == "MAIL FROM:<bounces@postroom.test> SIZE=15 BODY=8BITMIME SMTPUTF8"


def test_ehlo_refused_falls_back_to_helo(run_loop: RunLoop[Any]) -> None:
    relay = ScriptedRelay(replies={"EHLO": ["502 5.5.2 Error: command not recognized"]})

    [outcome] = send_all(run_loop, relay, [envelope()])

    assert isinstance(outcome, Accepted)
    assert relay.commands[1].startswith("HELO ")
    assert "MAIL FROM:<bounces@postroom.test>" in relay.commands  # no extensions after HELO


@pytest.mark.parametrize(
    "replies",
    [
        {"greeting": "hello, I am not SMTP"},
        {"greeting": "554 5.3.2 No service"},
        {"ehlo": "250-relay.test\r\nnot a reply line"},
    ],
)
def test_a_relay_that_does_not_speak_smtp_is_transport_level(
    run_loop: RunLoop[Any], replies: dict[str, str]
) -> None:
    relay = ScriptedRelay(**replies)  # type: ignore[arg-type]

    [outcome] = send_all(run_loop, relay, [envelope()])

    assert isinstance(outcome, Transient)
    assert outcome.transport_level
    assert relay.messages == []


def test_garbage_instead_of_a_reply_to_mail_is_transport_level(run_loop: RunLoop[Any]) -> None:
    relay = ScriptedRelay(replies={"MAIL": ["250 ok", "?!"]})

    first, garbled, after = send_all(run_loop, relay, [envelope(), envelope(), envelope()])

    assert isinstance(first, Accepted)
    assert isinstance(garbled, Transient)
    assert garbled.transport_level
    assert isinstance(after, Accepted)
    assert relay.connections == 2


# --- TLS, AUTH and timeouts on both event loops --------------------------------------------


def send_one(run_loop: RunLoop[Any], url: str, item: Envelope) -> Outcome:
    async def main() -> Outcome:
        transport = open_transport(url, timeout_seconds=5.0)
        try:
            return await transport.send(item)
        finally:
            await transport.close()

    outcome: Outcome = run_loop(main())
    return outcome


def test_starttls_and_auth(
    start_relay: StartRelay, run_loop: RunLoop[Any], server_tls_context: object
) -> None:
    relay = start_relay(
        tls_context=server_tls_context, authenticator=check_login, auth_required=True
    )
    user, password = (quote(part, safe="") for part in GOOD_LOGIN)
    url = relay.url.replace("smtp://", f"smtp://{user}:{password}@") + "?tls=starttls&verify=false"

    outcome = send_one(run_loop, url, envelope())

    assert isinstance(outcome, Accepted)
    [received] = relay.handler.messages
    assert received.used_tls
    assert received.authenticated


def test_auth_login_when_plain_is_not_offered(
    start_relay: StartRelay, run_loop: RunLoop[Any], server_tls_context: object
) -> None:
    relay = start_relay(
        tls_context=server_tls_context,
        authenticator=check_login,
        auth_required=True,
        auth_exclude_mechanism=["PLAIN"],
    )
    user, password = (quote(part, safe="") for part in GOOD_LOGIN)
    url = relay.url.replace("smtp://", f"smtp://{user}:{password}@") + "?tls=starttls&verify=false"

    outcome = send_one(run_loop, url, envelope())

    assert isinstance(outcome, Accepted)
    assert relay.handler.messages[0].authenticated


def test_implicit_tls_verified_against_trusted_roots(
    start_relay: StartRelay,
    run_loop: RunLoop[Any],
    server_tls_context: object,
    ca_bundle: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_bundle))
    relay = start_relay(ssl_context=server_tls_context)

    outcome = send_one(run_loop, f"{relay.url}?tls=implicit", envelope())

    assert isinstance(outcome, Accepted)  # the relay speaks nothing but TLS


def test_untrusted_certificate_is_refused(
    start_relay: StartRelay, run_loop: RunLoop[Any], server_tls_context: object
) -> None:
    relay = start_relay(ssl_context=server_tls_context)

    outcome = send_one(run_loop, f"{relay.url}?tls=implicit", envelope())

    assert isinstance(outcome, Transient)
    assert outcome.transport_level
    assert "certificate" in outcome.reason.lower()
    assert relay.handler.messages == []


def test_no_reply_in_time_is_transport_level(run_loop: RunLoop[Any]) -> None:
    async def main() -> Outcome:
        silent = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        transport = open_transport(f"smtp://127.0.0.1:{port}?tls=none", timeout_seconds=0.2)
        try:
            return await transport.send(envelope())
        finally:
            await transport.close()
            silent.close()

    outcome = run_loop(main())

    assert isinstance(outcome, Transient)
    assert outcome.transport_level
    assert "timed out" in outcome.reason


def test_extensions_from_an_ehlo_reply() -> None:
    lines = ["mx.example", "PIPELINING", "SIZE 10240000", "AUTH PLAIN LOGIN", "AUTH=LOGIN XOAUTH2"]
    text = "\n".join([*lines, "8bitmime"])

    assert parse_extensions(text) == {
        "pipelining": "",
        "size": "10240000",
        "auth": "PLAIN LOGIN LOGIN XOAUTH2",
        "8bitmime": "",
    }


# --- envelope addresses -------------------------------------------------------------------


def outcome_without_relay(item: Envelope) -> Outcome:
    """Send to a closed port: an address problem shows before any connection is tried."""

    async def main() -> Outcome:
        transport: Transport = open_transport(f"smtp://127.0.0.1:{free_port()}?tls=none")
        try:
            return await transport.send(item)
        finally:
            await transport.close()

    return asyncio.run(main())


@pytest.mark.parametrize(
    "address",
    [
        "ada@example.test",
        "ada.lovelace+news=1@mail.example.test",
        "o'brien@example.test",
        '"john doe"@example.test',
        '"a\\"b"@example.test',
        "jos\u00e9@b\u00fccher.example",
        "ada@[127.0.0.1]",
        "ada@localhost",
    ],
)
def test_bare_mailboxes_are_accepted(address: str) -> None:
    for item in (envelope(address), envelope(sender=address)):
        outcome = outcome_without_relay(item)

        assert isinstance(outcome, Transient)  # it went as far as connecting
        assert outcome.transport_level


@pytest.mark.parametrize(
    "address",
    [
        "<ada@example.test>",
        "ada@example.test>",
        "ada@example.test> SIZE=1",
        "ada@example.test\r\nRCPT TO:<eve@evil.test>",
        "ada@example.test\n",
        "ada@example.test\u2028",
        "ada@example.test\x00",
        "ada@example.test, eve@evil.test",
        "ada@example.test,eve@evil.test",
        "ada@example.test (Ada)",
        "Ada <ada@example.test>",
        "ada lovelace@example.test",
        "ada@exam ple.test",
        '"ada\r\n"@example.test',
        "ada",
        "ada@",
        "@example.test",
        "ada@@example.test",
        "ada..l@example.test",
        "ada@example..test",
        "ada@-example.test",
        "ada@[127.0.0.1",
        "ada@\u00a0example.test",
    ],
)
def test_anything_but_one_bare_mailbox_is_refused(address: str) -> None:
    for item in (envelope(address), envelope(sender=address)):
        outcome = outcome_without_relay(item)

        assert isinstance(outcome, Permanent)
        assert outcome.reason.startswith("invalid_address")


def test_only_the_sender_may_be_null() -> None:
    assert isinstance(outcome_without_relay(envelope(sender="")), Transient)
    assert isinstance(outcome_without_relay(envelope("")), Permanent)
