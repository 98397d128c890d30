"""The benchmark's Message Centre: uploads and campaign calls over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx


class BenchClient:
    def __init__(self, base_url: str, api_key: str, *, keep_alive: bool = True) -> None:
        # Without keep-alive every request opens a connection of its own, so a layer-4
        # balancer spreads the requests (it can only spread connections).
        limits = httpx.Limits() if keep_alive else httpx.Limits(max_keepalive_connections=0)
        self.http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=120,
            limits=limits,
        )

    def _upload(self, path: str, body: dict[str, str], content: Any) -> str:
        ticket = self.http.post(path, json=body)
        ticket.raise_for_status()
        data = ticket.json()
        put = httpx.put(data["upload_url"], content=content, headers=data["headers"], timeout=600)
        put.raise_for_status()
        return str(data.get("template_id") or data.get("file_id"))

    def template(self, html: str, subject: str) -> str:
        return self._upload(
            "/api/v1/templates/presigned-url", {"name": "bench", "subject": subject}, html.encode()
        )

    def recipients(self, csv_path: Path) -> str:
        def chunks() -> Iterator[bytes]:
            with csv_path.open("rb") as fh:
                while block := fh.read(1 << 20):
                    yield block

        return self._upload(
            "/api/v1/files/presigned-url",
            {"filename": csv_path.name, "content_type": "text/csv"},
            chunks(),
        )

    def campaign(self, template_id: str, file_id: str, **extra: Any) -> str:
        response = self.http.post(
            "/api/v1/campaigns", json={"template_id": template_id, "file_id": file_id, **extra}
        )
        response.raise_for_status()
        return str(response.json()["transaction_id"])

    def webhook(self, url: str, events: list[str]) -> str:
        response = self.http.post("/api/v1/webhooks", json={"url": url, "events": events})
        response.raise_for_status()
        return str(response.json()["id"])

    def wait_for_deliveries(self, webhook_id: str, timeout: float) -> float | None:
        """Seconds until the endpoint has no pending delivery; None if it still has some."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            response = self.http.get(
                f"/api/v1/webhooks/{webhook_id}/deliveries", params={"status": "pending"}
            )
            response.raise_for_status()
            if not response.json()["deliveries"]:
                return round(time.monotonic() - started, 3)
            time.sleep(0.2)
        return None

    def status(self, campaign_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/campaigns/{campaign_id}/status")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def wait_until_not(
        self,
        campaign_id: str,
        statuses: tuple[str, ...],
        timeout: float = 3600,
        poll_seconds: float = 0.05,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(campaign_id)
            if status["status"] not in statuses:
                return status
            time.sleep(poll_seconds)
        raise TimeoutError(f"campaign {campaign_id} still in {statuses}")
