"""A smoke run of every benchmark with tiny sizes, so `make bench` never rots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


# As long as the run below may take: on a busy machine, with both databases, over the
# suite's default of 300 s.
@pytest.mark.timeout(600)
def test_every_benchmark_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = dict(os.environ)
    databases = "sqlite"
    if os.environ.get("POSTROOM_TEST_DATABASE_URL"):
        env["POSTROOM_BENCH_DATABASE_URL"] = os.environ["POSTROOM_TEST_DATABASE_URL"]
        databases += ",postgresql"
    command = [
        sys.executable,
        "-m",
        "bench.run",
        "--smoke",
        "--ingest-sizes",
        "200,400",
        "--send",
        "60",
        "--api-rate",
        "20",
        "--api-seconds",
        "1",
        "--workers",
        "1,2",
        "--analytics-messages",
        "1000",
        "--databases",
        databases,
        "--out",
        str(out),
        "--no-report",
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads(out.read_text())
    for kind in databases.split(","):
        data = results[kind]
        assert [p["ours"]["rows"] for p in data["ingest"]] == [200, 400]
        assert all(
            p["ours"]["rows_per_second"] > 0 < p["floor"]["rows_per_second"] for p in data["ingest"]
        )
        assert data["send"]["sent"] > 50
        assert data["ceiling"]["messages_per_second"] > 0
        assert data["send"]["api_under_load"]["errors"] == 0
        assert data["send"]["api_idle"]["errors"] == 0
        hooks = data["webhooks"]
        assert all(hooks[name]["sent"] > 50 for name in ("none", "hanging", "answering"))
        # Every sent event and the campaign's end, delivered.
        assert hooks["answering"]["deliveries_taken"] == hooks["answering"]["sent"] + 1
        assert hooks["answering"]["webhook_drained_after_seconds"] is not None
    if "postgresql" in results:
        scale = results["postgresql"]["scale"]
        assert [p["ours"]["workers"] for p in scale] == [1, 2]
        assert all(0 < p["ours"]["machine_cpu_busy"] <= 1 for p in scale)
        copy = results["postgresql"]["copy_against_insert"]
        assert copy["rows"] == 400 and copy["copy_over_insert"] > 0
        during = results["postgresql"]["api_during_ingest"]
        assert during["idle"]["errors"] == 0 == during["during_ingest"]["errors"]
        assert during["idle"]["p99_ms"] > 0 and during["during_ingest"]["requests"] > 0
        analytics = results["postgresql"]["analytics"]
        assert analytics["funnel"]["sent"] == 1000 and analytics["funnel"]["delivered"] == 950
        assert analytics["events"] > 2500

    from bench.report import write_report

    write_report(results, tmp_path / "docs")
    report = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert "### Ingest" in report and "### Send" in report and "ours / ceiling" in report
    if "postgresql" in results:
        assert "COPY / INSERT" in report and "### API during the ingest" in report
