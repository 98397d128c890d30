"""Analytics: exact funnel, time series, links, bounce reasons and domains of a seeded
campaign; rollups kept incrementally equal a rebuild; the tenant-wide view sums only the
tenant's campaigns; bad windows are 422 with codes and another tenant's campaign is 404."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from postroom.analytics.rollups import rebuild
from postroom.db.tables import (
    analytics_bounces,
    analytics_domains,
    analytics_links,
    analytics_minutes,
    events,
)
from postroom.events.service import record_provider_events
from postroom.events.ses_records import ProviderEvent
from postroom.runtime import Runtime
from tests.integration.conftest import new_client
from tests.integration.test_campaign_flow import csv_bytes
from tests.integration.test_cli import cli_env, postroom
from tests.support.api_client import ApiClient
from tests.support.live_server import LiveServer

# On the hour, so the events 25 h later (later + 3 and + 10 minutes) share one hour bucket.
T0 = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
ROLLUPS = (analytics_minutes, analytics_links, analytics_bounces, analytics_domains)


def sent_campaign(client: ApiClient, emails: list[str]) -> tuple[str, list[dict[str, Any]]]:
    template_id = client.upload_template("<p>Hi</p>", "Hi")
    file_id = client.upload_file(csv_bytes([["email"], *([e] for e in emails)]))
    campaign_id = client.create_campaign(template_id=template_id, file_id=file_id).json()[
        "transaction_id"
    ]
    assert client.wait(campaign_id)["status"] == "completed"
    by_email = {m["email"]: m for m in client.messages(campaign_id)}
    return campaign_id, [by_email[e] for e in emails]


def pin_sent(rt: Runtime, campaign_id: str) -> None:
    """The campaign's real sent events (written by the send path), moved to T0 so that the
    expected buckets do not depend on when the test ran; its rollups rebuilt to match."""
    with rt.db.write() as conn:
        moved = conn.execute(
            update(events)
            .where(events.c.campaign_id == campaign_id, events.c.type == "sent")
            .values(occurred_at=T0, recorded_at=T0)
        ).rowcount
        assert moved > 0
        rebuild(conn, campaign_id)


def event(m: dict[str, Any], kind: str, minutes: int, key: str, **data: Any) -> ProviderEvent:
    return ProviderEvent(
        kind, m["provider_message_id"], m["email"], T0 + timedelta(minutes=minutes), key, data
    )


def record(rt: Runtime, reported: list[ProviderEvent]) -> None:
    with rt.db.write() as conn:
        record_provider_events(conn, reported, source="ses", now=rt.clock.now())


def analytics(client: ApiClient, campaign_id: str) -> dict[str, Any]:
    answer = client.http.get(f"/api/v1/campaigns/{campaign_id}/analytics")
    assert answer.status_code == 200, answer.text
    return answer.json()


def snapshot(rt: Runtime, campaign_id: str) -> list[set[tuple[Any, ...]]]:
    with rt.db.read() as conn:
        return [
            {tuple(r) for r in conn.execute(select(t).where(t.c.campaign_id == campaign_id))}
            for t in ROLLUPS
        ]


def at(minutes: int, *, hour: bool = False) -> str:
    moment = T0 + timedelta(minutes=minutes)
    if hour:
        moment = moment.replace(minute=0)
    return moment.isoformat().replace("+00:00", "Z")


def test_campaign_analytics_exact_and_rebuild_equals_incremental(
    runtime: Runtime,
    client: ApiClient,
    live_server: LiveServer,
    database_url: str,
    tmp_path: Path,
) -> None:
    emails = ["a@example.com", "b@example.com", "c@example.org", "d@example.net"]
    campaign_id, (a, b, c, d) = sent_campaign(client, emails)
    pin_sent(runtime, campaign_id)
    x, y = "https://example.com/x", "https://example.com/y"
    later = 25 * 60  # past the first 24 h: hour buckets
    record(
        runtime,
        [
            *(event(m, "delivered", 1, f"{m['id']}-dl") for m in (a, b, c)),
            event(
                d, "bounced", 2, "d-b", bounce_type="hard", status="5.1.1", bounce_subtype="General"
            ),
            event(a, "opened", 5, "a-o1"),
            event(a, "opened", 6, "a-o2"),
            event(a, "clicked", 7, "a-c1", url=x),
            event(a, "clicked", 8, "a-c2", url=y),
            event(c, "complained", 30, "c-comp"),
            event(b, "opened", later + 3, "b-o"),
            event(b, "clicked", later + 10, "b-c", url=x),
        ],
    )
    view = analytics(client, campaign_id)
    assert view["funnel"] == {
        "sent": {"count": 4, "rate": None},
        "delivered": {"count": 3, "rate": 0.75},
        "bounced": {"count": 1, "rate": 0.25},
        "complained": {"count": 1, "rate": 0.25},
        "opened": {"count": 2, "rate": 0.666667},
        "clicked": {"count": 2, "rate": 0.666667},
        "unsubscribed": {"count": 0, "rate": 0.0},
    }
    series = view["time_series"]
    assert series["interval"] == "minute_then_hour"
    zero = dict.fromkeys(
        ("sent", "delivered", "opened", "clicked", "bounced", "complained", "unsubscribed"), 0
    )
    assert series["points"] == [
        {**zero, "at": at(0), "sent": 4},
        {**zero, "at": at(1), "delivered": 3},
        {**zero, "at": at(2), "bounced": 1},
        {**zero, "at": at(5), "opened": 1},
        {**zero, "at": at(7), "clicked": 1},
        {**zero, "at": at(30), "complained": 1},
        {**zero, "at": at(later, hour=True), "opened": 1, "clicked": 1},  # one hour bucket
    ]
    assert view["top_links"] == [
        {"url": x, "clicks": 2, "unique_clicks": 2},
        {"url": y, "clicks": 1, "unique_clicks": 0},
    ]
    assert view["bounce_reasons"] == [
        {"bounce_type": "hard", "status": "5.1.1", "subtype": "General", "count": 1}
    ]
    row = dict.fromkeys(
        ("sent", "delivered", "bounced", "complained", "opened", "clicked", "unsubscribed"), 0
    )
    assert view["domains"] == [
        {**row, "domain": "example.com", "sent": 2, "delivered": 2, "opened": 2, "clicked": 2},
        {**row, "domain": "example.net", "sent": 1, "bounced": 1},
        {**row, "domain": "example.org", "sent": 1, "delivered": 1, "complained": 1},
    ]

    # A random mix on top, then a rebuild from the events must give the same rollups.
    rng = random.Random(5)
    kinds = ["delivered", "opened", "opened", "clicked", "bounced", "complained", "unsubscribed"]
    mixed = []
    for i in range(80):
        kind = rng.choice(kinds)
        data: dict[str, Any] = {}
        if kind == "clicked":
            data["url"] = rng.choice([x, y, "https://example.com/z"])
        if kind == "bounced":
            data = {"bounce_type": rng.choice(["hard", "soft"]), "status": "5.0.0"}
        mixed.append(event(rng.choice([a, b, c, d]), kind, rng.randrange(3000), f"r{i}", **data))
    record(runtime, mixed)
    incremental = snapshot(runtime, campaign_id)
    before = analytics(client, campaign_id)
    with runtime.db.write() as conn:
        assert rebuild(conn, campaign_id) == 4 + 11 + 80
    assert snapshot(runtime, campaign_id) == incremental
    assert analytics(client, campaign_id) == before
    env = cli_env(tmp_path, database_url)
    rebuilt = postroom("analytics", "rebuild", campaign_id, env=env, cwd=tmp_path)
    assert f"from {4 + 11 + 80} events" in rebuilt.stdout
    assert snapshot(runtime, campaign_id) == incremental
    unknown = postroom("analytics", "rebuild", "cmp_nope", env=env, cwd=tmp_path, check=False)
    assert unknown.returncode == 1 and "campaign_not_found" in unknown.stderr

    other = new_client(runtime, live_server, "other")
    try:
        missing = other.http.get(f"/api/v1/campaigns/{campaign_id}/analytics")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "campaign_not_found"
    finally:
        other.close()


def test_tenant_analytics_sums_own_campaigns_and_rejects_bad_windows(
    runtime: Runtime, client: ApiClient, live_server: LiveServer
) -> None:
    first, (a, _b) = sent_campaign(client, ["a@example.com", "b@example.com"])
    second, (c,) = sent_campaign(client, ["c@example.com"])
    other = new_client(runtime, live_server, "other")
    try:
        theirs, (z,) = sent_campaign(other, ["z@example.com"])
        for campaign_id in (first, second, theirs):
            pin_sent(runtime, campaign_id)
        record(runtime, [event(m, "delivered", 90, f"{m['id']}-dl") for m in (a, c, z)])
        window = {"from": at(-60), "to": at(3 * 60), "group_by": "hour"}
        view = client.http.get("/api/v1/analytics", params=window).json()
        assert view["from"] == at(-60) and view["to"] == at(180)
        assert view["funnel"]["sent"] == {"count": 3, "rate": None}
        assert view["funnel"]["delivered"] == {"count": 2, "rate": 0.666667}
        points = [(p["at"], p["sent"], p["delivered"]) for p in view["time_series"]["points"]]
        assert points == [(at(0, hour=True), 3, 0), (at(90, hour=True), 0, 2)]
        assert [(r["id"], r["sent"], r["delivered"]) for r in view["campaigns"]] == sorted(
            [(first, 2, 1), (second, 1, 1)], key=lambda r: (-r[1], r[0])
        )
        outside = client.http.get(
            "/api/v1/analytics", params={"from": at(240), "to": at(360)}
        ).json()
        assert outside["funnel"]["sent"]["count"] == 0

        for params, code in (
            ({"from": "2026-13-01"}, "invalid_date"),
            ({"from": "2026-11-02", "to": "2026-11-01"}, "invalid_range"),
            ({"from": "2026-01-01", "to": "2026-03-01", "group_by": "hour"}, "range_too_large"),
            ({"group_by": "week"}, "invalid_request"),
        ):
            answer = client.http.get("/api/v1/analytics", params=params)
            assert answer.status_code == 422, params
            assert answer.json()["error"]["code"] == code
    finally:
        other.close()
