"""A fixed-rate reader of the API (open loop): ``python -m bench.load URL KEY CAMPAIGN RATE
SECONDS``; prints latency percentiles of GET status and GET messages as JSON."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time

import httpx


async def run(
    url: str, key: str, campaign_id: str, rate: float, seconds: float
) -> dict[str, object]:
    latencies: dict[str, list[float]] = {"status": [], "messages": []}
    errors = 0
    paths = {
        "status": f"/api/v1/campaigns/{campaign_id}/status",
        "messages": f"/api/v1/campaigns/{campaign_id}/messages?limit=100",
    }
    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
        limits=httpx.Limits(max_connections=64),
    ) as client:

        async def one(kind: str) -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                response = await client.get(paths[kind])
                if response.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
                return
            latencies[kind].append((time.perf_counter() - started) * 1000)

        tasks = []
        start = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one("status" if i % 2 == 0 else "messages")))
        await asyncio.gather(*tasks)
    return {
        "rate": rate,
        "requests": total,
        "errors": errors,
        **{kind: _percentiles(values) for kind, values in latencies.items()},
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {}
    cuts = statistics.quantiles(values, n=100)
    return {
        "p50_ms": round(cuts[49], 2),
        "p95_ms": round(cuts[94], 2),
        "p99_ms": round(cuts[98], 2),
    }


def main() -> None:
    url, key, campaign_id, rate, seconds = sys.argv[1:6]
    print(json.dumps(asyncio.run(run(url, key, campaign_id, float(rate), float(seconds)))))


if __name__ == "__main__":
    main()
