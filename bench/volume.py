"""PostgreSQL at volume: seed a scratch database with tens of millions of messages (set-based,
``generate_series``) and print the plans of the hot queries (``EXPLAIN (ANALYZE, BUFFERS)``),
as shown in docs/scaling.md.

    python -m bench.volume seed postgresql+psycopg://…/scratch --campaigns 2000
    python -m bench.volume explain postgresql+psycopg://…/scratch

The database must be migrated first (``postroom migrate``). The shape: ``--campaigns``
finished campaigns of ``--per-campaign`` sent messages each (most of the table, as on a
server that has been sending for a year), then one live campaign of ``--live`` messages:
40 % sent, 55 % queued, 1 % sending, 4 % deferred (three quarters of those not due yet),
and events (delivered, a third opened) for the newest 10 % of campaigns and the live one.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, create_engine, text

from postroom.analytics.rollups import rebuild
from postroom.db.engine import normalise_database_url
from postroom.db.tables import messages

TENANT = "ten_volume"
LIVE = "cmp_live"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def campaign_id(number: int) -> str:
    return f"cmp_{number:08d}"


def seed(url: str, campaigns: int, per_campaign: int, live: int) -> None:
    engine = create_engine(normalise_database_url(url))
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        _parents(conn, campaigns)
        # Loading first and indexing after is several times faster than indexing each row.
        for index in messages.indexes:
            index.drop(conn)
        step("finished campaigns' messages", conn, _FINISHED, n=campaigns, per=per_campaign)
        step("live campaign's messages", conn, _LIVE, n=live)
        started = time.perf_counter()
        for index in messages.indexes:
            index.create(conn)
        print(f"indexes: {time.perf_counter() - started:.0f} s", flush=True)
        recent = max(1, campaigns // 10)
        step("events", conn, _EVENTS, first=campaigns - recent + 1, n=campaigns)
        counts = "UPDATE campaigns c SET {0}_count = s.n FROM (SELECT campaign_id, count(*) AS n"
        counts += " FROM messages WHERE status = '{0}' GROUP BY campaign_id) s"
        counts += " WHERE s.campaign_id = c.id"
        for status in ("queued", "sending", "sent", "deferred"):
            conn.execute(text(counts.format(status)))
        rebuild(conn, LIVE)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        step("vacuum analyze", conn, "VACUUM ANALYZE")
    engine.dispose()


def step(name: str, conn: Connection, sql: str, **params: Any) -> None:
    started = time.perf_counter()
    conn.execute(text(sql), {"t0": T0, **params})
    print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)


def _parents(conn: Connection, campaigns: int) -> None:
    for sql in (
        "INSERT INTO tenants (id, name, created_at) VALUES (:t, 'volume', :t0)",
        "INSERT INTO templates (id, tenant_id, name, subject, status, blob_key, variables,"
        " errors, created_at) VALUES ('tpl_volume', :t, 'v', 'Hi', 'ready', 'tpl', '[]',"
        " '[]', :t0)",
        "INSERT INTO files (id, tenant_id, filename, content_type, status, blob_key,"
        " created_at) VALUES ('fil_volume', :t, 'v.csv', 'text/csv', 'uploaded', 'fil', :t0)",
    ):
        conn.execute(text(sql), {"t": TENANT, "t0": T0})
    conn.execute(
        text(
            "INSERT INTO campaigns (id, tenant_id, name, template_id, file_id, from_email,"
            " metadata, status, file_warnings, rows_done, valid_rows, invalid_rows,"
            " duplicate_rows, created_at, started_at, completed_at)"
            " SELECT 'cmp_' || lpad(c::text, 8, '0'), :t, 'c' || c, 'tpl_volume', 'fil_volume',"
            " 'news@example.com', '{}'::json, 'completed', '[]'::json, 0, 0, 0,"
            " 0, :t0 + make_interval(hours => c), :t0 + make_interval(hours => c),"
            " :t0 + make_interval(hours => c + 1)"
            " FROM generate_series(1, :n) AS c"
            " UNION ALL SELECT :live, :t, 'live', 'tpl_volume', 'fil_volume', 'news@example.com',"
            " '{}', 'sending', '[]', 0, 0, 0, 0, now(), now(), NULL::timestamptz"
        ),
        {"t": TENANT, "t0": T0, "n": campaigns, "live": LIVE},
    )


# A message row as ingest and the sender leave it; the address repeats across campaigns.
_MESSAGE_COLUMNS = (
    "campaign_id, row_number, email, email_key, fields, status, attempts, available_at,"
    " first_attempt_at, possible_duplicate, sent_at, delivered_at, outcome, updated_at,"
    " message_id"
)
_FINISHED = f"""
INSERT INTO messages ({_MESSAGE_COLUMNS})
SELECT 'cmp_' || lpad(c::text, 8, '0'), i, 'u' || i || '@d' || (i % 500) || '.example',
       'u' || i || '@d' || (i % 500) || '.example', '{{"first_name":"Ann"}}', 'sent', 1,
       t, t, false, t, t, 'delivered', t, '<' || c || '.' || i || '@example.com>'
