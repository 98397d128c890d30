"""Delivery you can trust, through the real HTTP API and a real SMTP relay: the circuit
breaker rides out a relay outage without blaming a message, the retry budget ends hopeless
retries, and a campaign can be paused, resumed and rescheduled."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import ServerFactory
from tests.integration.test_campaign_flow import csv_bytes
from tests.support.api_client import ApiClient
from tests.support.smtp_relay import SmtpRelay


def start_campaign(api: ApiClient, recipients: int, **body: Any) -> str:
    template_id = api.upload_template("<p>Hi {{ email }}</p>", "Hi")
    rows = [["email"], *([f"r{i}@example.com"] for i in range(recipients))]
    file_id = api.upload_file(csv_bytes(rows))
    response = api.create_campaign(template_id=template_id, file_id=file_id, **body)
    assert response.status_code == 202, response.text
    campaign_id: str = response.json()["transaction_id"]
    return campaign_id


def system_status(api: ApiClient) -> dict[str, Any]:
    response = api.http.get("/api/v1/system/status")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def breaker_state(api: ApiClient) -> str:
    body = system_status(api)
    (breaker,) = [b for b in body["breakers"] if b["transport"] == body["transport"]]
    state: str = breaker["state"]
    return state


def breaker_gauge(api: ApiClient, transport: str) -> float:
    scraped = api.http.get("/metrics").text
    for family in text_string_to_metric_families(scraped):
        for sample in family.samples:
            if sample.name == "postroom_breaker_open" and sample.labels["transport"] == transport:
                return sample.value
    raise AssertionError(f"no breaker gauge for {transport}")


def wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_a_relay_outage_opens_the_breaker_and_no_message_is_blamed(
    server_factory: ServerFactory,
) -> None:
    relay = SmtpRelay()  # not listening yet: every connection is refused
    _rt, api = server_factory.start(
        transport_url=relay.url,
        breaker_failure_threshold=3,
        breaker_cooldown_seconds=0.5,
        breaker_max_cooldown_seconds=1.0,
    )
    try:
        assert breaker_state(api) == "closed"
        campaign_id = start_campaign(api, 30)
        wait_for(lambda: breaker_state(api) == "open")
        status = system_status(api)
        (breaker,) = status["breakers"]
        assert "refused" in breaker["last_error"] or "cannot" in breaker["last_error"]
        assert breaker_gauge(api, breaker["transport"]) in (1.0, 0.5)  # open, or probing
        # While the relay is down nothing is charged: no attempt, no failure, no deferral.
        time.sleep(1.0)
        messages = api.messages(campaign_id)
        assert {m["status"] for m in messages} <= {"queued", "sending"}
        assert {m["attempts"] for m in messages} == {0}
        assert api.status(campaign_id)["counts"]["failed"] == 0
        relay.start()
        final = api.wait(campaign_id, timeout=30)
        assert final["status"] == "completed"
        assert final["counts"]["sent"] == 30 and final["counts"]["failed"] == 0
        assert {m["attempts"] for m in api.messages(campaign_id)} == {1}
        seen = Counter(r.recipients[0] for r in relay.received)
        assert len(seen) == 30 and set(seen.values()) == {1}
        assert breaker_state(api) == "closed"
        assert breaker_gauge(api, breaker["transport"]) == 0.0
    finally:
        relay.stop()


def test_a_message_that_keeps_failing_stops_when_its_budget_is_spent(
    server_factory: ServerFactory, smtp_relay: SmtpRelay
) -> None:
    smtp_relay.handler.reject["stuck@example.com"] = "451 4.2.0 Mailbox busy"
    _rt, api = server_factory.start(
        transport_url=smtp_relay.url,
        retry_base_seconds=0.1,
        retry_cap_seconds=0.2,
        retry_budget_seconds=1.0,
    )
    template_id = api.upload_template("<p>Hi</p>", "Hi")
    file_id = api.upload_file(csv_bytes([["email"], ["ok@example.com"], ["stuck@example.com"]]))
    campaign_id = api.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    wait_for(lambda: api.status(campaign_id)["counts"]["deferred"] == 1, timeout=10)
    (deferred,) = api.messages(campaign_id, status="deferred")
    assert deferred["next_attempt_at"] is not None and deferred["last_error"].startswith("451")
    status = api.wait(campaign_id, timeout=20)
    assert status["status"] == "completed"
    assert (status["counts"]["sent"], status["counts"]["failed"]) == (1, 1)
    (stuck,) = api.messages(campaign_id, status="failed")
    assert stuck["last_error"].startswith("retries_exhausted: 451")
    assert stuck["attempts"] >= 2 and stuck["next_attempt_at"] is None
    # The relay never heard of it more than the attempts say, and the good one went once.
    assert [r.recipients[0] for r in smtp_relay.received] == ["ok@example.com"]


def test_pause_takes_effect_within_a_batch_and_resume_finishes_exactly_once(
    server_factory: ServerFactory, smtp_relay: SmtpRelay
) -> None:
    smtp_relay.handler.delay_seconds = 0.02
    _rt, api = server_factory.start(
        transport_url=smtp_relay.url, send_batch_size=10, send_concurrency=1
    )
    campaign_id = start_campaign(api, 200)
    wait_for(lambda: len(smtp_relay.received) >= 5)
    paused = api.http.post(f"/api/v1/campaigns/{campaign_id}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused" and paused.json()["paused_at"]
    wait_for(lambda: api.status(campaign_id)["counts"]["sending"] == 0, timeout=10)
    at_pause = len(smtp_relay.received)
    time.sleep(0.6)
    assert len(smtp_relay.received) == at_pause < 200  # nothing more while paused
    again = api.http.post(f"/api/v1/campaigns/{campaign_id}/pause")
    assert again.status_code == 200 and again.json()["status"] == "paused"
    resumed = api.http.post(f"/api/v1/campaigns/{campaign_id}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "sending"
    final = api.wait(campaign_id, timeout=60)
    assert final["status"] == "completed" and final["counts"]["sent"] == 200
    seen = Counter(r.recipients[0] for r in smtp_relay.received)
    assert len(seen) == 200 and set(seen.values()) == {1}
    finished = api.http.post(f"/api/v1/campaigns/{campaign_id}/pause")
    assert finished.status_code == 409 and finished.json()["error"]["code"] == "campaign_finished"


def test_a_scheduled_campaign_can_be_moved_and_starts_within_a_second(
    server_factory: ServerFactory,
) -> None:
    _rt, api = server_factory.start()
    far = datetime.now(UTC) + timedelta(days=2)
    campaign_id = start_campaign(api, 3, send_at=far.isoformat())
    api.wait(campaign_id, until=("scheduled",))
    soon = datetime.now(UTC) + timedelta(seconds=2)
    moved = api.http.patch(f"/api/v1/campaigns/{campaign_id}", json={"send_at": soon.isoformat()})
    assert moved.status_code == 200, moved.text
    assert datetime.fromisoformat(moved.json()["scheduled_at"]) == soon
    status = api.wait(campaign_id, timeout=10)
    started = datetime.fromisoformat(status["started_at"])
    assert soon <= started < soon + timedelta(seconds=1)
    late = api.http.patch(f"/api/v1/campaigns/{campaign_id}", json={"send_at": None})
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "campaign_already_started"


def test_a_paused_scheduled_campaign_waits_for_resume_even_when_due(
    server_factory: ServerFactory,
) -> None:
    _rt, api = server_factory.start()
    later = datetime.now(UTC) + timedelta(hours=1)
    campaign_id = start_campaign(api, 2, send_at=later.isoformat())
    api.wait(campaign_id, until=("scheduled",))
    assert api.http.post(f"/api/v1/campaigns/{campaign_id}/pause").json()["status"] == "paused"
    now = api.http.patch(f"/api/v1/campaigns/{campaign_id}", json={"send_at": None})
    assert now.status_code == 200 and now.json()["status"] == "paused"
    time.sleep(0.5)
    assert api.status(campaign_id)["counts"]["sent"] == 0
    api.http.post(f"/api/v1/campaigns/{campaign_id}/resume")
    assert api.wait(campaign_id)["counts"]["sent"] == 2


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"send_at": "2026-12-01T09:00:00"}, "timezone_required"),
        ({"send_at": "tomorrow"}, "invalid_request"),
        ({"send_at": None, "name": "x"}, "invalid_request"),
        ({}, "invalid_request"),
    ],
)
def test_bad_reschedules_are_refused_and_change_nothing(
    server_factory: ServerFactory, body: dict[str, Any], code: str
) -> None:
    _rt, api = server_factory.start()
    later = datetime.now(UTC) + timedelta(hours=1)
    campaign_id = start_campaign(api, 1, send_at=later.isoformat())
    before = api.wait(campaign_id, until=("scheduled",))
    response = api.http.patch(f"/api/v1/campaigns/{campaign_id}", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code
    after = api.status(campaign_id)
    assert (after["status"], after["scheduled_at"]) == (before["status"], before["scheduled_at"])


def test_control_of_an_unknown_campaign_is_404(server_factory: ServerFactory) -> None:
    _rt, api = server_factory.start()
    for action in ("pause", "resume", "cancel"):
        response = api.http.post(f"/api/v1/campaigns/nope/{action}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "campaign_not_found"
    response = api.http.patch("/api/v1/campaigns/nope", json={"send_at": None})
    assert response.status_code == 404
