"""The event store: provider events land once each on their message, move its outcome and
the campaign's unique counts, and read back as pages and as one message's timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from postroom.events.service import Recorded, record_provider_events
from postroom.events.ses_records import ProviderEvent
from postroom.runtime import Runtime
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient

# Provider events come after the send: an hour from now, to the second.
T0 = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)


def sent_campaign(client: ApiClient, recipients: int) -> tuple[str, dict[str, dict[str, Any]]]:
    template_id = client.upload_template("<p>Hi</p>", "Hi")
    rows = [["email"], *([f"r{i}@example.com"] for i in range(recipients))]
    file_id = client.upload_file(csv_bytes(rows))
    campaign_id = client.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    assert client.wait(campaign_id)["status"] == "completed"
    return campaign_id, {m["email"]: m for m in client.messages(campaign_id)}


def event(message: dict[str, Any], kind: str, minutes: int, key: str, **data: Any) -> ProviderEvent:
    return ProviderEvent(
        type=kind,
        provider_message_id=message["provider_message_id"],
        recipient=message["email"],
        occurred_at=T0 + timedelta(minutes=minutes),
        event_key=key,
        data=data,
    )


def record(rt: Runtime, reported: list[ProviderEvent]) -> Recorded:
    with rt.db.write() as conn:
        return record_provider_events(conn, reported, source="ses", now=rt.clock.now())


def test_events_land_once_and_move_outcomes_and_unique_counts(
    runtime: Runtime, client: ApiClient
) -> None:
    campaign_id, by_email = sent_campaign(client, 3)
    a, b, c = (by_email[f"r{i}@example.com"] for i in range(3))
    assert all(m["provider_message_id"] for m in (a, b, c))
    reported = [
        event(a, "delivered", 1, "a-delivered", smtp_response="250 ok"),
        event(a, "opened", 5, "a-open-1"),
        event(a, "opened", 6, "a-open-2"),
        event(a, "clicked", 7, "a-click", link="https://example.com/x"),
        event(b, "bounced", 2, "b-bounce", bounce_type="hard", diagnostic_code="550 5.1.1"),
        event(c, "delivered", 1, "c-delivered"),
        event(c, "complained", 30, "c-complaint", feedback_type="abuse"),
        event(c, "delivered", 1, "c-delivered"),  # the provider said it twice
    ]
    stranger = ProviderEvent("delivered", "not-ours", "x@y.z", T0, "stranger", {})
    assert record(runtime, [*reported, stranger]) == Recorded(stored=7, repeated=1, unmatched=1)
    assert record(runtime, reported) == Recorded(stored=0, repeated=8, unmatched=0)

    counts = client.status(campaign_id)["counts"]
    assert {k: counts[k] for k in ("delivered", "bounced", "complained", "opened", "clicked")} == {
        "delivered": 2,
        "bounced": 1,
        "complained": 1,
        "opened": 1,  # unique recipients: two opens of one message count once
        "clicked": 1,
    }
    assert counts["unsubscribed"] == 0 and counts["total"] == 3 and counts["sent"] == 3

    detail = client.http.get(f"/api/v1/campaigns/{campaign_id}/messages/{c['id']}").json()
    assert detail["outcome"] == "complained"  # a complaint outranks the delivery
    assert detail["delivered_at"] and detail["complained_at"]
    kinds = [(e["kind"], e["status"] or e["type"]) for e in detail["timeline"]]
    assert ("status", "sending") in kinds and ("status", "sent") in kinds
    assert kinds[-2:] == [("event", "delivered"), ("event", "complained")]
    a_detail = client.http.get(f"/api/v1/campaigns/{campaign_id}/messages/{a['id']}").json()
    assert a_detail["outcome"] == "delivered"
    assert a_detail["first_opened_at"] == (T0 + timedelta(minutes=5)).isoformat().replace(
        "+00:00", "Z"
    )


def test_events_page_by_type_and_cursor(runtime: Runtime, client: ApiClient) -> None:
    campaign_id, by_email = sent_campaign(client, 5)
    record(
        runtime,
        [event(m, "delivered", i, f"d{i}") for i, m in enumerate(by_email.values())]
        + [event(next(iter(by_email.values())), "opened", 9, "o1", user_agent="Mail")],
    )
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"type": "delivered", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.http.get(f"/api/v1/campaigns/{campaign_id}/events", params=params).json()
        seen += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [e["type"] for e in seen] == ["delivered"] * 5
    assert len({e["message_id"] for e in seen}) == 5
    everything = client.http.get(f"/api/v1/campaigns/{campaign_id}/events").json()["events"]
    assert [e["type"] for e in everything][-1] == "opened"
    assert everything[-1]["data"] == {"user_agent": "Mail"} and everything[-1]["source"] == "ses"


def test_bad_event_queries_are_refused(client: ApiClient) -> None:
    campaign_id, by_email = sent_campaign(client, 1)
    (message,) = by_email.values()
    cases = [
        (f"/api/v1/campaigns/{campaign_id}/events?type=exploded", 400, "invalid_event_type"),
        (f"/api/v1/campaigns/{campaign_id}/events?cursor=nope", 400, "invalid_cursor"),
        (f"/api/v1/campaigns/{campaign_id}/messages/999999", 404, "message_not_found"),
        (f"/api/v1/campaigns/cmp_nope/messages/{message['id']}", 404, "campaign_not_found"),
        ("/api/v1/campaigns/cmp_nope/events", 404, "campaign_not_found"),
    ]
    for path, status, code in cases:
        response = client.http.get(path)
        assert response.status_code == status, (path, response.text)
        assert response.json()["error"]["code"] == code