FROM generate_series(1, :n) AS c,
     LATERAL (SELECT :t0 + make_interval(hours => c) AS t) AS at,
     generate_series(1, :per) AS i
"""
_LIVE = f"""
INSERT INTO messages ({_MESSAGE_COLUMNS}, lease_owner, lease_expires_at)
SELECT '{LIVE}', i, 'u' || i || '@d' || (i % 500) || '.example',
       'u' || i || '@d' || (i % 500) || '.example', '{{"first_name":"Ann"}}', s.status,
       CASE WHEN s.status = 'queued' THEN 0 ELSE 1 END,
       CASE WHEN s.status = 'deferred' AND i % 4 <> 0 THEN now() + interval '1 hour'
            WHEN s.status = 'deferred' THEN now() - interval '1 minute'
            ELSE now() - interval '1 hour' END,
       CASE WHEN s.status = 'queued' THEN NULL ELSE now() END, false,
       CASE WHEN s.status = 'sent' THEN now() END, NULL, NULL, now(), NULL,
       CASE WHEN s.status = 'sending' THEN 'worker' END,
       CASE WHEN s.status = 'sending' THEN now() + interval '10 minutes' END
FROM generate_series(1, :n) AS i,
     LATERAL (SELECT CASE WHEN i % 100 < 40 THEN 'sent' WHEN i % 100 < 41 THEN 'sending'
                          WHEN i % 100 < 45 THEN 'deferred' ELSE 'queued' END AS status) AS s
"""
_EVENTS = f"""
INSERT INTO events (tenant_id, campaign_id, message_pk, type, source, recipient, occurred_at,
                    recorded_at, event_key, data)
SELECT '{TENANT}', m.campaign_id, m.id, k.type, 'ses', m.email, m.sent_at, m.sent_at,
       k.type || ':' || m.id, '{{}}'
FROM messages m
CROSS JOIN (VALUES ('delivered'), ('opened')) AS k(type)
WHERE (m.campaign_id >= 'cmp_' || lpad(CAST(:first AS text), 8, '0') OR m.campaign_id = '{LIVE}')
  AND m.status = 'sent' AND (k.type = 'delivered' OR m.row_number % 3 = 0)
ORDER BY m.id, k.type
"""

# The hot queries, written as the code sends them (parameters inlined for EXPLAIN).
QUERIES = {
    "claim (queued), in id order": f"""
SELECT id FROM messages WHERE campaign_id = '{LIVE}' AND status = 'queued'
  AND available_at <= now() ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED""",
    "claim (deferred), in id order": f"""
