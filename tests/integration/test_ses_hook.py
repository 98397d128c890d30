"""POST /hooks/ses end to end: SNS-signed SES records (every example the SES documentation
publishes) reach the event store once each; unsigned, tampered and foreign messages are
refused with 403 and change nothing; subscriptions are confirmed only towards SNS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import ServerFactory
from tests.integration.test_events import sent_campaign
from tests.support.sns_signing import CERT_URL, FIXTURES, SnsSigner, fixture, notification

EXPECTED = {
    "ses-event-bounce-permanent.json": "bounced",
    "ses-event-click.json": "clicked",
    "ses-event-complaint.json": "complained",
    "ses-event-delivery-delay.json": "deferred",
    "ses-event-delivery.json": "delivered",
    "ses-event-open.json": "opened",
    "ses-event-reject.json": "rejected",
    "ses-event-rendering-failure.json": "failed",
    "ses-event-send.json": "sent",
    "ses-notification-bounce-permanent-with-dsn.json": "bounced",
    "ses-notification-bounce-permanent-without-dsn.json": "bounced",
    "ses-notification-complaint-with-feedback-report.json": "complained",
    "ses-notification-complaint-without-feedback-report.json": "complained",
    "ses-notification-delivery.json": "delivered",
}


@pytest.fixture
def hook(server_factory: ServerFactory) -> tuple[Any, SnsSigner]:
    rt, api = server_factory.start()
    signer = SnsSigner()
    rt.sns_fetch = signer.fetch
    return api, signer


def post(api: Any, message: dict[str, Any] | bytes) -> httpx.Response:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    # SNS posts JSON as text/plain.
    response: httpx.Response = api.http.post(
        "/hooks/ses", content=body, headers={"Content-Type": "text/plain; charset=UTF-8"}
    )
    return response


def reported_events(api: Any, campaign_id: str) -> list[dict[str, Any]]:
    """A campaign's events as providers reported them (not Postroom's own "sent")."""
    events = api.http.get(f"/api/v1/campaigns/{campaign_id}/events").json()["events"]
    return [e for e in events if e["source"] != "postroom"]


def aimed_at(record: dict[str, Any], provider_message_id: str) -> dict[str, Any]:
    """The documentation's record, about one of our messages."""
    return {**record, "mail": {**record["mail"], "messageId": provider_message_id}}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_documented_ses_record_is_stored(hook: tuple[Any, SnsSigner], name: str) -> None:
    api, signer = hook
    campaign_id, by_email = sent_campaign(api, 1)
    (message,) = by_email.values()
    record = aimed_at(fixture(name), message["provider_message_id"])
    signed = signer.sign(notification(record, f"sns-{name}"), version="2")
    response = post(api, signed)
    assert response.status_code == 200, response.text
    stored = response.json()["events"]["stored"]
    assert stored >= 1 and response.json()["events"]["unmatched"] == 0
    reported = reported_events(api, campaign_id)
    assert {e["type"] for e in reported} == {EXPECTED[name]}
    assert all(e["message_id"] == message["id"] for e in reported)
    again = post(api, signed)  # SNS delivers at least once
    assert again.json()["events"] == {"stored": 0, "repeated": stored, "unmatched": 0}


