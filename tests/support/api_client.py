"""A thin test client that performs the API flow exactly as a Message Centre would."""

from __future__ import annotations

import time
from typing import Any

import httpx


class ApiClient:
    def __init__(self, base_url: str, api_key: str) -> None:
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        )

    def close(self) -> None:
        self.http.close()

    def upload_template(self, html: str | bytes, subject: str, name: str = "welcome") -> str:
        ticket = self.http.post(
            "/api/v1/templates/presigned-url", json={"name": name, "subject": subject}
        )
        assert ticket.status_code == 201, ticket.text
        body = ticket.json()
        data = html.encode() if isinstance(html, str) else html
        put = httpx.put(body["upload_url"], content=data, headers=body["headers"], timeout=30)
        assert put.status_code in (200, 201), put.text
        template_id: str = body["template_id"]
        return template_id

    def upload_file(self, csv_bytes: bytes, filename: str = "list.csv") -> str:
        ticket = self.http.post(
            "/api/v1/files/presigned-url", json={"filename": filename, "content_type": "text/csv"}
        )
        assert ticket.status_code == 201, ticket.text
        body = ticket.json()
        put = httpx.put(body["upload_url"], content=csv_bytes, headers=body["headers"], timeout=30)
        assert put.status_code in (200, 201), put.text
        file_id: str = body["file_id"]
        return file_id

    def create_campaign(self, **body: Any) -> httpx.Response:
        headers = {}
        if "idempotency_key" in body:
            headers["Idempotency-Key"] = body.pop("idempotency_key")
        return self.http.post("/api/v1/campaigns", json=body, headers=headers)

    def status(self, campaign_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/campaigns/{campaign_id}/status")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def wait(
        self,
        campaign_id: str,
        until: tuple[str, ...] = ("completed", "failed", "cancelled"),
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(campaign_id)
            if status["status"] in until:
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"campaign still {status['status']}: {status}")
            time.sleep(0.05)

    def messages(self, campaign_id: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = dict(params)
            if cursor:
                query["cursor"] = cursor
            page = self.http.get(f"/api/v1/campaigns/{campaign_id}/messages", params=query)
            assert page.status_code == 200, page.text
            body = page.json()
            out += body["messages"]
            cursor = body["next_cursor"]
            if not cursor:
                return out
