"""Webhooks on both databases: the endpoints API, fan-out of stored and campaign events,
signed deliveries to a real local HTTP receiver, retries, the retry window, disabling a dead
endpoint, and sending that never waits for a webhook."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from postroom.client import WebhookSignatureInvalid, verify_webhook
from postroom.clock import FrozenClock
from postroom.db.tables import webhook_deliveries
from postroom.events import service as events_service
from postroom.events import store as event_store
from postroom.runtime import Runtime, build_runtime
from postroom.tenants.service import create_tenant
from postroom.webhooks import fanout
from postroom.webhooks import service as webhooks
from postroom.webhooks.dispatcher import WebhookDispatcher
from postroom.webhooks.schemas import WebhookRequest
from tests.conftest import make_settings
from tests.integration.conftest import ServerFactory, new_client
from tests.integration.test_delivery_control import start_campaign
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer
from tests.support.webhook_receiver import Answer, WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def register(api: ApiClient, url: str, events: list[str]) -> dict[str, Any]:
    response = api.http.post("/api/v1/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def deliveries(api: ApiClient, webhook_id: str, **params: Any) -> list[dict[str, Any]]:
    response = api.http.get(f"/api/v1/webhooks/{webhook_id}/deliveries", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["deliveries"]
    return found


def wait_until(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# --- The endpoints API -------------------------------------------------------------------


def test_endpoints_are_created_listed_changed_and_deleted(
    client: ApiClient, runtime: Runtime, live_server: LiveServer
) -> None:
    created = register(
        client, "https://hooks.example.com/postroom", ["bounced", "delivered", "bounced"]
    )
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["events"] == ["bounced", "delivered"] and created["status"] == "active"
    webhook_id = created["id"]

    listed = client.http.get("/api/v1/webhooks").json()["webhooks"]
    assert [w["id"] for w in listed] == [webhook_id]
    assert "secret" not in listed[0]  # shown once, at creation
    shown = client.http.get(f"/api/v1/webhooks/{webhook_id}").json()
    assert "secret" not in shown and shown["url"] == "https://hooks.example.com/postroom"

    changed = client.http.patch(
        f"/api/v1/webhooks/{webhook_id}",
        json={"events": ["*", "opened"], "description": "CRM", "url": "http://127.0.0.1:9/x"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["events"] == ["*"] and changed.json()["description"] == "CRM"

    off = client.http.patch(f"/api/v1/webhooks/{webhook_id}", json={"enabled": False}).json()
    assert off["status"] == "disabled" and off["disabled_reason"] == "disabled through the API"
    on = client.http.patch(f"/api/v1/webhooks/{webhook_id}", json={"enabled": True}).json()
    assert on["status"] == "active" and on["disabled_reason"] is None

    rotated = client.http.post(f"/api/v1/webhooks/{webhook_id}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != created["secret"]

    assert client.http.delete(f"/api/v1/webhooks/{webhook_id}").status_code == 204
    gone = client.http.get(f"/api/v1/webhooks/{webhook_id}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "webhook_not_found"
    assert client.http.get("/api/v1/webhooks").json()["webhooks"] == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"url": "ftp://example.com/x", "events": ["sent"]}, 422, "invalid_webhook_url"),
        ({"url": "https://u:p@example.com/x", "events": ["sent"]}, 422, "invalid_webhook_url"),
        ({"url": "https:///nohost", "events": ["sent"]}, 422, "invalid_webhook_url"),
        ({"url": "https://example.com/x#f", "events": ["sent"]}, 422, "invalid_webhook_url"),
        (
            {"url": "https://example.com/x", "events": ["sent", "exploded"]},
            422,
            "unknown_event_type",
        ),
        ({"url": "https://example.com/x", "events": []}, 422, "invalid_request"),
        ({"url": "https://example.com/x"}, 422, "invalid_request"),
        ({"url": "https://example.com/x", "events": ["sent"], "x": 1}, 422, "invalid_request"),
    ],
)
def test_bad_endpoints_are_refused_with_a_code(
    client: ApiClient, live_server: LiveServer, body: dict[str, Any], status: int, code: str
) -> None:
    response = client.http.post("/api/v1/webhooks", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert client.http.get("/api/v1/webhooks").json()["webhooks"] == []  # nothing half-made


def test_endpoints_belong_to_their_tenant_and_are_limited(
    client: ApiClient, runtime: Runtime, live_server: LiveServer
) -> None:
    mine = register(client, "https://example.com/a", ["sent"])
    other = new_client(runtime, live_server, "other")
    try:
        for method, path in (
            ("GET", f"/api/v1/webhooks/{mine['id']}"),
            ("PATCH", f"/api/v1/webhooks/{mine['id']}"),
            ("DELETE", f"/api/v1/webhooks/{mine['id']}"),
            ("POST", f"/api/v1/webhooks/{mine['id']}/rotate-secret"),
            ("GET", f"/api/v1/webhooks/{mine['id']}/deliveries"),
        ):
            answer = other.http.request(method, path, json={} if method == "PATCH" else None)
            assert answer.status_code == 404, (method, path, answer.text)
        assert other.http.get("/api/v1/webhooks").json()["webhooks"] == []
    finally:
        other.close()
    for n in range(webhooks.MAX_ENDPOINTS_PER_TENANT - 1):
        register(client, f"https://example.com/{n}", ["sent"])
    over = client.http.post("/api/v1/webhooks", json={"url": "https://e.com", "events": ["*"]})
    assert over.status_code == 409 and over.json()["error"]["code"] == "too_many_webhooks"
    bad_filter = client.http.get(f"/api/v1/webhooks/{mine['id']}/deliveries?status=lost")
    assert bad_filter.json()["error"]["code"] == "invalid_status_filter"
    bad_cursor = client.http.get(f"/api/v1/webhooks/{mine['id']}/deliveries?cursor=zz")
    assert bad_cursor.json()["error"]["code"] == "invalid_cursor"
    assert client.http.get("/api/v1/webhooks/whk_nope").status_code == 404


# --- Delivery over HTTP ------------------------------------------------------------------


def test_events_reach_the_receiver_signed_once_each(
    server_factory: ServerFactory, receiver: WebhookReceiver
) -> None:
    rt, api = server_factory.start()
    hook = register(api, receiver.url, ["sent", "delivered", "campaign.completed"])
    campaign_id = start_campaign(api, 4)
    assert api.wait(campaign_id)["status"] == "completed"
    received = receiver.wait_for(5)

    events = [
        verify_webhook(hook["secret"], r.body, r.headers["Postroom-Signature"]) for r in received
    ]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event)
    assert sorted(e["data"]["recipient"] for e in by_type["sent"]) == [
        f"r{i}@example.com" for i in range(4)
    ]
    assert all(e["data"]["campaign_id"] == campaign_id for e in by_type["sent"])
    (completed,) = by_type["campaign.completed"]
    assert completed["data"]["status"] == "completed"
    assert completed["data"]["counts"]["sent"] == 4 == completed["data"]["counts"]["total"]
    for r in received:
        assert r.headers["Postroom-Event-Id"] == r.event["id"]
        assert r.headers["Postroom-Event-Type"] == r.event["type"]
        assert r.headers["Content-Type"] == "application/json"
    # The ids the receiver sees are the event store's, as the events API shows them.
    stored = api.http.get(f"/api/v1/campaigns/{campaign_id}/events", params={"type": "sent"})
    assert {f"evt_{e['id']}" for e in stored.json()["events"]} == {e["id"] for e in by_type["sent"]}

    # A provider's event (here: delivered, through the one path every event takes) is
    # delivered too, and a repeat of it is stored and delivered once.
    message_pk = api.messages(campaign_id)[0]["id"]
    for _ in range(2):
        with rt.db.write() as conn:
            message = event_store.message_by_id(conn, message_pk)
            events_service.record_message_event(
                conn,
                message,
                "delivered",
                source="smtp",
                recipient=message.email,
                occurred_at=rt.clock.now(),
                now=rt.clock.now(),
                event_key=f"test:delivered:{message_pk}",
                data={"smtp_response": "250 ok"},
            )
    (delivered,) = [r.event for r in receiver.wait_for(6) if r.event["type"] == "delivered"]
    assert delivered["data"]["message_id"] == message_pk
    assert delivered["data"]["details"] == {"smtp_response": "250 ok"}
    log = wait_until(
        lambda: (
            found if len(found := deliveries(api, hook["id"], status="delivered")) == 6 else None
        )
    )
    assert all(d["attempts"] == 1 and d["last_status_code"] == 200 for d in log)
    time.sleep(0.3)
    assert len(receiver.received) == 6  # nothing twice


def test_a_failing_receiver_gets_the_same_event_again_until_it_answers_2xx(
    server_factory: ServerFactory,
) -> None:
    answers = {1: Answer(500, body=b"database down"), 2: Answer(503, headers={})}
    with WebhookReceiver(lambda n: answers.get(n, Answer(204))) as receiver:
        _rt, api = server_factory.start(webhook_retry_base_seconds=0.05)
        hook = register(api, receiver.url, ["campaign.completed"])
        campaign_id = start_campaign(api, 1)
        api.wait(campaign_id)
        received = receiver.wait_for(3)
        assert len({r.event["id"] for r in received}) == 1
        assert [r.headers["Postroom-Delivery-Attempt"] for r in received] == ["1", "2", "3"]
        for r in received:  # each attempt is signed afresh
            verify_webhook(hook["secret"], r.body, r.headers["Postroom-Signature"])
        (delivery,) = wait_until(lambda: deliveries(api, hook["id"], status="delivered"))
        assert delivery["attempts"] == 3 and delivery["last_status_code"] == 204
        assert delivery["last_error"] is None and delivery["event_type"] == "campaign.completed"
        assert api.http.get(f"/api/v1/webhooks/{hook['id']}").json()["failing_since"] is None


def test_a_dead_endpoint_does_not_hold_up_sending(server_factory: ServerFactory) -> None:
    """Every delivery hangs until the timeout; the campaign still completes long before the
    deliveries could have, and the endpoint never has more than its share in flight."""
    in_flight = 0
    most = 0

    def hang(_n: int) -> Answer:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        time.sleep(1.5)
        in_flight -= 1
        return Answer(200)

    with WebhookReceiver(hang) as receiver:
        _rt, api = server_factory.start(webhook_timeout_seconds=1.0, webhook_endpoint_concurrency=2)
        hook = register(api, receiver.url, ["*"])
        started = time.monotonic()
        campaign_id = start_campaign(api, 60)
        status = api.wait(campaign_id)
        took = time.monotonic() - started
    assert status["status"] == "completed" and status["counts"]["sent"] == 60
    # 61 deliveries, 2 at a time, 1 s each would need 30 s: sending did not wait for them.
    assert took < 15, took
    assert most <= 2
    log = deliveries(api, hook["id"], limit=500)
    assert len(log) == 61
    assert sum(d["status"] == "pending" for d in log) >= 45


# --- Retry window and disabling, on a frozen clock ---------------------------------------

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def frozen(database_url: str, tmp_path: Path, server_port: int) -> Iterator[Runtime]:
    settings = make_settings(database_url, tmp_path, server_port, webhook_retry_base_seconds=30)
    rt = build_runtime(settings, clock=FrozenClock(START), var_dir=tmp_path / "var")
    try:
        yield rt
    finally:
        rt.close()


def endpoint(rt: Runtime, url: str, events: list[str]) -> tuple[str, str]:
    with rt.db.write() as conn:
        tenant_id, _key = create_tenant(conn, "acme", rt.clock.now())
        created = webhooks.create(
            conn, tenant_id, WebhookRequest(url=url, events=events), START, allow_private=True
        )
    return tenant_id, created.id


def announce(rt: Runtime, tenant_id: str, n: int) -> None:
    with rt.db.write() as conn:
        fanout.enqueue_payload(
            conn, tenant_id, "campaign.completed", {"campaign_id": f"c{n}"}, rt.clock.now()
        )


def delivery_rows(rt: Runtime) -> list[Any]:
    with rt.db.read() as conn:
        return list(conn.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.id)))


def deliver(rt: Runtime) -> int:
    return asyncio.run(WebhookDispatcher(rt, "test-worker").deliver_due())


def test_retries_back_off_and_stop_at_the_end_of_the_window(frozen: Runtime) -> None:
    clock = frozen.clock
    assert isinstance(clock, FrozenClock)
    with WebhookReceiver(lambda _n: Answer(500)) as receiver:
        tenant_id, _hook = endpoint(frozen, receiver.url, ["campaign.completed"])
        announce(frozen, tenant_id, 1)
        waits = []
        while (row := delivery_rows(frozen)[0]).status == "pending":
            assert deliver(frozen) == 1
            row = delivery_rows(frozen)[0]
            if row.status != "pending":
                break
            waits.append((row.next_attempt_at - clock.now()).total_seconds())
            assert deliver(frozen) == 0  # not due yet
            clock.advance(waits[-1])
        attempts = len(receiver.received)
    assert row.status == "failed" and row.attempts == attempts
    assert row.last_status_code == 500 and row.finished_at == START.replace(day=3)
    # Doubling from 30 s (with jitter of up to half), capped at an hour, within 24 h.
    assert 15 <= waits[0] <= 30 and 30 <= waits[1] <= 60 and 60 <= waits[2] <= 120
    assert max(waits) <= 3600 and 24 < attempts < 60


def test_an_endpoint_failing_for_three_days_is_disabled(frozen: Runtime) -> None:
    clock = frozen.clock
    assert isinstance(clock, FrozenClock)
    with WebhookReceiver(lambda _n: Answer(502)) as receiver:
        tenant_id, hook = endpoint(frozen, receiver.url, ["*"])
        announce(frozen, tenant_id, 1)
        deliver(frozen)
        clock.advance(71 * 3600)
        announce(frozen, tenant_id, 2)
        deliver(frozen)  # still within the three days
        with frozen.db.read() as conn:
            assert webhooks.get(conn, tenant_id, hook).status == "active"
        announce(frozen, tenant_id, 3)
        clock.advance(3600)
        assert deliver(frozen) == 2  # the second's retry and the third
        with frozen.db.read() as conn:
            view = webhooks.get(conn, tenant_id, hook)
            page = webhooks.deliveries(conn, tenant_id, hook, status=None, cursor=None, limit=10)
        assert view.status == "disabled"
        assert view.disabled_reason is not None and "HTTP 502" in view.disabled_reason
        assert view.failing_since == START
        assert {d.status for d in page.deliveries} == {"failed"}
        assert any(
            d.last_error and d.last_error.startswith("endpoint disabled") for d in page.deliveries
        )
        # A disabled endpoint gets no new events.
        announce(frozen, tenant_id, 4)
        assert len(delivery_rows(frozen)) == 3 and deliver(frozen) == 0

        # Enabled again, it starts afresh.
        with frozen.db.write() as conn:
            from postroom.webhooks.schemas import WebhookUpdate

            webhooks.change(
                conn, tenant_id, hook, WebhookUpdate(enabled=True), clock.now(), allow_private=True
            )
        announce(frozen, tenant_id, 5)
        receiver.answer = lambda _n: Answer(200)
        assert deliver(frozen) == 1
        with frozen.db.read() as conn:
            assert webhooks.get(conn, tenant_id, hook).failing_since is None


def test_a_success_clears_the_failure_clock_and_gone_disables_at_once(frozen: Runtime) -> None:
    clock = frozen.clock
    assert isinstance(clock, FrozenClock)
    script = [Answer(500), Answer(200)]
    with WebhookReceiver(lambda n: script[min(n, len(script)) - 1]) as receiver:
        tenant_id, hook = endpoint(frozen, receiver.url, ["campaign.completed"])
        announce(frozen, tenant_id, 1)
        deliver(frozen)
        with frozen.db.read() as conn:
            assert webhooks.get(conn, tenant_id, hook).failing_since == START
        clock.advance(60)
        deliver(frozen)
        with frozen.db.read() as conn:
            assert webhooks.get(conn, tenant_id, hook).failing_since is None
        # 429 with Retry-After: the next try waits at least that long.
        script[:] = [Answer(429, headers={"Retry-After": "900"})]
        announce(frozen, tenant_id, 2)
        deliver(frozen)
        row = delivery_rows(frozen)[-1]
        assert (row.next_attempt_at - clock.now()).total_seconds() >= 900
        script[:] = [Answer(410)]
        clock.advance(900)
        deliver(frozen)
        with frozen.db.read() as conn:
            view = webhooks.get(conn, tenant_id, hook)
        assert view.status == "disabled" and "410" in (view.disabled_reason or "")
        assert len(receiver.received) == 4


def test_a_wrong_secret_or_an_altered_body_fails_verification(
    server_factory: ServerFactory, receiver: WebhookReceiver
) -> None:
    _rt, api = server_factory.start()
    hook = register(api, receiver.url, ["campaign.completed"])
    api.wait(start_campaign(api, 1))
    (received,) = receiver.wait_for(1)
    header = received.headers["Postroom-Signature"]
    assert verify_webhook(hook["secret"], received.body, header)["type"] == "campaign.completed"
    for secret, body in (
        (hook["secret"][:-1] + "x", received.body),
        (hook["secret"], received.body.replace(b"completed", b"failed", 1)),
    ):
        with pytest.raises(WebhookSignatureInvalid):
            verify_webhook(secret, body, header)
