"""The SMTP session on the wire: pipelining, dot-stuffing, multi-line replies, address checks."""

from __future__ import annotations

import asyncio

import pytest
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
from postroom.transports.smtp_session import dot_stuffed
from tests.transports.conftest import StartRelay, free_port
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


def send_all(relay: ScriptedRelay, items: list[Envelope]) -> list[Outcome]:
    """Send ``items`` one after another over one pooled connection to a scripted relay."""

    async def main() -> list[Outcome]:
        async with running(relay):
            transport = open_transport(relay.url, pool_size=1, timeout_seconds=5.0)
            try:
                return [await transport.send(item) for item in items]
            finally:
                await transport.close()

    return asyncio.run(main())


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
def test_bodies_reach_the_relay_exactly(start_relay: StartRelay, data: bytes) -> None:
    relay = start_relay()

    async def main() -> Outcome:
        transport = open_transport(relay.url, timeout_seconds=5.0)
        try:
            return await transport.send(envelope(data=data))
        finally:
            await transport.close()

    assert isinstance(asyncio.run(main()), Accepted)
    assert relay.handler.messages[0].data == to_wire_format(data)


# --- pipelining ---------------------------------------------------------------------------


def test_with_pipelining_the_envelope_is_one_write_and_the_body_another() -> None:
    relay = ScriptedRelay()

    [outcome] = send_all(relay, [envelope()])

    assert outcome == Accepted("250 2.0.0 Ok: queued as Q1", queue_id="Q1")
    envelope_read = next(read for read in relay.reads if read.startswith(b"MAIL FROM"))
    assert envelope_read == (
        b"MAIL FROM:<bounces@postroom.test> SIZE=22\r\nRCPT TO:<ada@example.test>\r\nDATA\r\n"
    )
    body_read = relay.reads[relay.reads.index(envelope_read) + 1]
    assert body_read == b"Subject: hi\r\n\r\nhello\r\n.\r\n"
    assert relay.messages == [b"Subject: hi\r\n\r\nhello\r\n"]


def test_without_pipelining_one_command_at_a_time() -> None:
    relay = ScriptedRelay(ehlo="250-scripted\r\n250 8BITMIME")

    [outcome] = send_all(relay, [envelope()])

    assert isinstance(outcome, Accepted)
    first = next(n for n, read in enumerate(relay.reads) if read.startswith(b"MAIL FROM"))
    assert relay.reads[first : first + 3] == [
        b"MAIL FROM:<bounces@postroom.test>\r\n",  # no SIZE: not offered
        b"RCPT TO:<ada@example.test>\r\n",
        b"DATA\r\n",
    ]


def test_pipelined_rcpt_refusal_is_reported_and_the_connection_stays_usable() -> None:
    relay = ScriptedRelay(
        replies={
            "RCPT": ["550 5.1.1 <gone@example.test>: Recipient address rejected"],
            "DATA": ["554 5.5.1 Error: no valid recipients"],
        }
    )

    refused, accepted = send_all(relay, [envelope("gone@example.test"), envelope()])

    assert refused == Permanent(
        "550 5.1.1 <gone@example.test>: Recipient address rejected", code=550
    )
    assert accepted == Accepted("250 2.0.0 Ok: queued as Q1", queue_id="Q1")
    assert relay.connections == 1
    assert relay.commands[relay.commands.index("DATA") + 1] == "RSET"
    assert len(relay.messages) == 1


def test_pipelined_mail_refusal_decides_even_when_later_replies_differ() -> None:
    relay = ScriptedRelay(
        replies={
            "MAIL": ["553 5.7.1 Sender not allowed"],
            "RCPT": ["503 5.5.1 Error: need MAIL command"],
            "DATA": ["503 5.5.1 Error: need RCPT command"],
        }
    )

    refused, accepted = send_all(relay, [envelope(), envelope()])

    assert refused == Permanent("553 5.7.1 Sender not allowed", code=553)
    assert isinstance(accepted, Accepted)
    assert relay.connections == 1


def test_a_relay_that_wants_a_body_after_refusing_the_recipient_gets_an_empty_one() -> None:
    relay = ScriptedRelay(
        replies={"RCPT": ["550 5.1.1 No such user"], ".": ["554 5.5.1 No valid recipients"]}
    )

    refused, accepted = send_all(relay, [envelope("gone@example.test"), envelope()])

    assert refused == Permanent("550 5.1.1 No such user", code=550)
    assert isinstance(accepted, Accepted)
    assert relay.messages[0] == b""  # the empty body that ended the refused DATA
    assert relay.connections == 1


def test_a_421_to_mail_on_a_reused_connection_is_replaced_without_loss() -> None:
    relay = ScriptedRelay(replies={"MAIL": ["250 2.1.0 Ok", "421 4.4.2 Idle timeout"]})

    outcomes = send_all(relay, [envelope("a@example.test"), envelope("b@example.test")])

    assert all(isinstance(outcome, Accepted) for outcome in outcomes)
    assert relay.connections == 2
    assert len(relay.messages) == 2


# --- replies ------------------------------------------------------------------------------


def test_multi_line_refusal_keeps_every_line() -> None:
    relay = ScriptedRelay(
        replies={
            "RCPT": [
                "550-5.1.1 The email account that you tried to reach\r\n550 5.1.1 does not exist"
            ],
            "DATA": ["554 5.5.1 Error: no valid recipients"],
        }
    )

    [refused] = send_all(relay, [envelope()])

    assert refused == Permanent(
        "550 5.1.1 The email account that you tried to reach\n5.1.1 does not exist", code=550
    )


def test_multi_line_greeting_and_extensions() -> None:
    relay = ScriptedRelay(
        greeting="220-relay.test ESMTP\r\n220-no UCE\r\n220 welcome",
        ehlo="250-relay.test\r\n250-size 4096\r\n250-AUTH=LOGIN\r\n250-SMTPUTF8\r\n250 8bitmime",
    )

    [outcome] = send_all(
        relay, [envelope("jos\u00e9@example.test", data="Subject: é\r\n\r\n".encode())]
    )

    assert isinstance(outcome, Accepted)
    mail = next(command for command in relay.commands if command.startswith("MAIL FROM"))
    assert mail == "MAIL FROM:<bounces@postroom.test> SIZE=15 BODY=8BITMIME SMTPUTF8"


def test_ehlo_refused_falls_back_to_helo() -> None:
    relay = ScriptedRelay(replies={"EHLO": ["502 5.5.2 Error: command not recognized"]})

    [outcome] = send_all(relay, [envelope()])

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
def test_a_relay_that_does_not_speak_smtp_is_transport_level(replies: dict[str, str]) -> None:
    relay = ScriptedRelay(**replies)  # type: ignore[arg-type]

    [outcome] = send_all(relay, [envelope()])

    assert isinstance(outcome, Transient)
    assert outcome.transport_level
    assert relay.messages == []


def test_garbage_instead_of_a_reply_to_mail_is_transport_level() -> None:
    relay = ScriptedRelay(replies={"MAIL": ["250 ok", "?!"]})

    first, garbled, after = send_all(relay, [envelope(), envelope(), envelope()])

    assert isinstance(first, Accepted)
    assert isinstance(garbled, Transient)
    assert garbled.transport_level
    assert isinstance(after, Accepted)
    assert relay.connections == 2


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
