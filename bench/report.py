"""Writes docs/benchmarks.md (the latest table, ratios against the targets) and the plot of
ingest throughput against list size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TARGETS = {
    "ingest_sqlite_rows_per_second": 125_000,
    "ingest_postgresql_rows_per_second": 100_000,
    "send_share_of_ceiling": 0.80,
    "api_status_p99_ms": 20.0,
}


def write_report(results: dict[str, Any], docs: Path) -> None:
    docs.mkdir(parents=True, exist_ok=True)
    plot = _plot(results, docs / "benchmarks-ingest.png")
    lines = [
        "# Benchmarks",
        "",
        "Measured by `make bench` (see `bench/`); the raw figures are in `bench/results/`.",
        f"Run of {results['started_at']} at commit `{results['commit']}` on "
        f"{results['machine']['cpus']} CPUs, {results['machine']['memory_gb']} GiB, Python "
        f"{results['machine']['python']}. Every figure is paired with a baseline measured in the "
        "same run, because the machine is shared and noisy: compare ratios, not absolutes.",
        "",
    ]
    for kind in ("sqlite", "postgresql"):
        if kind in results:
            lines += _database_section(kind, results[kind])
    if plot:
        lines += ["## Cost curve", "", f"![ingest rows/s against list size]({plot.name})", ""]
    lines += _notes(docs)
    (docs / "benchmarks.md").write_text("\n".join(lines) + "\n")


def _database_section(kind: str, data: dict[str, Any]) -> list[str]:
    lines = [
        f"## {kind}",
        "",
        "### Ingest",
        "",
        "| rows | ours rows/s | floor rows/s | ours / floor | worker peak RSS MB |",
        "|---:|---:|---:|---:|---:|",
    ]
    for pair in data["ingest"]:
        ours, floor = pair["ours"], pair["floor"]
        lines.append(
            f"| {ours['rows']:,} | {ours['rows_per_second']:,} | {floor['rows_per_second']:,} | "
            f"{ours['rows_per_second'] / floor['rows_per_second']:.2f} | "
            f"{ours['worker_peak_rss_mb']} |"
        )
    target = TARGETS[f"ingest_{kind}_rows_per_second"]
    largest = data["ingest"][-1]["ours"]["rows_per_second"]
    lines += [
        "",
        f"Target: {target:,} rows/s; largest run reached {largest / target:.0%} of it.",
        "",
    ]
    send, ceiling = data["send"], data["ceiling"]
    share = send["messages_per_second"] / ceiling["messages_per_second"]
    lines += [
        "### Send",
        "",
        "| recipients | ours msg/s | ceiling msg/s | ours / ceiling | worker CPU ms/msg | sink |",
        "|---:|---:|---:|---:|---:|---|",
        f"| {send['recipients']:,} | {send['messages_per_second']:,} | "
        f"{ceiling['messages_per_second']:,} | {share:.2f} | "
        f"{send['worker_cpu_ms_per_message']} | {send['sink']} |",
        "",
        f"Target: ours / ceiling ≥ {TARGETS['send_share_of_ceiling']:.2f}.",
        "",
    ]
    load = send.get("api_under_load")
    if load:
        idle = send.get("api_idle") or {}
        lines += [
            "### API during the send",
            "",
            f"{load['requests']} requests at {load['rate']:.0f}/s to "
            f"`postroom api --processes {send.get('api_processes', 1)}` during the send "
            f"({load['errors']} errors), and the same load once the workers were idle "
            f"(the baseline; {idle.get('errors', '-')} errors).",
            "",
            "| endpoint | during send p50 / p95 / p99 ms | idle p50 / p95 / p99 ms |",
            "|---|---:|---:|",
        ]
        for endpoint in ("status", "messages"):
            lines.append(
                f"| {endpoint} | {_percentiles(load.get(endpoint))} | "
                f"{_percentiles(idle.get(endpoint))} |"
            )
        lines += ["", f"Target: status p99 ≤ {TARGETS['api_status_p99_ms']:.0f} ms, no errors.", ""]
    if "copy_against_insert" in data:
        lines += _copy_section(data["copy_against_insert"])
    if "api_during_ingest" in data:
        lines += _api_during_ingest_section(data["api_during_ingest"])
    if "webhooks" in data:
        lines += _webhooks_section(data["webhooks"])
    if "scale" in data:
        lines += _scale_section(data["scale"])
    return lines


def _copy_section(run: dict[str, Any]) -> list[str]:
    """File processing in one process, message rows by COPY and by executemany INSERTs."""
    copy, insert = run["copy"], run["insert"]
    return [
        "### Ingest: COPY against INSERT",
        "",
        f"The same {run['rows']:,}-row file processed in one process twice: message rows "
        "written with COPY (what the worker does) and with multi-row INSERTs.",
        "",
        "| rows | COPY rows/s | INSERT rows/s | COPY / INSERT |",
        "|---:|---:|---:|---:|",
        f"| {run['rows']:,} | {copy['rows_per_second']:,} | {insert['rows_per_second']:,} | "
        f"{run['copy_over_insert']:.2f} |",
        "",
    ]


def _api_during_ingest_section(run: dict[str, Any]) -> list[str]:
    """GET …/status at a fixed rate during a large ingest, against the same reads idle."""
    idle, during = run["idle"], run["during_ingest"]
    ratio = during["p99_ms"] / idle["p99_ms"] if idle.get("p99_ms") else float("nan")
    return [
        "### API during the ingest",
        "",
        f"`GET …/status` at {run['rate']:.0f}/s to `postroom api --processes "
        f"{run['api_processes']}` while one worker ingests {run['rows']:,} rows "
        f"({run['ingest_seconds']} s, {during['requests']} requests, {during['errors']} errors), "
        f"and the same reads with nothing running (the baseline; {idle['requests']} requests, "
        f"{idle['errors']} errors).",
        "",
        "| reads | p50 / p95 / p99 ms |",
        "|---|---:|",
        f"| during the ingest | {_percentiles(during)} |",
        f"| idle | {_percentiles(idle)} |",
        "",
        f"p99 during / idle: {ratio:.1f}. Target: p99 under {run['target_p99_ms']:.0f} ms.",
        "",
    ]


def _webhooks_section(runs: dict[str, Any]) -> list[str]:
    """Sending with a webhook endpoint for every event, against no endpoint in the same run."""
    base = runs["none"]["messages_per_second"]
    lines = [
        "### Send with webhooks",
        "",
        "The same send with an endpoint subscribed to every event (each message's `sent` and "
        "the campaign's end): none (the baseline), one that never answers (each try waits for "
        "the timeout), one that answers 200 at once.",
        "",
        "| endpoint | msg/s | / none | worker CPU ms/msg | deliveries it took | all delivered "
        "after the send (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("none", "hanging", "answering"):
        run = runs[name]
        lines.append(
            f"| {name} | {run['messages_per_second']:,} | "
            f"{run['messages_per_second'] / base:.2f} | {run['worker_cpu_ms_per_message']} | "
            f"{run.get('deliveries_taken', '-')} | "
            f"{run.get('webhook_drained_after_seconds') or '-'} |"
        )
    return [*lines, ""]


def _percentiles(p: dict[str, float] | None) -> str:
    if not p:
        return "-"
    return f"{p['p50_ms']} / {p['p95_ms']} / {p['p99_ms']}"


def _scale_section(scale: list[dict[str, Any]]) -> list[str]:
    lines = [
        "### Scale",
        "",
        "| workers | ours msg/s | ceiling msg/s (same processes) | ratio | machine CPU busy |",
        "|---:|---:|---:|---:|---:|",
    ]
    for pair in scale:
        ours, ceil = pair["ours"], pair["ceiling"]
        busy = ours.get("machine_cpu_busy")
        lines.append(
            f"| {ours['workers']} | {ours['messages_per_second']:,} | "
            f"{ceil['messages_per_second']:,} | "
            f"{ours['messages_per_second'] / ceil['messages_per_second']:.2f} | "
            f"{'-' if busy is None else f'{busy:.0%}'} |"
        )
    last = scale[-1]["ours"].get("machine_cpu_busy")
    if last is not None:
        limit = "the CPU (all cores busy)" if last >= 0.9 else "not the CPU (the sink or locks)"
        lines += ["", f"At {scale[-1]['ours']['workers']} workers the limit is {limit}."]
    return [*lines, ""]


def _plot(results: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axis = plt.subplots(figsize=(7, 4))
    for kind in ("sqlite", "postgresql"):
        if kind not in results:
            continue
        pairs = results[kind]["ingest"]
        sizes = [p["ours"]["rows"] for p in pairs]
        axis.plot(sizes, [p["ours"]["rows_per_second"] for p in pairs], "o-", label=f"{kind}")
        axis.plot(
            sizes, [p["floor"]["rows_per_second"] for p in pairs], "x--", label=f"{kind} floor"
        )
    axis.set_xscale("log")
    axis.set_xlabel("rows in the file")
    axis.set_ylabel("rows per second")
    axis.set_title("Ingest throughput against list size")
    axis.grid(True, alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _notes(docs: Path) -> list[str]:
    notes = docs / "benchmarks-notes.md"
    return [notes.read_text().rstrip(), ""] if notes.exists() else []
