"""SesTransport against moto's SES server and a scripted SES endpoint, both on 127.0.0.1;
the classification of every SES failure; the ses:// URL.

moto stands in for SES here: these tests show what Postroom sends and how it reads the
answers, not how the real service behaves.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from postroom.config import load_settings
from postroom.delivery.sender import Sender
from postroom.errors import ConfigError
from postroom.runtime import Runtime
from postroom.transports import open_transport
from postroom.transports.base import Accepted, Envelope, Outcome, Permanent, Transient
from postroom.transports.capture import CaptureTransport
from postroom.transports.ses import SesTransport
from postroom.transports.ses_errors import classify_error
from postroom.transports.smtp import SmtpTransport
from postroom.transports.smtp_settings import SmtpSettings
from tests.support.live_server import free_port
from tests.support.moto_ses import MOTO_REGION, MotoSes, use_moto_ses
from tests.transports.ses_stub import SesStub, StubReply, error_reply

SENDER = "news@postroom.test"
_Result = TypeVar("_Result")


def envelope(number: int, *, sender: str = SENDER) -> Envelope:
    data = (
        f"From: {sender}\r\nTo: r{number}@example.test\r\nSubject: Hello {number}\r\n"
        f"Message-ID: <m{number}.c1@postroom.test>\r\n\r\nMessage number {number}.\r\n"
    ).encode()
    return Envelope(
        sender=sender,
        recipient=f"r{number}@example.test",
        data=data,
        message_id=f"<m{number}.c1@postroom.test>",
    )


def using(transport: SesTransport, body: Callable[[SesTransport], Awaitable[_Result]]) -> _Result:
    async def main() -> _Result:
        try:
            return await body(transport)
        finally:
            await transport.close()

    return asyncio.run(main())


def send_all(transport: SesTransport, items: list[Envelope]) -> list[Outcome]:
    return using(transport, lambda t: t.send_many(items))


@pytest.fixture
def ses_stub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SesStub]:
    stub = SesStub()
    stub.start()
    use_moto_ses(monkeypatch, tmp_path, stub.endpoint_url)
    try:
        yield stub
    finally:
        stub.stop()


# Against moto --------------------------------------------------------------------------


def test_a_verified_sender_is_accepted_and_moto_has_the_raw_message(moto_ses: MotoSes) -> None:
    moto_ses.verify_sender(SENDER)
    sent = envelope(1)

    [outcome] = send_all(SesTransport(MOTO_REGION), [sent])

    [stored] = moto_ses.sent()
    assert outcome == Accepted(f"250 SES MessageId {stored.message_id}", stored.message_id)
    assert stored.sender == SENDER
    assert stored.recipient == "r1@example.test"
    assert stored.data == sent.data  # raw MIME: our headers exactly as composed


def test_bare_line_endings_go_out_as_crlf(moto_ses: MotoSes) -> None:
    moto_ses.verify_sender(SENDER)
    bare = Envelope(SENDER, "b@example.test", b"Subject: x\n\nbody", "<lf@postroom.test>")

    [outcome] = send_all(SesTransport(MOTO_REGION), [bare])

    assert isinstance(outcome, Accepted)
    assert moto_ses.sent()[0].data == b"Subject: x\r\n\r\nbody\r\n"


def test_an_unverified_sender_is_rejected_for_good(moto_ses: MotoSes) -> None:
    moto_ses.verify_sender(SENDER)

    [outcome] = send_all(SesTransport(MOTO_REGION), [envelope(1, sender="other@postroom.test")])

    assert isinstance(outcome, Permanent)
    assert outcome.reason.startswith("MessageRejected: ")
    assert "other@postroom.test" in outcome.reason
    assert outcome.code is None
    assert moto_ses.sent() == []


def test_many_sends_share_the_pool_and_keep_their_order(moto_ses: MotoSes) -> None:
    moto_ses.verify_sender(SENDER)
    items = [envelope(number) for number in range(20)]

    outcomes = send_all(SesTransport(MOTO_REGION, pool_size=3), items)

    stored = {message.message_id: message.recipient for message in moto_ses.sent()}
    assert len(stored) == 20
    assert [stored[outcome.queue_id or ""] for outcome in outcomes] == [  # type: ignore[union-attr]
        item.recipient for item in items
    ]


def test_the_region_of_the_url_is_used(moto_ses: MotoSes) -> None:
    moto_ses.verify_sender(SENDER)  # in us-east-1 only: eu-west-1 knows no identity

    [outcome] = send_all(SesTransport("eu-west-1"), [envelope(1)])

    assert isinstance(outcome, Permanent) and outcome.reason.startswith("MessageRejected")


def test_close_lets_in_flight_sends_finish_then_refuses(moto_ses: MotoSes) -> None:
    moto_ses.verify_sender(SENDER)
    items = [envelope(number) for number in range(8)]

    async def body(transport: SesTransport) -> tuple[list[Outcome], int, Outcome]:
        sending = asyncio.gather(*(transport.send(item) for item in items))
        await asyncio.sleep(0)  # every send has started
        await transport.close()
        stored_when_closed = len(moto_ses.sent())
        return list(await sending), stored_when_closed, await transport.send(envelope(99))

    outcomes, stored_when_closed, after = using(SesTransport(MOTO_REGION, pool_size=2), body)

    assert all(isinstance(outcome, Accepted) for outcome in outcomes)
    assert stored_when_closed == 8
    assert len(moto_ses.sent()) == 8
    assert after == Transient("transport_closed", transport_level=True)


def test_moto_has_no_quota_so_the_rate_is_unknown(
    moto_ses: MotoSes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="postroom.transports.ses"):
        rate = using(SesTransport(MOTO_REGION), lambda t: t.max_send_rate())

    assert rate is None
    assert "cannot read the SES sending quota" in caplog.text


def test_nothing_listening_is_a_transport_level_transient(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_moto_ses(monkeypatch, tmp_path, f"http://127.0.0.1:{free_port()}")

    [outcome] = send_all(SesTransport(MOTO_REGION, timeout_seconds=2.0), [envelope(1)])

    assert isinstance(outcome, Transient)
    assert outcome.transport_level and not outcome.possible_duplicate
    assert "Could not connect" in outcome.reason


def test_no_credentials_is_a_transport_level_transient(
    moto_ses: MotoSes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    [outcome] = send_all(SesTransport(MOTO_REGION), [envelope(1)])

    assert isinstance(outcome, Transient) and outcome.transport_level
    assert outcome.reason.startswith("AWS credentials: ")
    assert moto_ses.sent() == []


# Against the scripted endpoint -----------------------------------------------------------


def test_the_request_carries_sender_recipient_raw_data_and_configuration_set(
    ses_stub: SesStub,
) -> None:
    sent = envelope(1)
    transport = open_transport(f"ses://{MOTO_REGION}?configuration_set=campaigns-2026")
    assert isinstance(transport, SesTransport)

    [outcome] = send_all(transport, [sent])

    assert outcome == Accepted("250 SES MessageId stub-1", queue_id="stub-1")
    [request] = ses_stub.requests
    assert (request.method, request.path) == ("POST", "/v2/email/outbound-emails")
    assert request.body == {
        "FromEmailAddress": SENDER,
        "Destination": {"ToAddresses": ["r1@example.test"]},
        "Content": {"Raw": {"Data": base64.b64encode(sent.data).decode()}},
        "ConfigurationSetName": "campaigns-2026",
    }


def test_without_a_configuration_set_none_is_named(ses_stub: SesStub) -> None:
    send_all(SesTransport(MOTO_REGION), [envelope(1)])

    assert "ConfigurationSetName" not in ses_stub.requests[0].body


def test_the_null_sender_leaves_the_from_address_to_ses(ses_stub: SesStub) -> None:
    send_all(SesTransport(MOTO_REGION), [envelope(1, sender="")])

    assert "FromEmailAddress" not in ses_stub.requests[0].body


def test_the_quota_is_read_once(ses_stub: SesStub) -> None:
    async def body(transport: SesTransport) -> list[float | None]:
        return [await transport.max_send_rate() for _ in range(3)]

    rates = using(SesTransport(MOTO_REGION), body)

    assert rates == [14.0, 14.0, 14.0]
    assert [request.path for request in ses_stub.requests] == ["/v2/email/account"]


def test_an_unreadable_quota_is_none_and_not_asked_again_at_once(
    ses_stub: SesStub, caplog: pytest.LogCaptureFixture
) -> None:
    ses_stub.account_reply = error_reply(403, "AccessDeniedException", "not allowed")

    async def body(transport: SesTransport) -> list[float | None]:
        return [await transport.max_send_rate() for _ in range(2)]

    with caplog.at_level(logging.WARNING, logger="postroom.transports.ses"):
        rates = using(SesTransport(MOTO_REGION), body)

    assert rates == [None, None]
    assert len(ses_stub.requests) == 1
    assert "AccessDeniedException" in caplog.text


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            error_reply(429, "TooManyRequestsException", "Too many requests"),
            Transient("TooManyRequestsException: Too many requests", throttled=True),
        ),
        (
            error_reply(500, "InternalFailure", "oops"),
            Transient("InternalFailure: oops"),
        ),
        (
            error_reply(503, "ServiceUnavailable", "later"),
            Transient("ServiceUnavailable: later"),
        ),
        (
            error_reply(400, "LimitExceededException", "Daily message quota exceeded."),
            Transient(
                "LimitExceededException: Daily message quota exceeded.", transport_level=True
            ),
        ),
    ],
    ids=["throttled", "internal_failure", "unavailable", "daily_quota"],
)
def test_one_attempt_only_whatever_ses_answers(
    ses_stub: SesStub, reply: StubReply, expected: Outcome
) -> None:
    ses_stub.send_reply = reply

    [outcome] = send_all(SesTransport(MOTO_REGION), [envelope(1)])

    assert outcome == expected
    assert len(ses_stub.requests) == 1  # botocore retried nothing


def test_a_slow_reply_may_mean_ses_has_the_message(ses_stub: SesStub) -> None:
    ses_stub.send_reply = StubReply(body={"MessageId": "late"}, delay_seconds=1.0)

    [outcome] = send_all(SesTransport(MOTO_REGION, timeout_seconds=0.3), [envelope(1)])

    assert isinstance(outcome, Transient)
    assert outcome.transport_level and outcome.possible_duplicate
    assert "Read timeout" in outcome.reason
    assert len(ses_stub.requests) == 1


def test_a_connection_dropped_after_the_request_may_mean_ses_has_it(ses_stub: SesStub) -> None:
    ses_stub.send_reply = StubReply(drop=True)

    [outcome] = send_all(SesTransport(MOTO_REGION), [envelope(1)])

    assert isinstance(outcome, Transient)
    assert outcome.transport_level and outcome.possible_duplicate
    assert len(ses_stub.requests) == 1


# Classification of every failure ---------------------------------------------------------


def client_error(code: str, message: str, status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "SendEmail",
    )


THROTTLED = Transient("", throttled=True)
ACCOUNT = Transient("", transport_level=True)
RETRY = Transient("")
REFUSED = Permanent("")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (client_error("TooManyRequestsException", "slow down", 429), THROTTLED),
        (client_error("ThrottlingException", "Rate exceeded"), THROTTLED),
        (client_error("Throttling", "Rate exceeded"), THROTTLED),
        (client_error("MessageRejected", "Maximum sending rate exceeded."), THROTTLED),
        (client_error("MessageRejected", "Email address is not verified."), REFUSED),
        (client_error("MailFromDomainNotVerifiedException", "MAIL FROM not verified"), REFUSED),
        (client_error("BadRequestException", "Illegal address"), REFUSED),
        (client_error("InvalidParameterValue", "Missing final '@domain'"), REFUSED),
        (client_error("BadRequestException", "Configuration set <x> is invalid"), ACCOUNT),
        (client_error("AccountSuspendedException", "suspended"), ACCOUNT),
        (client_error("SendingPausedException", "paused"), ACCOUNT),
        (client_error("LimitExceededException", "Daily message quota exceeded."), ACCOUNT),
        (client_error("NotFoundException", "Configuration set <x> does not exist.", 404), ACCOUNT),
        (client_error("AccessDeniedException", "not authorized", 403), ACCOUNT),
        (client_error("UnrecognizedClientException", "invalid token", 403), ACCOUNT),
        (client_error("InvalidClientTokenId", "invalid key id", 403), ACCOUNT),
        (client_error("SignatureDoesNotMatch", "bad signature", 403), ACCOUNT),
        (client_error("InternalFailure", "oops", 500), RETRY),
        (client_error("ServiceUnavailable", "later", 503), RETRY),
        (client_error("BadGateway", "", 502), RETRY),
        (client_error("SomethingNew", "never seen", 400), ACCOUNT),
        (NoCredentialsError(), ACCOUNT),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), ACCOUNT),
        (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), ACCOUNT),
        (
            ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
            Transient("", transport_level=True, possible_duplicate=True),
        ),
        (
            ConnectionClosedError(endpoint_url="http://127.0.0.1:1"),
            Transient("", transport_level=True, possible_duplicate=True),
        ),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else "",
)
def test_classify_error(error: Exception, expected: Transient | Permanent) -> None:
    outcome = classify_error(error)

    assert type(outcome) is type(expected)
    assert outcome.code is None
    if isinstance(outcome, Transient):
        assert isinstance(expected, Transient)
        assert (outcome.throttled, outcome.transport_level, outcome.possible_duplicate) == (
            expected.throttled,
            expected.transport_level,
            expected.possible_duplicate,
        )
    if isinstance(error, ClientError):
        assert error.response["Error"]["Code"] in outcome.reason


def test_a_refusal_reason_starts_with_the_error_code() -> None:
    outcome = classify_error(
        client_error("MessageRejected", "Email address is not verified. a@b.test")
    )

    assert outcome == Permanent("MessageRejected: Email address is not verified. a@b.test")


# The ses:// URL --------------------------------------------------------------------------


def test_open_transport_reads_region_configuration_set_pool_and_timeout() -> None:
    transport = open_transport(
        "SES://eu-central-1?configuration_set=news_2026", pool_size=7, timeout_seconds=3.0
    )

    assert isinstance(transport, SesTransport)
    assert transport.name == "ses"
    assert (transport.region, transport.configuration_set) == ("eu-central-1", "news_2026")
    assert (transport.pool_size, transport.timeout_seconds) == (7, 3.0)
    asyncio.run(transport.close())


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ses://", "names its region"),
        ("ses://?configuration_set=x", "names its region"),
        ("ses://us-east-1:443", "names its region"),
        ("ses://email.us-east-1.amazonaws.com", "names its region"),
        ("ses://us-east-1/path", "no path"),
        ("ses://us-east-1?region=eu-west-1", "unknown SES option 'region'"),
        ("ses://us-east-1?configuration_set=", "configuration_set is 1 to 64"),
        ("ses://us-east-1?configuration_set=a%20b", "configuration_set is 1 to 64"),
        ("ses://AKIAEXAMPLE:s3cret@us-east-1", "credentials do not go in the URL"),
    ],
)
def test_bad_urls_name_the_setting(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_transport(url)

    assert caught.value.variable == "POSTROOM_TRANSPORT_URL"
    assert problem in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_settings_accept_an_ses_url() -> None:
    settings = load_settings(transport_url="ses://us-east-1", secret_key="k")

    assert settings.transport_url == "ses://us-east-1"


def test_other_transports_set_no_send_rate(tmp_path: Path) -> None:
    async def rates() -> list[float | None]:
        smtp = SmtpTransport(SmtpSettings(host="127.0.0.1", port=free_port()))
        capture = CaptureTransport(tmp_path)
        return [await smtp.max_send_rate(), await capture.max_send_rate()]

    assert asyncio.run(rates()) == [None, None]


@pytest.mark.parametrize(("configured", "expected"), [("0", 14.0), ("5/s", 5.0), ("20/s", 14.0)])
def test_the_sender_never_goes_faster_than_the_accounts_max_send_rate(
    ses_stub: SesStub, runtime: Runtime, configured: str, expected: float
) -> None:
    rt = replace_settings(runtime, rate_limit=configured)
    transport = SesTransport(MOTO_REGION)
    sender = Sender(rt, transport, "quota-test")
    try:
        assert asyncio.run(sender.send_due()) == 0  # nothing to send; the quota is read
    finally:
        asyncio.run(transport.close())
    assert sender.rates.transport == expected


def replace_settings(rt: Runtime, **changes: object) -> Runtime:
    return dataclasses.replace(rt, settings=rt.settings.model_copy(update=changes))
