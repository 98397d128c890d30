"""What the relay says decides each message's fate: 2xx sent, 5xx failed, 4xx retried."""

from __future__ import annotations

from postroom.runtime import Runtime
from tests.integration.conftest import new_client
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer
from tests.support.smtp_relay import SmtpRelay


def test_permanent_and_transient_replies(
    relay_server: tuple[Runtime, LiveServer], smtp_relay: SmtpRelay
) -> None:
    rt, server = relay_server
    smtp_relay.handler.reject["gone@example.com"] = "550 5.1.1 No such user"
    smtp_relay.handler.reject_once["busy@example.com"] = "451 4.7.1 Try again later"
    api = new_client(rt, server)
    template_id = api.upload_template("<p>Hi</p>", "Hi")
    rows = [["email"], ["ok@example.com"], ["gone@example.com"], ["busy@example.com"]]
    file_id = api.upload_file(csv_bytes(rows))
    campaign_id = api.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    status = api.wait(campaign_id)
    assert status["status"] == "completed"
    assert status["counts"] | {"total": 3} == {**status["counts"], "sent": 2, "failed": 1}
    by_email = {m["email"]: m for m in api.messages(campaign_id)}
    gone = by_email["gone@example.com"]
    assert gone["status"] == "failed" and gone["attempts"] == 1
    assert gone["last_error"].startswith("550") and "No such user" in gone["last_error"]
    # A refusal at send time is a hard bounce, known at once; a 4xx is not.
    assert status["counts"]["bounced"] == 1
    detail = api.http.get(f"/api/v1/campaigns/{campaign_id}/messages/{gone['id']}").json()
    assert detail["outcome"] == "bounced" and detail["bounced_at"]
    (bounce,) = [e for e in detail["timeline"] if e["kind"] == "event"]
    assert bounce["type"] == "bounced" and bounce["data"]["bounce_type"] == "hard"
    assert bounce["data"]["diagnostic_code"].startswith("550")
    busy = by_email["busy@example.com"]
    assert busy["status"] == "sent" and busy["attempts"] == 2
    assert sorted(r.recipients[0] for r in smtp_relay.received) == [
        "busy@example.com",
        "ok@example.com",
    ]
    # Postroom's own outcomes are events too, one per attempt, beside the relay's bounce.
    events = api.http.get(f"/api/v1/campaigns/{campaign_id}/events").json()["events"]
    own = sorted(
        (e["recipient"], e["type"], e["data"]["attempt"])
        for e in events
        if e["source"] == "postroom"
    )
    assert own == [
        ("busy@example.com", "deferred", 1),
        ("busy@example.com", "sent", 2),
        ("gone@example.com", "failed", 1),
        ("ok@example.com", "sent", 1),
    ]
    by_kind = {(e["recipient"], e["type"]): e["data"] for e in events}
    assert by_kind[("busy@example.com", "deferred")]["error"].startswith("451")
    assert by_kind[("ok@example.com", "sent")]["reply"].startswith("250")
    assert by_kind[("ok@example.com", "sent")]["transport"] == "smtp"
    assert [e["type"] for e in events if e["source"] == "smtp"] == ["bounced"]
    api.close()


def test_a_message_that_cannot_render_fails_alone(client: ApiClient) -> None:
    template_id = client.upload_template(
        "<p>{% if name == 'Bad' %}{{ name.missing }}{% else %}{{ name }}{% endif %}</p>", "Hi"
    )
    rows = [["email", "name"], ["good@example.com", "Good"], ["bad@example.com", "Bad"]]
    file_id = client.upload_file(csv_bytes(rows))
    campaign_id = client.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    status = client.wait(campaign_id)
    assert status["status"] == "completed"
    by_email = {m["email"]: m for m in client.messages(campaign_id)}
    assert by_email["good@example.com"]["status"] == "sent"
    bad = by_email["bad@example.com"]
    assert bad["status"] == "failed" and bad["attempts"] == 0
    assert bad["last_error"].startswith("render_error")
