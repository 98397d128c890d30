"""Processes one generated recipient file of N rows in a fresh process and prints its peak
RSS: ``python -m tests.support.ingest_probe DATABASE_URL WORKDIR N``."""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import func, select

from postroom.db.tables import campaigns, messages
from postroom.ingest.processor import FileProcessor
from postroom.runtime import build_runtime
from tests.conftest import make_settings
from tests.integration.test_ingest_scale import prepare_campaign


def main() -> None:
    url, workdir, rows = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    rt = build_runtime(make_settings(url, workdir, 1), var_dir=workdir / "var")
    campaign_id = prepare_campaign(rt, rows)
    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    assert FileProcessor(rt, "probe", threading.Event()).process_next()
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with rt.db.read() as conn:
        count = conn.execute(
            select(func.count()).where(messages.c.campaign_id == campaign_id)
        ).scalar_one()
        status = conn.execute(
            select(campaigns.c.status).where(campaigns.c.id == campaign_id)
        ).scalar_one()
    assert (count, status) == (rows, "sending"), (count, status)
    print(json.dumps({"rows": rows, "before_kb": before_kb, "peak_kb": peak_kb, "s": seconds}))


if __name__ == "__main__":
    main()
