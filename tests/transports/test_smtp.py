"""SmtpTransport against real aiosmtpd relays on 127.0.0.1: delivery, refusals, pool, TLS, AUTH."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import pytest

from postroom.errors import ConfigError
from postroom.transports import open_transport
from postroom.transports.base import Accepted, Envelope, Outcome, Permanent, Transient
from postroom.transports.smtp import SmtpTransport, classify_reply
from postroom.transports.smtp_settings import SmtpSettings, TlsMode
from tests.transports.conftest import GOOD_LOGIN, RelayHandler, StartRelay, check_login, free_port

T = TypeVar("T")


def run(transport: SmtpTransport, body: Callable[[SmtpTransport], Awaitable[T]]) -> T:
    """Run ``body`` on a fresh event loop and always close the transport."""

    async def main() -> T:
        try:
            return await body(transport)
        finally:
            await transport.close()

    return asyncio.run(main())


def smtp(url: str, *, pool_size: int = 4, timeout_seconds: float = 5.0) -> SmtpTransport:
    transport = open_transport(url, pool_size=pool_size, timeout_seconds=timeout_seconds)
    assert isinstance(transport, SmtpTransport)
    return transport


def envelope(recipient: str = "ada@example.test", **overrides: object) -> Envelope:
    local_part = recipient.split("@")[0]
    data = (
        f"From: Postroom <news@postroom.test>\r\nTo: {recipient}\r\n"
        f"Subject: Hello {local_part}\r\nMessage-ID: <{local_part}@postroom.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        # Leading dots and a lone dot must survive dot-stuffing unchanged.
        ".leading dot\r\n..two dots\r\n.\r\nGrüße, the end\r\n"
    ).encode()
    fields: dict[str, object] = {
        "sender": "bounces@postroom.test",
        "recipient": recipient,
        "data": data,
        "message_id": f"{local_part}@postroom.test",
    }
    fields.update(overrides)
    return Envelope(**fields)  # type: ignore[arg-type]


def send_one(transport: SmtpTransport, item: Envelope) -> Outcome:
    return run(transport, lambda t: t.send(item))


# --- delivery ---------------------------------------------------------------------------


def test_delivers_the_exact_bytes_and_envelope(start_relay: StartRelay) -> None:
    relay = start_relay()
    sent = envelope()

    outcome = send_one(smtp(relay.url), sent)

    assert outcome == Accepted("250 2.0.0 Ok: queued as Q-ada", queue_id="Q-ada")
    [received] = relay.handler.messages
    assert received.data == sent.data
    assert (received.sender, received.recipients) == (sent.sender, [sent.recipient])
    assert f"SIZE={len(sent.data)}" in received.mail_options
    assert "BODY=8BITMIME" in received.mail_options


@pytest.mark.parametrize(
    ("reply", "queue_id"),
    [
        ("250 2.0.0 Ok: queued as 4XyZ12AbC", "4XyZ12AbC"),
        ("250 OK id=1tXyZ-000Abc-3D", "1tXyZ-000Abc-3D"),
        ("250 2.0.0 OK  1700000000 abc123.4 - gsmtp", None),
    ],
)
def test_queue_id_is_taken_from_the_reply(
    start_relay: StartRelay, reply: str, queue_id: str | None
) -> None:
    relay = start_relay(RelayHandler(data_reply=reply))

    outcome = send_one(smtp(relay.url), envelope())

    assert outcome == Accepted(reply, queue_id=queue_id)


def test_bare_line_feeds_reach_the_relay_as_crlf(start_relay: StartRelay) -> None:
    relay = start_relay()

    send_one(smtp(relay.url), envelope(data=b"Subject: lf\n\nline one\nline two"))

    assert relay.handler.messages[0].data == b"Subject: lf\r\n\r\nline one\r\nline two\r\n"


def test_null_sender_is_allowed(start_relay: StartRelay) -> None:
    relay = start_relay()

    outcome = send_one(smtp(relay.url), envelope(sender=""))

    assert isinstance(outcome, Accepted)
    assert relay.handler.messages[0].sender == "<>"  # how aiosmtpd spells the null sender


def test_pool_sends_fifty_messages_over_at_most_pool_size_connections(
    start_relay: StartRelay,
) -> None:
    relay = start_relay()
    items = [envelope(f"r{number}@example.test") for number in range(50)]

    outcomes = run(smtp(relay.url, pool_size=3), lambda t: t.send_many(items))

    assert [outcome.queue_id for outcome in outcomes] == [  # type: ignore[union-attr]
        f"Q-r{number}" for number in range(50)
    ]
    assert len(relay.handler.messages) == 50
    assert 1 <= len(relay.handler.peers) <= 3
    assert relay.handler.quits == len(relay.handler.peers)


def test_send_many_keeps_input_order_with_mixed_outcomes(start_relay: StartRelay) -> None:
    handler = RelayHandler(
        rcpt_replies={
            "gone@example.test": "550 5.1.1 No such user",
            "busy@example.test": "451 4.2.0 Try later",
        }
    )
    relay = start_relay(handler)
    names = ["a", "gone", "b", "busy", "c", "gone", "d"]
    items = [envelope(f"{name}@example.test") for name in names]

    outcomes = run(smtp(relay.url, pool_size=2), lambda t: t.send_many(items))

    kinds = [type(outcome).__name__ for outcome in outcomes]
    assert kinds == [
        "Accepted", "Permanent", "Accepted", "Transient", "Accepted", "Permanent", "Accepted"
    ]  # fmt: skip
    assert [o.queue_id for o in outcomes if isinstance(o, Accepted)] == ["Q-a", "Q-b", "Q-c", "Q-d"]


# --- refusals -----------------------------------------------------------------------------


def test_rcpt_550_is_permanent_and_the_connection_is_reused(start_relay: StartRelay) -> None:
    relay = start_relay(RelayHandler(rcpt_replies={"gone@example.test": "550 5.1.1 No such user"}))

    async def body(transport: SmtpTransport) -> list[Outcome]:
        return [
            await transport.send(envelope("gone@example.test")),
            await transport.send(envelope("ada@example.test")),
        ]

    refused, accepted = run(smtp(relay.url), body)

    assert refused == Permanent("550 5.1.1 No such user", code=550)
    assert isinstance(accepted, Accepted)
    assert len(relay.handler.peers) == 1


def test_rcpt_451_is_transient_for_this_recipient_only(start_relay: StartRelay) -> None:
    relay = start_relay(RelayHandler(rcpt_replies={"busy@example.test": "451 4.2.0 Mailbox busy"}))

    outcome = send_one(smtp(relay.url), envelope("busy@example.test"))

    assert outcome == Transient("451 4.2.0 Mailbox busy", code=451, transport_level=False)


def test_mail_from_553_is_permanent(start_relay: StartRelay) -> None:
    relay = start_relay(
        RelayHandler(mail_replies={"bad@postroom.test": "553 5.7.1 Sender not allowed"})
    )

    outcome = send_one(smtp(relay.url), envelope(sender="bad@postroom.test"))

    assert outcome == Permanent("553 5.7.1 Sender not allowed", code=553)


def test_data_552_is_permanent(start_relay: StartRelay) -> None:
    relay = start_relay(RelayHandler(data_reply="552 5.3.4 Message too big"))

    outcome = send_one(smtp(relay.url), envelope())

    assert outcome == Permanent("552 5.3.4 Message too big", code=552)


def test_421_is_transport_level_and_the_next_send_reconnects(start_relay: StartRelay) -> None:
    relay = start_relay(
        RelayHandler(rcpt_replies={"closing@example.test": "421 4.3.2 Shutting down"})
    )

    async def body(transport: SmtpTransport) -> list[Outcome]:
        return [
            await transport.send(envelope("closing@example.test")),
            await transport.send(envelope("ada@example.test")),
        ]

    refused, accepted = run(smtp(relay.url), body)

    assert refused == Transient("421 4.3.2 Shutting down", code=421, transport_level=True)
    assert isinstance(accepted, Accepted)
    assert len(relay.handler.peers) == 2


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (250, Transient("unexpected reply 250 x", code=250, transport_level=True)),
        (421, Transient("421 x", code=421, transport_level=True)),
        (450, Transient("450 x", code=450)),
        (452, Transient("452 x", code=452)),
        (530, Transient("530 x", code=530, transport_level=True)),
        (550, Permanent("550 x", code=550)),
        (554, Permanent("554 x", code=554)),
    ],
)
def test_classify_reply(code: int, expected: Outcome) -> None:
    assert classify_reply(code, "x") == expected


def test_a_throttling_reply_asks_to_slow_down() -> None:
    message = "Throttling failure: Maximum sending rate exceeded."
    assert classify_reply(454, message) == Transient(f"454 {message}", code=454, throttled=True)
    assert classify_reply(454, "4.7.0 TLS not available") == Transient(
        "454 4.7.0 TLS not available", code=454
    )


def test_smtputf8_unsupported_is_permanent_and_keeps_the_connection(
    start_relay: StartRelay,
) -> None:
    relay = start_relay(enable_SMTPUTF8=False)

    async def body(transport: SmtpTransport) -> list[Outcome]:
        return [
            await transport.send(envelope("jos\u00e9@example.test")),
            await transport.send(envelope("ada@example.test", needs_smtputf8=True)),
            await transport.send(envelope("ada@example.test")),
        ]

    implicit, flagged, plain = run(smtp(relay.url), body)

    assert implicit == Permanent("smtputf8_unsupported")
    assert flagged == Permanent("smtputf8_unsupported")
    assert isinstance(plain, Accepted)
    assert len(relay.handler.peers) == 1


def test_smtputf8_is_used_when_offered(start_relay: StartRelay) -> None:
    relay = start_relay()

    outcome = send_one(smtp(relay.url), envelope("jos\u00e9@example.test", needs_smtputf8=True))

    assert isinstance(outcome, Accepted)
    [received] = relay.handler.messages
    assert received.recipients == ["jos\u00e9@example.test"]
    assert "SMTPUTF8" in received.mail_options


@pytest.mark.parametrize(
    "address",
    ["ada@example.test>\r\nRCPT TO:<eve@evil.test", "Ada <ada@example.test>", " ada@example.test"],
)
def test_an_address_that_is_not_a_bare_mailbox_is_permanent(
    start_relay: StartRelay, address: str
) -> None:
    relay = start_relay()

    recipient_outcome = send_one(smtp(relay.url), envelope(address))
    sender_outcome = send_one(smtp(relay.url), envelope(sender=address))

    for outcome in (recipient_outcome, sender_outcome):
        assert isinstance(outcome, Permanent)
        assert outcome.reason.startswith("invalid_address")
    assert relay.handler.peers == set()


# --- connection trouble -------------------------------------------------------------------


def test_connection_refused_is_transport_level() -> None:
    outcome = send_one(smtp(f"smtp://127.0.0.1:{free_port()}"), envelope())

    assert isinstance(outcome, Transient)
    assert outcome.transport_level


def test_connection_lost_during_data_is_transport_level_and_never_reused(
    start_relay: StartRelay,
) -> None:
    relay = start_relay(RelayHandler(drop_at_data={"doomed@example.test"}))

    async def body(transport: SmtpTransport) -> list[Outcome]:
        return [
            await transport.send(envelope("ada@example.test")),
            await transport.send(envelope("doomed@example.test")),
            await transport.send(envelope("bob@example.test")),
        ]

    first, lost, after = run(smtp(relay.url), body)

    assert isinstance(first, Accepted)
    assert isinstance(lost, Transient)
    assert lost.transport_level
    assert "DATA" in lost.reason
    assert isinstance(after, Accepted)
    assert len(relay.handler.peers) == 2
    assert [m.recipients for m in relay.handler.messages] == [
        ["ada@example.test"],
        ["bob@example.test"],
    ]


def test_timeout_is_transport_level(start_relay: StartRelay) -> None:
    relay = start_relay(RelayHandler(rcpt_delay_seconds=2.0))

    started = time.monotonic()
    outcome = send_one(smtp(relay.url, timeout_seconds=0.3), envelope())

    assert isinstance(outcome, Transient)
    assert outcome.transport_level
    assert time.monotonic() - started < 1.9


def test_killed_relay_is_transport_level_and_the_next_send_reconnects(
    start_relay: StartRelay,
) -> None:
    relay = start_relay()

    async def body(transport: SmtpTransport) -> list[Outcome]:
        before = await transport.send(envelope("a@example.test"))
        relay.stop()
        during = await transport.send(envelope("b@example.test"))
        relay.start()
        after = await transport.send(envelope("c@example.test"))
        return [before, during, after]

    before, during, after = run(smtp(relay.url), body)

    assert isinstance(before, Accepted)
    assert isinstance(during, Transient)
    assert during.transport_level
    assert isinstance(after, Accepted)
    assert [m.recipients for m in relay.handler.messages] == [
        ["a@example.test"],
        ["c@example.test"],
    ]


def test_a_dead_pooled_connection_is_replaced_before_anything_is_sent(
    start_relay: StartRelay,
) -> None:
    # The relay drops a session at its second MAIL FROM, as a relay's idle timeout would.
    relay = start_relay(RelayHandler(drop_reused_mail=True))

    async def body(transport: SmtpTransport) -> list[Outcome]:
        return [await transport.send(envelope(f"r{n}@example.test")) for n in range(3)]

    outcomes = run(smtp(relay.url), body)

    assert all(isinstance(outcome, Accepted) for outcome in outcomes)
    assert [m.recipients for m in relay.handler.messages] == [
        [f"r{n}@example.test"] for n in range(3)
    ]
    assert len(relay.handler.peers) == 3


def test_reconnects_after_messages_per_connection(start_relay: StartRelay) -> None:
    relay = start_relay()
    settings = replace(
        SmtpSettings.from_url(relay.url, pool_size=1, timeout_seconds=5.0),
        messages_per_connection=3,
    )

    async def body(transport: SmtpTransport) -> list[Outcome]:
        return [await transport.send(envelope(f"r{n}@example.test")) for n in range(7)]

    outcomes = run(SmtpTransport(settings), body)

    assert all(isinstance(outcome, Accepted) for outcome in outcomes)
    assert len(relay.handler.peers) == 3
    assert relay.handler.quits == 3


def test_a_connection_idle_too_long_is_quit_and_replaced(start_relay: StartRelay) -> None:
    relay = start_relay()
    settings = replace(
        SmtpSettings.from_url(relay.url, pool_size=1, timeout_seconds=5.0),
        idle_seconds_before_reopen=0.0,
    )

    async def body(transport: SmtpTransport) -> list[Outcome]:
        return [await transport.send(envelope(f"r{n}@example.test")) for n in range(3)]

    outcomes = run(SmtpTransport(settings), body)

    assert all(isinstance(outcome, Accepted) for outcome in outcomes)
    assert len(relay.handler.peers) == relay.handler.quits == 3


def test_a_connection_the_relay_timed_out_is_replaced(start_relay: StartRelay) -> None:
    relay = start_relay(timeout=0.2)  # aiosmtpd says 421 and hangs up after 0.2 s idle

    async def body(transport: SmtpTransport) -> list[Outcome]:
        first = await transport.send(envelope("a@example.test"))
        await asyncio.sleep(0.5)
        return [first, await transport.send(envelope("b@example.test"))]

    outcomes = run(smtp(relay.url), body)

    assert all(isinstance(outcome, Accepted) for outcome in outcomes)
    assert len(relay.handler.peers) == 2


def test_close_lets_in_flight_sends_finish_then_quits(start_relay: StartRelay) -> None:
    relay = start_relay(RelayHandler(data_delay_seconds=0.2))
    transport = smtp(relay.url, pool_size=2)

    async def main() -> tuple[int, list[Outcome], Outcome]:
        sending = asyncio.create_task(
            transport.send_many([envelope(f"r{n}@example.test") for n in range(4)])
        )
        await asyncio.sleep(0.1)  # two sends in DATA, two waiting for a connection
        await transport.close()
        delivered_when_closed = len(relay.handler.messages)
        return delivered_when_closed, await sending, await transport.send(envelope())

    delivered_when_closed, in_flight, after_close = asyncio.run(main())

    assert delivered_when_closed == 4
    assert all(isinstance(outcome, Accepted) for outcome in in_flight)
    assert after_close == Transient("transport_closed", transport_level=True)
    assert relay.handler.quits == len(relay.handler.peers) == 2


# --- TLS and AUTH -------------------------------------------------------------------------


def test_required_starttls_is_used(start_relay: StartRelay, server_tls_context: object) -> None:
    relay = start_relay(tls_context=server_tls_context, require_starttls=True)

    outcome = send_one(smtp(f"{relay.url}?tls=starttls&verify=false"), envelope())

    assert isinstance(outcome, Accepted)
    assert relay.handler.messages[0].used_tls


def test_offered_starttls_is_used_by_default(
    start_relay: StartRelay, server_tls_context: object
) -> None:
    relay = start_relay(tls_context=server_tls_context)

    outcome = send_one(smtp(f"{relay.url}?verify=false"), envelope())

    assert isinstance(outcome, Accepted)
    assert relay.handler.messages[0].used_tls


def test_tls_none_stays_plain_even_when_starttls_is_offered(
    start_relay: StartRelay, server_tls_context: object
) -> None:
    relay = start_relay(tls_context=server_tls_context)

    outcome = send_one(smtp(f"{relay.url}?tls=none"), envelope())

    assert isinstance(outcome, Accepted)
    assert not relay.handler.messages[0].used_tls


def test_required_starttls_not_offered_is_transport_level(start_relay: StartRelay) -> None:
    relay = start_relay()

    outcome = send_one(smtp(f"{relay.url}?tls=starttls"), envelope())

    assert isinstance(outcome, Transient)
    assert outcome.transport_level
    assert relay.handler.messages == []


def test_untrusted_certificate_is_refused_by_default(
    start_relay: StartRelay, server_tls_context: object
) -> None:
    relay = start_relay(tls_context=server_tls_context)

    outcome = send_one(smtp(relay.url), envelope())

    assert isinstance(outcome, Transient)
    assert outcome.transport_level
    assert "certificate" in outcome.reason.lower()
    assert relay.handler.messages == []


def test_certificate_is_verified_against_trusted_roots(
    start_relay: StartRelay,
    server_tls_context: object,
    ca_bundle: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # OpenSSL reads SSL_CERT_FILE for its default roots: the test CA becomes trusted.
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_bundle))
    relay = start_relay(tls_context=server_tls_context)

    outcome = send_one(smtp(f"{relay.url}?tls=starttls"), envelope())

    assert isinstance(outcome, Accepted)


def test_implicit_tls(start_relay: StartRelay, server_tls_context: object) -> None:
    relay = start_relay(ssl_context=server_tls_context)

    outcome = send_one(smtp(f"{relay.url}?tls=implicit&verify=false"), envelope())

    assert isinstance(outcome, Accepted)
    assert relay.handler.messages[0].data == envelope().data


def _auth_url(relay_url: str, user: str, password: str) -> str:
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}@"
    return relay_url.replace("smtp://", "smtp://" + credentials) + "?tls=starttls&verify=false"


def test_auth_with_the_right_password(start_relay: StartRelay, server_tls_context: object) -> None:
    relay = start_relay(
        tls_context=server_tls_context, authenticator=check_login, auth_required=True
    )

    outcome = send_one(smtp(_auth_url(relay.url, *GOOD_LOGIN)), envelope())

    assert isinstance(outcome, Accepted)
    assert relay.handler.messages[0].used_tls
    assert relay.handler.messages[0].authenticated


def test_auth_with_a_wrong_password_is_transport_level(
    start_relay: StartRelay, server_tls_context: object
) -> None:
    relay = start_relay(
        tls_context=server_tls_context, authenticator=check_login, auth_required=True
    )

    outcome = send_one(smtp(_auth_url(relay.url, GOOD_LOGIN[0], "wrong")), envelope())

    assert isinstance(outcome, Transient)
    assert outcome.transport_level
    assert outcome.code == 535
    assert "wrong" not in outcome.reason
    assert relay.handler.messages == []


# --- the URL ------------------------------------------------------------------------------


def settings_for(url: str) -> SmtpSettings:
    return SmtpSettings.from_url(url, pool_size=4, timeout_seconds=30.0)


def test_url_defaults() -> None:
    settings = settings_for("smtp://relay.example")

    assert (settings.host, settings.port, settings.tls) == (
        "relay.example",
        25,
        TlsMode.OPPORTUNISTIC,
    )
    assert (settings.pool_size, settings.timeout_seconds) == (4, 30.0)
    assert settings.verify_certificates
    assert settings.username is None


@pytest.mark.parametrize(
    ("url", "port", "tls"),
    [
        ("smtp://relay.example:465", 465, TlsMode.IMPLICIT),
        ("smtp://relay.example?tls=implicit", 465, TlsMode.IMPLICIT),
        ("smtp://relay.example?tls=starttls", 587, TlsMode.STARTTLS),
        ("smtp://relay.example:2525?tls=none", 2525, TlsMode.NONE),
        ("smtp://relay.example:587", 587, TlsMode.OPPORTUNISTIC),
        ("smtp://relay.example:465?tls=STARTTLS", 465, TlsMode.STARTTLS),
    ],
)
def test_url_port_and_tls(url: str, port: int, tls: TlsMode) -> None:
    settings = settings_for(url)

    assert (settings.port, settings.tls) == (port, tls)


def test_url_options_and_decoded_credentials() -> None:
    settings = settings_for(
        "smtp://user%40corp:p%40ss%3Aw%2Frd@[::1]:2525/?pool=8&timeout=2.5&verify=false&helo=mx.me"
    )

    assert (settings.host, settings.port) == ("::1", 2525)
    assert (settings.username, settings.password) == ("user@corp", "p@ss:w/rd")
    assert (settings.pool_size, settings.timeout_seconds) == (8, 2.5)
    assert not settings.verify_certificates
    assert settings.helo_name == "mx.me"
    assert "p@ss" not in repr(settings)


def test_open_transport_passes_pool_and_timeout() -> None:
    transport = open_transport("SMTP://relay.example", pool_size=7, timeout_seconds=3.0)

    assert isinstance(transport, SmtpTransport)
    assert transport.name == "smtp"
    assert (transport.settings.pool_size, transport.settings.timeout_seconds) == (7, 3.0)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://relay.example",
        "relay.example:25",
        "",
        "smtp://",
        "smtp://user:secret@relay.example:99999",
        "smtp://user:secret@relay.example:port",
        "smtp://user:secret@relay.example:0",
        "smtp://user:secret@relay.example?tls=ssl",
        "smtp://user:secret@relay.example?tsl=none",
        "smtp://user:secret@relay.example?pool=0",
        "smtp://user:secret@relay.example?pool=many",
        "smtp://user:secret@relay.example?timeout=-1",
        "smtp://user:secret@relay.example?timeout=nan",
        "smtp://user:secret@relay.example?verify=maybe",
        "smtp://user:secret@relay.example?helo=two%20words",
        "smtp://user:secret@relay.example/inbox",
        "smtp://:secret@relay.example",
    ],
)
def test_bad_urls_name_the_setting_and_hide_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_transport(url)

    assert caught.value.variable == "POSTROOM_TRANSPORT_URL"
    assert str(caught.value).startswith("POSTROOM_TRANSPORT_URL: ")
    assert "secret" not in str(caught.value)
