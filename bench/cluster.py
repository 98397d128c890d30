"""``make cluster``: PostgreSQL, API processes behind a small load balancer (bench/balancer.py),
workers and an SMTP sink on one machine; one campaign through the public API, timed from its
creation to its completion, with each process's share of the work read from its own
Prometheus metrics, and a check that the sink took every recipient exactly once.

``--workers 1,2,3`` repeats the run with each number of workers (all roles) on a fresh
database and compares their rates with the first: the figures of docs/scaling.md."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.client import BenchClient
from bench.data import SEND_SUBJECT, realistic_template, write_recipients
from bench.processes import (
    POSTROOM,
    Platform,
    busy_share,
    cpu_seconds,
    free_port,
    machine_cpu_ticks,
)

#: Requests the balancer's probes and the harness's scrapes make: not the API's work.
UPKEEP_ROUTES = ("/healthz", "/readyz", "/metrics")


@dataclass
class Cluster(Platform):
    """``apis`` single ``postroom api`` processes behind bench.balancer (whose port is the
    platform's URL) and one ``postroom worker`` per entry of ``worker_roles`` (None: all
    roles), each serving its metrics on a port of its own."""

    apis: int = 2
    worker_roles: list[str | None] = field(default_factory=lambda: [None, None, None])
    extra_env: dict[str, str] = field(default_factory=dict)
    api_ports: list[int] = field(default_factory=list)
    metrics_ports: list[int] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        # Workers at the API's niceness: on a shared machine, niced workers would measure the
        # neighbours' load rather than Postroom's scaling.
        return super().env() | {"POSTROOM_WORKER_NICENESS": "0"} | self.extra_env

    def start(self) -> str:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.run("migrate")
        self.api_ports = [free_port() for _ in range(self.apis)]
        for i, port in enumerate(self.api_ports):
            self._spawn(f"api{i + 1}", "api", "--port", str(port))
        for i, roles in enumerate(self.worker_roles):
            metrics_port = free_port()
            self.metrics_ports.append(metrics_port)
            extra = ["--roles", roles] if roles else []
            self._spawn(f"worker{i + 1}", "worker", "--metrics-port", str(metrics_port), *extra)
        balancer = [sys.executable, "-m", "bench.balancer", str(self.port)]
        self.processes.append(
            subprocess.Popen([*balancer, *map(str, self.api_ports)], cwd=Path(__file__).parents[1])
        )
        for port in self.api_ports:
            self._wait_ready(f"http://127.0.0.1:{port}/readyz")
        self._wait_ready(f"{self.url}/readyz")
        created = json.loads(self.run("tenant", "create", "cluster", "--json"))
        key: str = created["api_key"]
        return key

    def _spawn(self, name: str, *args: str) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self.processes.append(
            subprocess.Popen(
                [POSTROOM, *args],
                env=self.env(),
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )

    def _wait_ready(self, url: str) -> None:
        # Generous: on a loaded machine /readyz's own checks (2 s each) may time out a while.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{url} did not answer 200; see the logs in {self.workdir}")

    @property
    def api_pids(self) -> list[int]:
        return [p.pid for p in self.processes[: self.apis]]

    @property
    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.processes[self.apis : self.apis + len(self.worker_roles)]]

    def api_metrics(self) -> list[dict[str, float]]:
        return [_scrape(f"http://127.0.0.1:{port}/metrics") for port in self.api_ports]

    def worker_metrics(self) -> list[dict[str, float]]:
        return [_scrape(f"http://127.0.0.1:{port}/metrics") for port in self.metrics_ports]


def _scrape(url: str) -> dict[str, float]:
    """The counters this report needs from one process's /metrics."""
    text = httpx.get(url, timeout=10).text
    found = {"requests": 0.0, "rows": 0.0, "sent": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "postroom_http_requests_total":
                if sample.labels["route"] not in UPKEEP_ROUTES:
                    found["requests"] += sample.value
            elif sample.name == "postroom_ingested_rows_total":
                found["rows"] += sample.value
            elif sample.name == "postroom_sends_total" and sample.labels["outcome"] == "accepted":
                found["sent"] += sample.value
    return found


def run_cluster(
    database_url: str,
    recipients: int,
    workdir: Path,
    transport_url: str,
    *,
    apis: int = 2,
    worker_roles: list[str | None] | None = None,
    received: Callable[[], int] | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One campaign of ``recipients`` rows through the cluster; the rate from its creation to
    its completion and every process's part. ``received`` says how many messages the sink
    has taken (its count must grow by exactly the messages sent); ``env`` adds settings."""
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path = workdir / f"cluster-{recipients}.csv"
    write_recipients(csv_path, recipients)
    roles: list[str | None] = [None, None, None] if worker_roles is None else worker_roles
    cluster = Cluster(
        workdir / "cluster",
        database_url,
        transport_url,
        apis=apis,
        worker_roles=roles,
        extra_env=env or {},
    )
    try:
        key = cluster.start()
        received_before = received() if received else 0
        client = BenchClient(cluster.url, key, keep_alive=False)
        template_id = client.template(realistic_template(8), SEND_SUBJECT)
        file_id = client.recipients(csv_path)
        cpu_before = [cpu_seconds(pid) for pid in cluster.api_pids + cluster.worker_pids]
        machine_before = machine_cpu_ticks()
        campaign_id = client.campaign(template_id, file_id)
        # Timed by the campaign's own created_at and completed_at: a slow poll loses nothing
        # and leaves the cores to the workers.
        status = client.wait_until_not(campaign_id, ("processing", "sending"), poll_seconds=1.0)
        machine_busy = busy_share(machine_before, machine_cpu_ticks())
        cpu = [
            round(cpu_seconds(pid) - before, 2)
            for pid, before in zip(cluster.api_pids + cluster.worker_pids, cpu_before, strict=True)
        ]
        sink_received = _settled(received) - received_before if received else None
        api_metrics, worker_metrics = cluster.api_metrics(), cluster.worker_metrics()
    finally:
        cluster.stop()
    return _result(status, recipients, roles, api_metrics, worker_metrics, cpu, machine_busy) | {
        "sink_received": sink_received
    }


def _settled(received: Callable[[], int]) -> int:
    """The sink's count once it stops moving (its counter is written as sessions end)."""
    last, deadline = -1, time.monotonic() + 10
    while time.monotonic() < deadline:
        now = received()
        if now == last:
            return now
        last = now
        time.sleep(0.5)
    return last


def _result(
    status: dict[str, Any],
    recipients: int,
    roles: list[str | None],
    api_metrics: list[dict[str, float]],
    worker_metrics: list[dict[str, float]],
    cpu: list[float],
    machine_busy: float,
) -> dict[str, Any]:
    if status["status"] != "completed":
        raise RuntimeError(f"the campaign did not complete: {status}")
    created, started, completed = (
        datetime.fromisoformat(status[name])
        for name in ("created_at", "started_at", "completed_at")
    )
    seconds = (completed - created).total_seconds()
    valid = status["file"]["valid"]
    processes = [
        {"name": f"api{i + 1}", "roles": "api", "requests": int(m["requests"]), "cpu_seconds": c}
        for i, (m, c) in enumerate(zip(api_metrics, cpu, strict=False))
    ]
    processes += [
        {
            "name": f"worker{i + 1}",
            "roles": r or "all",
            "rows": int(m["rows"]),
            "sent": int(m["sent"]),
            "cpu_seconds": c,
        }
        for i, (m, r, c) in enumerate(
            zip(worker_metrics, roles, cpu[len(api_metrics) :], strict=True)
        )
    ]
    return {
        "recipients": recipients,
        "valid": valid,
        "sent": status["counts"]["sent"],
        "possible_duplicates": status["possible_duplicates"],
        "apis": len(api_metrics),
        "workers": len(worker_metrics),
        "seconds": round(seconds, 3),
        "ingest_seconds": round((started - created).total_seconds(), 3),
        "recipients_per_second": round(valid / seconds),
        "machine_cpu_busy": machine_busy,
        "processes": processes,
    }


def check_exactly_once(result: dict[str, Any]) -> None:
    """Every valid recipient sent once, counted once by the sink, nothing possibly doubled."""
    wanted = result["valid"]
    got = (result["sent"], result["sink_received"], result["possible_duplicates"])
    if got != (wanted, wanted, 0):
        raise RuntimeError(
            f"expected {wanted} sent, {wanted} at the sink and 0 possible duplicates; "
            f"got {got[0]} sent, {got[1]} at the sink, {got[2]} possible duplicates"
        )


def print_result(result: dict[str, Any]) -> None:
    print(
        f"\n{result['apis']} API processes behind bench.balancer, {result['workers']} workers: "
        f"{result['valid']:,} recipients in {result['seconds']:.1f} s from creation to completion"
        f" = {result['recipients_per_second']:,} recipients/s (file in after "
        f"{result['ingest_seconds']:.1f} s; machine CPU {result['machine_cpu_busy']:.0%} busy)"
    )
    totals = {
        what: sum(p.get(what, 0) for p in result["processes"])
        for what in ("requests", "rows", "sent")
    }

    def part(process: dict[str, Any], what: str) -> str:
        if what not in process:
            return "-"
        share = process[what] / totals[what] if totals[what] else 0.0
        return f"{process[what]:,} ({share:.0%})"

    header = ("process", "roles", "API requests", "rows ingested", "messages sent", "CPU s")
    print("  ".join(f"{h:<14}" for h in header))
    for p in result["processes"]:
        cells = (p["name"], p["roles"], part(p, "requests"), part(p, "rows"), part(p, "sent"))
        print("  ".join(f"{c:<14}" for c in cells) + f"  {p['cpu_seconds']:.1f}")
    if result["sink_received"] is not None:
        print(
            f"sink took {result['sink_received']:,} messages for {result['valid']:,} valid "
            f"recipients, {result['sent']:,} recorded sent, "
            f"{result['possible_duplicates']} possible duplicates"
        )


def print_scale(results: list[dict[str, Any]]) -> None:
    base = results[0]["recipients_per_second"]
    print("\nworkers  recipients/s  vs first  machine CPU busy")
    for r in results:
        ratio = r["recipients_per_second"] / base
        rate, busy = r["recipients_per_second"], r["machine_cpu_busy"]
        print(f"{r['workers']:>7}  {rate:>12,}  {ratio:>7.2f}x  {busy:.0%}")


def main(argv: list[str] | None = None) -> None:
    from bench.databases import fresh_database
    from bench.sink import running_sink

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--apis", type=int, default=2)
    parser.add_argument(
        "--workers", default="3", help="workers (all roles); a list such as 1,2,3 runs each"
    )
    parser.add_argument("--database-url", required=True, help="the PostgreSQL server to use")
    parser.add_argument("--out", type=Path, default=None, help="results file (JSON)")
    args = parser.parse_args(argv)
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="postroom-cluster-") as tmp,
        running_sink(require_smtp_sink=True, count=True) as sink,
    ):
        for workers in (int(w) for w in args.workers.split(",")):
            with fresh_database(
                "postgresql", Path(tmp), args.database_url, prefix="cluster"
            ) as url:
                result = run_cluster(
                    url,
                    args.recipients,
                    Path(tmp) / f"w{workers}",
                    sink.transport_url,
                    apis=args.apis,
                    worker_roles=[None] * workers,
                    received=sink.received,
                )
            print_result(result)
            check_exactly_once(result)
            results.append(result)
    if len(results) > 1:
        print_scale(results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("\nevery recipient was received exactly once in every run")


if __name__ == "__main__":
    main()
