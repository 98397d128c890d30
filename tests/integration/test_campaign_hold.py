"""Campaigns created with ``hold``: the file is processed and the exact report is there to
read, nothing is sent until the campaign is confirmed, and cancel discards it."""

from __future__ import annotations

from datetime import timedelta

from postroom.runtime import Runtime
from tests.integration.conftest import new_client
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer
from tests.support.smtp_relay import SmtpRelay

ROWS = [["email"], ["ann@example.com"], ["not-an-address"], ["ANN@example.com"]]


def held_campaign(api: ApiClient) -> str:
    template_id = api.upload_template("<p>Hi</p>", "Hi")
    file_id = api.upload_file(csv_bytes(ROWS))
    response = api.create_campaign(template_id=template_id, file_id=file_id, hold=True)
    assert response.status_code == 202, response.text
    campaign_id: str = response.json()["transaction_id"]
    status = api.wait(campaign_id, until=("held", "failed"))
    assert status["status"] == "held"
    assert status["file"] | {"columns": None, "errors_url": None} == {
        "rows": 3,
        "valid": 1,
        "invalid": 1,
        "duplicates": 1,
        "columns": None,
        "warnings": [],
        "errors_url": None,
    }
    assert status["counts"]["queued"] == 1 and status["started_at"] is None
    return campaign_id


def test_a_held_campaign_sends_only_once_confirmed(
    relay_server: tuple[Runtime, LiveServer], smtp_relay: SmtpRelay
) -> None:
    client = new_client(*relay_server)
    campaign_id = held_campaign(client)
    assert smtp_relay.received == []
    confirmed = client.http.post(f"/api/v1/campaigns/{campaign_id}/confirm")
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] in ("sending", "completed")
    assert client.wait(campaign_id)["counts"]["sent"] == 1
    again = client.http.post(f"/api/v1/campaigns/{campaign_id}/confirm", json={})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "campaign_not_held"
    assert [r.message["To"] for r in smtp_relay.received] == ["ann@example.com"]
    client.close()


def test_confirm_at_a_time_schedules_and_cancel_discards(
    client: ApiClient, runtime: Runtime
) -> None:
    later = held_campaign(client)
    naive = client.http.post(
        f"/api/v1/campaigns/{later}/confirm", json={"send_at": "2030-01-01T09:00:00"}
    )
    assert naive.status_code == 422 and naive.json()["error"]["code"] == "timezone_required"
    send_at = (runtime.clock.now() + timedelta(hours=2)).isoformat()
    scheduled = client.http.post(f"/api/v1/campaigns/{later}/confirm", json={"send_at": send_at})
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["status"] == "scheduled"

    discarded = held_campaign(client)
    cancelled = client.http.post(f"/api/v1/campaigns/{discarded}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["counts"]["cancelled"] == 1
    listed = client.http.get("/api/v1/campaigns", params={"status": "held"})
    assert listed.status_code == 200 and listed.json()["campaigns"] == []
