"""PostgreSQL ingest at volume: file processing with COPY against the same with multi-row
INSERTs, and the API's status reads while a big file is ingested against the same reads idle.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any
from unittest import mock

from sqlalchemy import select

from bench.client import BenchClient
from bench.data import write_recipients
from bench.ingest import FAR_FUTURE
from bench.load import run as run_load
from bench.processes import API_PROCESSES, Platform
from postroom.config import Settings
from postroom.db.bulk import insert_rows
from postroom.db.tables import campaigns
from postroom.ingest.processor import FileProcessor
from postroom.runtime import build_runtime

#: The API answers status reads at this rate from one client, while idle and during ingest.
STATUS_RATE = 50.0
IDLE_SECONDS = 10.0
TARGET_P99_MS = 50.0


def measure_copy_against_insert(database_url: str, rows: int, workdir: Path) -> dict[str, Any]:
    """One file processed in this process twice on the same database (two campaigns): with
    COPY, as the worker does on PostgreSQL, and with executemany INSERTs of the same rows."""
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path = workdir / f"recipients-{rows}.csv"
    write_recipients(csv_path, rows)
    platform = Platform(workdir / "platform", database_url, "capture://outbox", workers=0)
    key = platform.start()
    try:
        client = BenchClient(platform.url, key)
        template_id = client.template("<p>Hi {{ first_name }}</p>", "Hi")
        file_id = client.recipients(csv_path)
        campaign_ids = [client.campaign(template_id, file_id, send_at=FAR_FUTURE) for _ in "ab"]
    finally:
        platform.stop()
    env = platform.env()
    settings = Settings(
        database_url=database_url,
        storage_url=env["POSTROOM_STORAGE_URL"],
        secret_key=env["POSTROOM_SECRET_KEY"],
    )
    rt = build_runtime(settings, var_dir=platform.workdir / "var")
    processor = FileProcessor(rt, "bench", threading.Event())
    out: dict[str, Any] = {"rows": rows}
    try:
        # Campaigns are claimed oldest first: COPY takes the first, INSERT the second.
        for method in ("copy", "insert"):
            started = time.perf_counter()
            if method == "copy":
                processor.process_next()
            else:
                with mock.patch("postroom.ingest.processor.insert_many", insert_rows):
                    processor.process_next()
            seconds = time.perf_counter() - started
            out[method] = {"seconds": round(seconds, 2), "rows_per_second": round(rows / seconds)}
        with rt.db.read() as conn:
            outcomes = set(
                conn.execute(
                    select(campaigns.c.status, campaigns.c.valid_rows).where(
                        campaigns.c.id.in_(campaign_ids)
                    )
                ).all()
            )
    finally:
        rt.close()
    if len(outcomes) != 1 or next(iter(outcomes))[0] != "scheduled":
        raise RuntimeError(f"COPY and INSERT did not both ingest the file: {outcomes}")
    ratio = out["copy"]["rows_per_second"] / out["insert"]["rows_per_second"]
    out["copy_over_insert"] = round(ratio, 2)
    return out


def measure_api_during_ingest(
    database_url: str, rows: int, workdir: Path, idle_seconds: float = IDLE_SECONDS
) -> dict[str, Any]:
    """``postroom api`` and one ``postroom worker``: status reads of a small campaign while
    nothing runs (the baseline, ``idle_seconds``), then of a campaign of ``rows`` rows while
    it is ingested."""
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path = workdir / f"recipients-{rows}.csv"
    if not csv_path.exists():
        write_recipients(csv_path, rows)
    small = workdir / "small.csv"
    small.write_text("email,first_name\nann@example.com,Ann\n")
    platform = Platform(workdir / "platform", database_url, "capture://outbox")
    key = platform.start()
    try:
        client = BenchClient(platform.url, key)
        template_id = client.template("<p>Hi {{ first_name }}</p>", "Hi")
        idle_id = client.campaign(template_id, client.recipients(small), send_at=FAR_FUTURE)
        client.wait_until_not(idle_id, ("processing",))
        file_id = client.recipients(csv_path)
        idle = asyncio.run(_status_reads(platform.url, key, idle_id, idle_seconds))
        started = time.perf_counter()
        big_id = client.campaign(template_id, file_id, send_at=FAR_FUTURE)
        done = threading.Event()

        def wait_for_ingest() -> None:
            try:
                client.wait_until_not(big_id, ("processing",))
            finally:
                done.set()

        waiter = threading.Thread(target=wait_for_ingest, daemon=True)
        waiter.start()
        during = asyncio.run(_status_reads(platform.url, key, big_id, 3600.0, until=done.is_set))
        waiter.join()
        seconds = time.perf_counter() - started
    finally:
        platform.stop()
    return {
        "rows": rows,
        "ingest_seconds": round(seconds, 1),
        "api_processes": API_PROCESSES,
        "rate": STATUS_RATE,
        "target_p99_ms": TARGET_P99_MS,
        "idle": idle,
        "during_ingest": during,
    }


async def _status_reads(
    url: str, key: str, campaign_id: str, seconds: float, until: Any = None
) -> dict[str, Any]:
    result: dict[str, Any] = await run_load(
        url, key, campaign_id, STATUS_RATE, seconds, kinds=("status",), until=until, at_least=20
    )
    return {"requests": result["requests"], "errors": result["errors"], **result["status"]}
