"""The analytics benchmark: one campaign of N messages and ~3N events seeded set-based on
PostgreSQL (generate_series), rollups built by ``rebuild``, then GET …/analytics and the
tenant-wide GET /api/v1/analytics timed over the real HTTP app against GET …/status."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.client import BenchClient
from bench.processes import Platform
from postroom.analytics.rollups import rebuild

TARGET_MS = 500.0
REQUESTS = 20
#: (type, which messages (a condition on i, the row number), extra copies, seconds after sent)
EVENT_MIX = (
    ("sent", "true", 1, "0"),
    ("delivered", "i % 100 < 95", 1, "30"),
    ("bounced", "i % 100 BETWEEN 95 AND 97", 1, "60"),
    ("opened", "i % 100 < 95 AND i % 10 < 3", 3, "(i * 37 + n * 3600) % 172800"),
    ("clicked", "i % 50 < 3", 1, "(i * 37) % 172800 + 120"),
    ("complained", "i % 500 = 1", 1, "86400"),
    ("unsubscribed", "i % 200 = 2", 1, "90000"),
)


def seed(database_url: str, campaign_id: str, messages: int) -> dict[str, Any]:
    """Messages over ~200 domains and their events over ~48 h, in a few INSERT … SELECTs."""
    engine = create_engine(database_url)
    started = time.perf_counter()
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=48)
    with engine.begin() as conn:
        tenant_id = conn.execute(
            text("SELECT tenant_id FROM campaigns WHERE id = :c"), {"c": campaign_id}
        ).scalar_one()
        conn.execute(
            text("UPDATE campaigns SET started_at = :t WHERE id = :c"), {"t": t0, "c": campaign_id}
        )
        conn.execute(
            text(
                "INSERT INTO messages (campaign_id, row_number, email, email_key, fields, status,"
                " attempts, available_at, possible_duplicate, updated_at, sent_at)"
                " SELECT :c, i, 'r' || i || '@d' || (i % 200) || '.example',"
                " 'r' || i || '@d' || (i % 200) || '.example', '{}', 'sent', 1, :t, false, :t,"
                " :t + make_interval(secs => i % 7200)"
                " FROM generate_series(1, :n) AS i"
            ),
            {"c": campaign_id, "t": t0, "n": messages},
        )
        for kind, where, copies, after in EVENT_MIX:
            data = (
                "jsonb_build_object('url', 'https://example.com/l' || ((i / 7) % 50))"
                if kind == "clicked"
                else "jsonb_build_object('bounce_type', CASE WHEN i % 3 = 0 THEN 'soft' ELSE"
                " 'hard' END, 'status', '5.1.' || (i % 4), 'bounce_subtype', 'General')"
                if kind == "bounced"
                else "'{}'::jsonb"
            )
            conn.execute(
                text(
                    "INSERT INTO events (tenant_id, campaign_id, message_pk, type, source,"
                    " recipient, occurred_at, recorded_at, event_key, data)"
                    f" SELECT :tenant, :c, m.id, '{kind}', 'bench', m.email,"
                    f" m.sent_at + make_interval(secs => {after}), :t,"
                    f" '{kind}:' || m.id || ':' || n, {data}"
                    " FROM (SELECT id, email, sent_at, row_number AS i FROM messages"
                    "       WHERE campaign_id = :c) AS m(id, email, sent_at, i)"
                    f" CROSS JOIN generate_series(1, {copies}) AS n"
                    f" WHERE {where} ORDER BY n, m.id"
                ),
                {"tenant": tenant_id, "c": campaign_id, "t": t0},
            )
        events = conn.execute(
            text("SELECT count(*) FROM events WHERE campaign_id = :c"), {"c": campaign_id}
        ).scalar_one()
        conn.execute(text("ANALYZE messages"))
        conn.execute(text("ANALYZE events"))
    seeded = time.perf_counter() - started
    started = time.perf_counter()
    with engine.begin() as conn:
        rebuild(conn, campaign_id)
    rebuilt = time.perf_counter() - started
    engine.dispose()
    return {
        "messages": messages,
        "events": events,
        "seed_seconds": round(seeded, 1),
        "rebuild_seconds": round(rebuilt, 1),
    }


def timings(client: BenchClient, path: str, requests: int = REQUESTS) -> dict[str, float]:
    client.http.get(path).raise_for_status()  # warm
    spent = []
    for _ in range(requests):
        started = time.perf_counter()
        client.http.get(path).raise_for_status()
        spent.append((time.perf_counter() - started) * 1000)
    spent.sort()
    return {
        "median_ms": round(statistics.median(spent), 1),
        "p95_ms": round(spent[max(0, int(len(spent) * 0.95) - 1)], 1),
    }


def measure_analytics(
    database_url: str, messages: int, workdir: Path, transport_url: str
) -> dict[str, Any]:
    platform = Platform(workdir, database_url, transport_url, workers=0)
    key = platform.start()
    try:
        client = BenchClient(platform.url, key)
        template_id = client.template("<p>Hi</p>", "Hi")
        csv_path = workdir / "one.csv"
        csv_path.write_text("email\nseed@example.com\n")
        # No worker runs: the campaign stays a row that the seeding fills.
        campaign_id = client.campaign(template_id, client.recipients(csv_path))
        result = seed(database_url, campaign_id, messages)
        status = timings(client, f"/api/v1/campaigns/{campaign_id}/status")
        analytics = timings(client, f"/api/v1/campaigns/{campaign_id}/analytics")
        tenant = timings(client, "/api/v1/analytics?group_by=day")
        funnel = client.http.get(f"/api/v1/campaigns/{campaign_id}/analytics").json()["funnel"]
    finally:
        platform.stop()
    return {
        **result,
        "target_ms": TARGET_MS,
        "campaign_analytics": analytics,
        "tenant_analytics": tenant,
        "baseline_status": status,
        "ratio_to_status": round(analytics["median_ms"] / max(status["median_ms"], 0.1), 1),
        "funnel": {name: stage["count"] for name, stage in funnel.items()},
    }
