"""The suppression list: managed through the API, filled by hard bounces, complaints and
unsubscribes, and honoured both when a file is processed and when a message is sent."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from postroom.db.tables import message_transitions
from postroom.events.service import record_provider_events
from postroom.events.ses_records import ProviderEvent
from postroom.runtime import Runtime
from tests.integration.conftest import ServerFactory
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient
from tests.support.smtp_relay import SmtpRelay


def start(api: ApiClient, emails: list[str], **body: Any) -> str:
    template_id = api.upload_template("<p>Hi</p>", "Hi")
    file_id = api.upload_file(csv_bytes([["email"], *([e] for e in emails)]))
    response = api.create_campaign(template_id=template_id, file_id=file_id, **body)
    assert response.status_code == 202, response.text
    campaign_id: str = response.json()["transaction_id"]
    return campaign_id


def suppressed(api: ApiClient) -> dict[str, str]:
    out: dict[str, str] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.http.get("/api/v1/suppressions", params=params).json()
        out |= {s["email"]: s["reason"] for s in page["suppressions"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return out


def test_the_list_is_managed_through_the_api(client: ApiClient) -> None:
    added = client.http.post("/api/v1/suppressions", json={"email": "Ann@Example.COM"})
    assert added.status_code == 201, added.text
    assert added.json()["reason"] == "manual"
    again = client.http.post("/api/v1/suppressions", json={"email": "ann@example.com"})
    assert again.status_code == 200  # the same address, however it is written
    for email in ("b@example.com", "c@example.com", "d@example.com"):
        client.http.post("/api/v1/suppressions", json={"email": email, "detail": "asked by phone"})
    assert set(suppressed(client)) == {
        "Ann@example.com",
        "b@example.com",
        "c@example.com",
        "d@example.com",
    }
    bad = client.http.post("/api/v1/suppressions", json={"email": "not an address"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_email"
    extra = client.http.post("/api/v1/suppressions", json={"email": "x@example.com", "x": 1})
    assert extra.status_code == 422
    exported = client.http.get("/api/v1/suppressions/export.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 4 and {r["reason"] for r in rows} == {"manual"}
    assert client.http.delete("/api/v1/suppressions/ANN@example.com").status_code == 204
    gone = client.http.delete("/api/v1/suppressions/ann@example.com")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "suppression_not_found"
    assert "Ann@example.com" not in suppressed(client)
    assert client.http.get("/api/v1/suppressions?cursor=zz").json()["error"]["code"] == (
        "invalid_cursor"
    )


def test_a_listed_address_is_suppressed_when_the_file_is_processed(
    runtime: Runtime, client: ApiClient
) -> None:
    client.http.post("/api/v1/suppressions", json={"email": "no@example.com"})
    campaign_id = start(client, ["yes@example.com", "NO@example.com"])
    status = client.wait(campaign_id)
    assert status["status"] == "completed"
    assert (status["counts"]["sent"], status["counts"]["suppressed"]) == (1, 1)
    (message,) = client.messages(campaign_id, status="suppressed")
    assert message["email"] == "NO@example.com" and message["attempts"] == 0
    with runtime.db.read() as conn:
        moves = conn.execute(
            select(message_transitions.c.from_status, message_transitions.c.to_status).where(
                message_transitions.c.message_pk == message["id"]
            )
        ).all()
    assert [tuple(m) for m in moves] == [("queued", "suppressed")]


def test_an_address_listed_after_processing_is_suppressed_at_send_time(
    client: ApiClient,
) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    campaign_id = start(client, ["a@example.com", "b@example.com"], send_at=later.isoformat())
    client.wait(campaign_id, until=("scheduled",))
    client.http.post("/api/v1/suppressions", json={"email": "b@example.com"})
    client.http.patch(f"/api/v1/campaigns/{campaign_id}", json={"send_at": None})
    status = client.wait(campaign_id)
    assert (status["counts"]["sent"], status["counts"]["suppressed"]) == (1, 1)
    (message,) = client.messages(campaign_id, status="suppressed")
    assert message["email"] == "b@example.com"


def test_bounces_and_complaints_fill_the_list_and_the_next_campaign_skips_them(
    server_factory: ServerFactory, smtp_relay: SmtpRelay
) -> None:
    smtp_relay.handler.reject["gone@example.com"] = "550 5.1.1 No such user"
    rt, api = server_factory.start(transport_url=smtp_relay.url)
    emails = ["gone@example.com", "angry@example.com", "soft@example.com", "fine@example.com"]
    first = start(api, emails)
    api.wait(first)
    by_email = {m["email"]: m for m in api.messages(first)}
    now = datetime.now(UTC)

    def reported(email: str, kind: str, key: str, **data: Any) -> ProviderEvent:
        message = by_email[email]
        return ProviderEvent(kind, message["provider_message_id"], email, now, key, data)

    with rt.db.write() as conn:
        record_provider_events(
            conn,
            [
                reported("angry@example.com", "complained", "k1", feedback_type="abuse"),
                reported("soft@example.com", "bounced", "k2", bounce_type="soft"),
            ],
            source="ses",
            now=now,
        )
    assert suppressed(api) == {"gone@example.com": "hard_bounce", "angry@example.com": "complaint"}
    second = start(api, emails)
    status = api.wait(second)
    assert (status["counts"]["sent"], status["counts"]["suppressed"]) == (2, 2)
    assert {m["email"] for m in api.messages(second, status="sent")} == {
        "soft@example.com",
        "fine@example.com",
    }
