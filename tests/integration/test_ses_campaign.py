"""A campaign over HTTP sent through ses:// to moto's SES server (a stand-in, not SES)."""

from __future__ import annotations

from collections import Counter
from email import message_from_bytes, policy

from tests.integration.conftest import ServerFactory
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.moto_ses import MOTO_REGION, MotoSes

RECIPIENTS = [f"reader{number:02d}@example.com" for number in range(20)]


def test_a_campaign_goes_out_through_ses(server_factory: ServerFactory, moto_ses: MotoSes) -> None:
    moto_ses.verify_sender("team@example.com")
    # A bounce address is set, but SES reports bounces itself: no VERP sender with ses://.
    _rt, api = server_factory.start(
        transport_url=f"ses://{MOTO_REGION}", bounce_address="bounces@bounce.example.com"
    )
    template_id = api.upload_template("<p>Hello {{ name }}</p>", subject="News for {{ name }}")
    rows = [["email", "name"], *([address, address.split("@")[0]] for address in RECIPIENTS)]
    file_id = api.upload_file(csv_bytes(rows))

    created = api.create_campaign(
        template_id=template_id,
        file_id=file_id,
        name="SES wave",
        **{"from": {"email": "team@example.com", "name": "Postroom"}},
    )
    assert created.status_code == 202, created.text
    campaign_id = created.json()["transaction_id"]
    status = api.wait(campaign_id)

    assert status["status"] == "completed", status
    assert status["counts"]["sent"] == status["counts"]["total"] == 20
    messages = api.messages(campaign_id)
    assert [message["status"] for message in messages] == ["sent"] * 20
    assert all(message["attempts"] == 1 for message in messages)
    stored = moto_ses.sent()
    assert Counter(item.recipient for item in stored) == Counter(RECIPIENTS)
    assert {item.sender for item in stored} == {"team@example.com"}
    for item in stored:
        headers = message_from_bytes(item.data, policy=policy.default)
        assert "mailto:" not in str(headers["List-Unsubscribe"])
        assert "bounce.example.com" not in item.data.decode()
    assert {message["message_id"] for message in messages} == {
        str(message_from_bytes(item.data, policy=policy.default)["Message-ID"]).strip("<>")
        for item in stored
    }
    assert {message["relay_reply"] for message in messages} == {
        f"250 SES MessageId {item.message_id}" for item in stored
    }
    # The SES MessageId is kept on its own, to match SES's later events to the message.
    assert {message["provider_message_id"] for message in messages} == {
        item.message_id for item in stored
    }
