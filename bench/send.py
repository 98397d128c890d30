"""Send: a personalised campaign end to end into an SMTP sink, against the ceiling of
blasting pre-rendered messages at the same sink over the same pooled connections."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.client import BenchClient
from bench.data import SEND_SUBJECT, realistic_template, write_recipients
from bench.processes import Platform, busy_share, cpu_seconds, machine_cpu_ticks
from bench.sink import Sink

POOL_SIZE = 4


def measure_send(
    database_url: str,
    recipients: int,
    workdir: Path,
    sink: Sink,
    *,
    workers: int = 1,
    api_load: dict[str, float] | None = None,
    webhook_url: str | None = None,
    webhook_drain_seconds: float = 0.0,
) -> dict[str, Any]:
    """Messages/s from the first send to the last; worker CPU per message. With ``api_load``
    ({"rate": r, "seconds": s}) a separate process reads the API while the send runs; with
    ``webhook_url`` the tenant has an endpoint there for every event type, and the run waits
    up to ``webhook_drain_seconds`` after the send for its deliveries to be done."""
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path = workdir / f"send-{recipients}.csv"
    write_recipients(csv_path, recipients)
    platform = Platform(workdir / f"platform-{workers}", database_url, sink.transport_url, workers)
    key = platform.start()
    try:
        client = BenchClient(platform.url, key)
        hook_id = client.webhook(webhook_url, ["*"]) if webhook_url is not None else None
        template_id = client.template(realistic_template(8), SEND_SUBJECT)
        file_id = client.recipients(csv_path)
        campaign_id = client.campaign(template_id, file_id)
        client.wait_until_not(campaign_id, ("processing",))
        cpu_before = sum(cpu_seconds(pid) for pid in platform.worker_pids)
        machine_before = machine_cpu_ticks()
        load = _start_load(platform.url, key, campaign_id, api_load)
        status = client.wait_until_not(campaign_id, ("sending",))
        cpu_after = sum(cpu_seconds(pid) for pid in platform.worker_pids)
        machine_busy = busy_share(machine_before, machine_cpu_ticks())
        load_result = _finish_load(load)
        # The baseline: the same reads of the same campaign once the workers are idle.
        idle_result = _finish_load(_start_load(platform.url, key, campaign_id, api_load))
        drained = None
        if hook_id is not None and webhook_drain_seconds:
            drained = client.wait_for_deliveries(hook_id, webhook_drain_seconds)
    finally:
        platform.stop()
    sent = status["counts"]["sent"]
    if status["status"] != "completed" or sent != status["file"]["valid"]:
        raise RuntimeError(f"send benchmark went wrong: {status}")
    seconds = _seconds_between(status["started_at"], status["completed_at"])
    result = {
        "recipients": recipients,
        "sent": sent,
        "workers": workers,
        "seconds": round(seconds, 3),
        "messages_per_second": round(sent / seconds),
        "worker_cpu_ms_per_message": round(1000 * (cpu_after - cpu_before) / sent, 3),
        "machine_cpu_busy": machine_busy,
        "sink": sink.kind,
    }
    if hook_id is not None:
        result["webhook_drained_after_seconds"] = drained
    if load_result is not None:
        result["api_under_load"] = load_result
        result["api_idle"] = idle_result
        result["api_processes"] = platform.api_processes
    return result


def _seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _start_load(
    url: str, key: str, campaign_id: str, api_load: dict[str, float] | None
) -> subprocess.Popen[str] | None:
    if not api_load:
        return None
    command = [
        sys.executable,
        "-m",
        "bench.load",
        url,
        key,
        campaign_id,
        str(api_load["rate"]),
        str(api_load["seconds"]),
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def _finish_load(process: subprocess.Popen[str] | None) -> dict[str, Any] | None:
    if process is None:
        return None
    import json

    output, _ = process.communicate(timeout=600)
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def measure_ceiling(messages: int, sink: Sink, *, processes: int = 1) -> dict[str, Any]:
    """Pre-rendered messages, no database: what the client side of SMTP costs alone, in as
    many client processes as the send had workers."""
    share = messages // processes
    command = [sys.executable, "-m", "bench.ceiling", str(sink.port), str(share), str(POOL_SIZE)]
    children = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(processes)
    ]
    walls = []
    for child in children:
        output, _ = child.communicate(timeout=1800)
        if child.returncode != 0:
            raise RuntimeError("the ceiling client failed")
        walls.append(float(output.strip().splitlines()[-1]))
    seconds = max(walls)
    return {
        "messages": share * processes,
        "processes": processes,
        "seconds": round(seconds, 3),
        "messages_per_second": round(share * processes / seconds),
    }