SELECT id FROM messages WHERE campaign_id = '{LIVE}' AND status = 'deferred'
  AND available_at <= now() ORDER BY id LIMIT 250 FOR UPDATE SKIP LOCKED""",
    "claim (queued)": f"""
SELECT id FROM messages WHERE campaign_id = '{LIVE}' AND status = 'queued'
  AND available_at <= now() ORDER BY available_at, id LIMIT 500 FOR UPDATE SKIP LOCKED""",
    "claim (deferred)": f"""
SELECT id FROM messages WHERE campaign_id = '{LIVE}' AND status = 'deferred'
  AND available_at <= now() ORDER BY available_at, id LIMIT 250 FOR UPDATE SKIP LOCKED""",
    "sending campaigns": "SELECT * FROM campaigns WHERE status = 'sending' ORDER BY id",
    "expired leases": """
SELECT id FROM messages WHERE status = 'sending' AND lease_expires_at < now()""",
    "campaign status": f"SELECT * FROM campaigns WHERE id = '{LIVE}'",
    "messages page": f"""
SELECT id, row_number, email, status, attempts, sent_at FROM messages
 WHERE campaign_id = '{LIVE}' AND id > {{after}} ORDER BY id LIMIT 101""",
    "messages page (status=deferred)": f"""
SELECT id, row_number, email, status, attempts, sent_at FROM messages
 WHERE campaign_id = '{LIVE}' AND status = 'deferred' ORDER BY id LIMIT 101""",
    "events page": f"""
SELECT * FROM events WHERE campaign_id = '{LIVE}' ORDER BY id LIMIT 101""",
    "events page (type=opened)": f"""
SELECT * FROM events WHERE campaign_id = '{LIVE}' AND type = 'opened' ORDER BY id LIMIT 101""",
    "analytics (minutes)": f"""
SELECT bucket, type, events, uniques FROM analytics_minutes WHERE campaign_id = '{LIVE}'
 ORDER BY bucket""",
    "analytics (domains)": f"""
SELECT * FROM analytics_domains WHERE campaign_id = '{LIVE}' ORDER BY sent DESC LIMIT 20""",
}


def explain(url: str, only: list[str] | None = None) -> None:
    engine = create_engine(normalise_database_url(url))
    with engine.connect() as conn:
        sizes = conn.execute(
            text(
                "SELECT relname, pg_size_pretty(pg_relation_size(oid)) FROM pg_class"
                " WHERE relname LIKE 'messages%' OR relname LIKE 'ix_messages%'"
                " OR relname LIKE 'uq_messages%' OR relname LIKE 'pk_messages%'"
                " ORDER BY pg_relation_size(oid) DESC"
            )
        ).all()
        conn.commit()
        print("relation sizes:", ", ".join(f"{n} {s}" for n, s in sizes))
        first = conn.execute(
            text("SELECT min(id) FROM messages WHERE campaign_id = :c"), {"c": LIVE}
        ).scalar_one()
        conn.commit()
        for name, sql in QUERIES.items():
            if only and name not in only:
                continue
            sql = sql.replace("{after}", str((first or 0) + 500_000))  # half way through
            # Run once to warm the cache as a busy server would be, then explain.
            with conn.begin() as transaction:
                conn.execute(text(sql)).all()
                transaction.rollback()
            with conn.begin() as transaction:
                plan = conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql)).scalars().all()
                transaction.rollback()
            print(f"\n-- {name}\n" + "\n".join(plan))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=("seed", "explain"))
    parser.add_argument("url")
    parser.add_argument("--campaigns", type=int, default=2000)
    parser.add_argument("--per-campaign", type=int, default=10_000)
    parser.add_argument("--live", type=int, default=1_000_000)
    parser.add_argument("--only", action="append")
    args = parser.parse_args()
    if args.action == "seed":
        seed(args.url, args.campaigns, args.per_campaign, args.live)
    else:
        explain(args.url, args.only)


if __name__ == "__main__":
    main()