def test_counts_follow_the_events(hook: tuple[Any, SnsSigner]) -> None:
    api, signer = hook
    campaign_id, by_email = sent_campaign(api, 2)
    first, second = by_email.values()
    for i, (message, name) in enumerate(
        [
            (first, "ses-event-delivery.json"),
            (first, "ses-event-open.json"),
            (second, "ses-event-bounce-permanent.json"),
        ]
    ):
        record = aimed_at(fixture(name), message["provider_message_id"])
        assert post(api, signer.sign(notification(record, f"m{i}"))).status_code == 200
    counts = api.status(campaign_id)["counts"]
    assert (counts["delivered"], counts["opened"], counts["bounced"]) == (1, 1, 1)
    bounced = api.http.get(f"/api/v1/campaigns/{campaign_id}/messages/{second['id']}").json()
    assert bounced["outcome"] == "bounced"
    (bounce,) = [e for e in bounced["timeline"] if e["kind"] == "event"]
    assert bounce["data"]["bounce_type"] == "hard"


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(
            lambda m: {**m, "Message": m["Message"].replace("Delivery", "Bounce")},
            id="tampered-message",
        ),
        pytest.param(lambda m: {**m, "MessageId": "other"}, id="tampered-id"),
        pytest.param(lambda m: {k: v for k, v in m.items() if k != "Signature"}, id="unsigned"),
        pytest.param(lambda m: {**m, "Signature": "AAAA"}, id="garbage-signature"),
        pytest.param(
            lambda m: {
                **m,
                "SigningCertURL": "https://sns.us-east-1.amazonaws.com.evil.example/c.pem",
            },
            id="foreign-host",
        ),
        pytest.param(
            lambda m: {**m, "SigningCertURL": m["SigningCertURL"].replace("https", "http")},
            id="plain-http",
        ),
        pytest.param(lambda m: {**m, "SignatureVersion": "3"}, id="unknown-version"),
    ],
)
def test_untrusted_messages_are_refused_and_change_nothing(
    hook: tuple[Any, SnsSigner], spoil: Any
) -> None:
    api, signer = hook
    campaign_id, by_email = sent_campaign(api, 1)
    (message,) = by_email.values()
    record = aimed_at(fixture("ses-event-delivery.json"), message["provider_message_id"])
    response = post(api, spoil(signer.sign(notification(record))))
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "invalid_sns_signature"
    assert reported_events(api, campaign_id) == []
    assert api.status(campaign_id)["counts"]["delivered"] == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        (json.dumps({"Type": "Surprise"}).encode(), 400, "unknown_sns_message"),
        (b"x" * (600 * 1024), 413, "payload_too_large"),
    ],
)
def test_malformed_posts_are_refused(
    hook: tuple[Any, SnsSigner], body: bytes, status: int, code: str
) -> None:
    api, _signer = hook
    response = post(api, body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_a_subscription_is_confirmed_only_towards_sns(hook: tuple[Any, SnsSigner]) -> None:
    api, signer = hook
    confirmation = fixture("sns-http-subscription-confirmation.json")
    safe_url = "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=abc"
    response = post(api, signer.sign({**confirmation, "SubscribeURL": safe_url}))
    assert response.status_code == 200, response.text
    assert response.json() == {"type": "SubscriptionConfirmation", "confirmed": True}
    assert signer.fetched[-1] == safe_url
    for unsafe in ("http://sns.us-west-2.amazonaws.com/?x", "https://evil.example/?Action=x"):
        fetched_before = list(signer.fetched)
        refused = post(api, signer.sign({**confirmation, "SubscribeURL": unsafe}))
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "invalid_subscribe_url"
        assert unsafe not in signer.fetched[len(fetched_before) :]
    unsubscribed = post(api, signer.sign(fixture("sns-http-unsubscribe-confirmation.json")))
    assert unsubscribed.status_code == 200
    assert unsubscribed.json()["type"] == "UnsubscribeConfirmation"


def test_the_certificate_is_fetched_once(hook: tuple[Any, SnsSigner]) -> None:
    api, signer = hook
    _campaign_id, by_email = sent_campaign(api, 1)
    (message,) = by_email.values()
    record = aimed_at(fixture("ses-event-open.json"), message["provider_message_id"])
    for i in range(5):
        assert post(api, signer.sign(notification(record, f"n{i}"))).status_code == 200
    assert signer.fetched.count(CERT_URL) == 1


def test_without_verification_anything_is_believed(
    server_factory: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    _rt, api = server_factory.start(sns_verify_signatures=False)
    assert "believes ANY caller" in caplog.text
    _campaign_id, by_email = sent_campaign(api, 1)
    (message,) = by_email.values()
    record = aimed_at(fixture("ses-event-delivery.json"), message["provider_message_id"])
    unsigned = notification(record)
    del unsigned["Signature"]
    response = post(api, unsigned)
    assert response.status_code == 200 and response.json()["events"]["stored"] == 1


def test_fixture_directory_is_where_the_tests_look() -> None:
    assert Path(FIXTURES / "sns-http-notification.json").is_file()
