"""Ingest: a CSV uploaded through the API until every message row exists, against the floor
of parsing the same file with csv.reader and bulk-inserting tuples with no validation."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

from bench.client import BenchClient
from bench.data import write_recipients
from bench.processes import Platform, peak_rss_mb
from postroom.db.engine import Database
from postroom.db.migrate import migrate

FAR_FUTURE = "2099-01-01T00:00:00+00:00"  # so nothing is sent while ingest is measured


def measure_ingest(database_url: str, rows: int, workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path = workdir / f"recipients-{rows}.csv"
    shape = write_recipients(csv_path, rows)
    platform = Platform(workdir / "platform", database_url, "capture://outbox")
    key = platform.start()
    try:
        client = BenchClient(platform.url, key)
        template_id = client.template("<p>Hi {{ first_name }} of {{ city }}</p>", "Hi")
        file_id = client.recipients(csv_path)
        started = time.perf_counter()
        campaign_id = client.campaign(template_id, file_id, send_at=FAR_FUTURE)
        status = client.wait_until_not(campaign_id, ("processing",))
        seconds = time.perf_counter() - started
        rss = peak_rss_mb(platform.worker_pids[0])
    finally:
        platform.stop()
    expected = rows - shape["invalid"] - shape["duplicates"]
    if status["status"] != "scheduled" or status["file"]["valid"] != expected:
        raise RuntimeError(f"ingest benchmark went wrong: {status}")
    return {
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds),
        "worker_peak_rss_mb": round(rss, 1),
        "file_mb": round(csv_path.stat().st_size / 1e6, 1),
    }


def measure_floor(database_url: str, rows: int, workdir: Path) -> dict[str, Any]:
    """csv.reader + bulk insert of plain tuples into the same messages table (same indexes),
    with no validation: the cost of merely moving the bytes into the database (executemany on
    SQLite, COPY on PostgreSQL)."""
    csv_path = workdir / f"recipients-{rows}.csv"
    if not csv_path.exists():
        write_recipients(csv_path, rows)
    db = Database(database_url)
    migrate(db)
    now = "2026-01-01 00:00:00"
    _parent_rows(db)
    started = time.perf_counter()
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)
        _insert_floor(db, reader, now)
    seconds = time.perf_counter() - started
    db.dispose()
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds)}


def _insert_floor(db: Database, reader: Any, now: str) -> None:
    sql = (
        "INSERT INTO messages (campaign_id, row_number, email, email_key, fields, status, "
        "attempts, available_at, updated_at) VALUES ({})"
    )
    mark = "?" if db.is_sqlite else "%s"
    statement = sql.format(", ".join([mark] * 9))
    with db.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        batch: list[tuple[Any, ...]] = []
        for number, row in enumerate(reader, start=2):
            # No dedupe here: the row number keeps the unique index from refusing repeats.
            key = f"{row[0]}#{number}"
            batch.append(("cmp_floor", number, row[0], key, ",".join(row), "queued", 0, now, now))
            if len(batch) == 5000:
                _flush(db, raw, cursor, statement, batch)
                batch = []
        _flush(db, raw, cursor, statement, batch)


def _flush(db: Database, raw: Any, cursor: Any, statement: str, batch: list[Any]) -> None:
    if not batch:
        return
    if db.is_sqlite:
        cursor.execute("BEGIN")
        cursor.executemany(statement, batch)
        cursor.execute("COMMIT")
    else:
        copy_sql = (
            "COPY messages (campaign_id, row_number, email, email_key, fields, status, "
            "attempts, available_at, updated_at) FROM STDIN"
        )
        with cursor.copy(copy_sql) as copy:
            for row in batch:
                copy.write_row(row)
        raw.commit()


def _parent_rows(db: Database) -> None:
    """The tenant, template, file and campaign the floor's message rows belong to."""
    from datetime import UTC, datetime

    from postroom.db.tables import campaigns, files, templates, tenants

    now = datetime.now(UTC)
    common = {"tenant_id": "tn_floor", "created_at": now}
    with db.write() as conn:
        conn.execute(tenants.insert().values(id="tn_floor", name="floor", created_at=now))
        conn.execute(
            templates.insert().values(
                id="tpl_floor",
                name="f",
                subject="f",
                status="ready",
                blob_key="f.html",
                variables=[],
                errors=[],
                **common,
            )
        )
        conn.execute(
            files.insert().values(
                id="file_floor",
                filename="f.csv",
                content_type="text/csv",
                status="uploaded",
                blob_key="f.csv",
                **common,
            )
        )
        conn.execute(
            campaigns.insert().values(
                id="cmp_floor",
                name="floor",
                template_id="tpl_floor",
                file_id="file_floor",
                from_email="a@example.com",
                metadata={},
                status="processing",
                file_warnings=[],
                rows_done=0,
                valid_rows=0,
                invalid_rows=0,
                duplicate_rows=0,
                **common,
            )
        )
