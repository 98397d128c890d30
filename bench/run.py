"""``make bench``: every benchmark on SQLite and (with POSTROOM_BENCH_DATABASE_URL) on
PostgreSQL; results to bench/results/*.json and the table and plot in docs/benchmarks.md."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.analytics import measure_analytics
from bench.databases import fresh_database
from bench.ingest import measure_floor, measure_ingest
from bench.ingest_volume import measure_api_during_ingest, measure_copy_against_insert
from bench.send import measure_ceiling, measure_send
from bench.sink import running_sink
from bench.webhook_endpoints import answering_endpoint, hanging_endpoint

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "bench" / "results"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ingest-sizes", default="10000,100000,1000000")
    parser.add_argument("--send", type=int, default=50_000, help="recipients in the send run")
    parser.add_argument("--api-rate", type=float, default=200.0)
    parser.add_argument("--api-seconds", type=float, default=10.0)
    parser.add_argument("--workers", default="1,2,3", help="worker counts for the scale run")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; aiosmtpd sink allowed")
    parser.add_argument("--out", type=Path, default=None, help="results file (JSON)")
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument(
        "--analytics-messages", type=int, default=1_000_000, help="messages of the analytics run"
    )
    parser.add_argument("--no-analytics", action="store_true", help="skip the analytics run")
    parser.add_argument(
        "--no-webhooks", action="store_true", help="skip the send runs with webhook endpoints"
    )
    args = parser.parse_args(argv)
    results = run_all(args)
    out = args.out or RESULTS / f"{results['started_at'].replace(':', '')}-{results['commit']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {out}")
    if not args.no_report:
        from bench.report import write_report

        write_report(results, ROOT / "docs")
        print("report: docs/benchmarks.md")


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    server_url = os.environ.get("POSTROOM_BENCH_DATABASE_URL")
    kinds = [k for k in args.databases.split(",") if k == "sqlite" or server_url]
    results: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds")}
    results.update(machine_info())
    with tempfile.TemporaryDirectory(prefix="postroom-bench-") as tmp:
        work = Path(tmp)
        with running_sink(require_smtp_sink=not args.smoke) as sink:
            for kind in kinds:
                results[kind] = run_database(kind, work / kind, server_url, sink, args)
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return results


def run_database(
    kind: str, work: Path, server_url: str | None, sink: Any, args: argparse.Namespace
) -> dict[str, Any]:
    def on_fresh(measure: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        with fresh_database(kind, work, server_url) as url:
            started = time.perf_counter()
            result = measure(url)
            print(f"  {kind}: {result} ({time.perf_counter() - started:.0f} s)", flush=True)
            return result

    out: dict[str, Any] = {"ingest": []}
    for size in (int(s) for s in args.ingest_sizes.split(",")):
        out["ingest"].append(
            {
                "ours": on_fresh(lambda url, n=size: measure_ingest(url, n, work / f"i{n}")),
                "floor": on_fresh(lambda url, n=size: measure_floor(url, n, work / f"i{n}")),
            }
        )
    load = {"rate": args.api_rate, "seconds": args.api_seconds}
    out["send"] = on_fresh(
        lambda url: measure_send(url, args.send, work / "s", sink, api_load=load)
    )
    out["ceiling"] = measure_ceiling(args.send, sink)
    if not args.no_webhooks:
        out["webhooks"] = measure_webhooks(on_fresh, args.send, work, sink)
    if kind != "sqlite" and not args.no_analytics:
        # PostgreSQL only: the seeding is generate_series SQL.
        out["analytics"] = on_fresh(
            lambda url: measure_analytics(
                url, args.analytics_messages, work / "analytics", sink.transport_url
            )
        )
    if kind != "sqlite":
        largest = max(int(s) for s in args.ingest_sizes.split(","))
        out["copy_against_insert"] = on_fresh(
            lambda url: measure_copy_against_insert(url, largest, work / "copy")
        )
        out["api_during_ingest"] = on_fresh(
            lambda url: measure_api_during_ingest(
                url, largest, work / "pressure", idle_seconds=args.api_seconds
            )
        )
        out["scale"] = []
        for workers in (int(w) for w in args.workers.split(",")):
            out["scale"].append(
                {
                    "ours": on_fresh(
                        lambda url, w=workers: measure_send(
                            url, args.send, work / f"w{w}", sink, workers=w
                        )
                    ),
                    "ceiling": measure_ceiling(args.send, sink, processes=workers),
                }
            )
    return out


def measure_webhooks(
    on_fresh: Callable[[Callable[[str], dict[str, Any]]], dict[str, Any]],
    recipients: int,
    work: Path,
    sink: Any,
) -> dict[str, Any]:
    """The same send with an endpoint for every event: one that hangs (each try waits for
    the timeout), one that answers at once, and none (the baseline, in the same run)."""
    out: dict[str, Any] = {}
    runs = (("none", None), ("hanging", hanging_endpoint), ("answering", answering_endpoint))
    for name, endpoint in runs:
        if endpoint is None:
            out[name] = on_fresh(lambda url: measure_send(url, recipients, work / "wh-none", sink))
            continue
        with endpoint() as (hook_url, taken):
            # The answering endpoint is given time to take every delivery (counted); the
            # hanging one none: its deliveries wait on the timeout and the backoff.
            drain = 120.0 + recipients / 100 if name == "answering" else 0.0
            out[name] = on_fresh(
                lambda url, h=hook_url, n=name, d=drain: measure_send(
                    url, recipients, work / f"wh-{n}", sink, webhook_url=h, webhook_drain_seconds=d
                )
            )
            out[name]["deliveries_taken"] = taken[0]
    return out


def machine_info() -> dict[str, Any]:
    def git(*command: str) -> str:
        try:
            return subprocess.run(
                ["git", *command], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    from importlib.metadata import version

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "versions": {name: version(name) for name in ("sqlalchemy", "psycopg")},
    }


if __name__ == "__main__":
    main()
