"""What ``Client`` and ``AsyncClient`` share: settings, request building and the public
methods, each a thin call of ``_run`` on an operation from ``calls``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

import postroom
from postroom.client import calls
from postroom.client.errors import TransportError
from postroom.client.models import Campaign
from postroom.client.retry import next_delay

USER_AGENT = f"postroom-python/{postroom.__version__}"


class Operations:
    """The SDK's methods. In ``Client`` they return results; in ``AsyncClient`` the same
    calls return coroutines to await."""

    poll_interval = 0.5

    def __init__(self, base_url: str, api_key: str, *, timeout: float, retries: int) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self._api_key = api_key

    def _run(self, op: calls.Op) -> Any:
        raise NotImplementedError

    def _request_args(self, call: calls.Call) -> dict[str, Any]:
        headers = {"User-Agent": USER_AGENT, **call.headers}
        if call.authorised:
            headers["Authorization"] = f"Bearer {self._api_key}"
        url = call.url if "://" in call.url else self.base_url + call.url
        return {
            "method": call.method,
            "url": url,
            "params": call.params,
            "json": call.json,
            "headers": headers,
        }

    def _wait_after_failure(
        self, call: calls.Call, attempt: int, failure: httpx.TransportError
    ) -> float:
        """Seconds to wait before sending ``call`` again after it failed to connect or timed
        out; ``TransportError`` when it is not to be retried."""
        wait = next_delay(attempt=attempt, retries=self.retries, replayable=call.idempotent)
        if wait is None:
            raise TransportError(f"{call.method} {call.url}: {failure!r}") from failure
        return wait

    def _wait_after_answer(
        self, call: calls.Call, attempt: int, response: httpx.Response
    ) -> float | None:
        """Seconds to wait before sending ``call`` again, or None when this is the answer."""
        return next_delay(
            attempt=attempt,
            retries=self.retries,
            replayable=call.idempotent,
            status=response.status_code,
            retry_after_header=response.headers.get("retry-after"),
        )

    def upload_template(self, source: str | Path, *, subject: str, name: str | None = None) -> Any:
        """Upload a template (a ``Path`` or existing file path is read, any other str is the
        markup), wait until processed; returns ``Template`` or raises ``TemplateInvalid``."""
        return self._run(calls.upload_template(source, name, subject, self.poll_interval / 5))

    def upload_file(
        self,
        path: str | Path,
        *,
        on_progress: Callable[[int, int], None] | None = None,
        content_type: str = "text/csv",
    ) -> Any:
        """Stream a recipients file; ``on_progress(bytes_sent, total)`` after each chunk."""
        return self._run(calls.upload_file(path, content_type, on_progress))

    def create_campaign(
        self,
        template_id: str,
        file_id: str,
        *,
        name: str | None = None,
        from_email: str | None = None,
        from_name: str | None = None,
        reply_to: str | None = None,
        send_at: datetime | str | None = None,
        metadata: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> Any:
        """Create a campaign; returns its ``Campaign`` status. Retried safely under one
        ``Idempotency-Key`` (a uuid4 unless given)."""
        return self._run(
            calls.create_campaign(
                template_id,
                file_id,
                name=name,
                from_email=from_email,
                from_name=from_name,
                reply_to=reply_to,
                send_at=send_at,
                metadata=metadata,
                idempotency_key=idempotency_key,
                extra=extra,
            )
        )

    def status(self, campaign_id: str) -> Any:
        return self._run(calls.status(campaign_id))

    def cancel(self, campaign_id: str) -> Any:
        return self._run(calls.control(campaign_id, "cancel"))

    def pause(self, campaign_id: str) -> Any:
        return self._run(calls.control(campaign_id, "pause"))

    def resume(self, campaign_id: str) -> Any:
        return self._run(calls.control(campaign_id, "resume"))

    def reschedule(self, campaign_id: str, send_at: datetime | str) -> Any:
        return self._run(calls.reschedule(campaign_id, send_at))

    def wait(
        self,
        campaign_id: str,
        *,
        on_progress: Callable[[Campaign], None] | None = None,
        timeout: float | None = None,
        poll_interval: float = 0.5,
    ) -> Any:
        """Poll until completed (returned), failed (``CampaignFailed``) or cancelled
        (returned); ``WaitTimeout`` after ``timeout`` seconds."""
        return self._run(calls.wait(campaign_id, on_progress, timeout, poll_interval, self._now))

    def add_suppression(self, email: str, *, detail: str | None = None) -> Any:
        return self._run(calls.add_suppression(email, detail))

    def remove_suppression(self, email: str) -> Any:
        return self._run(calls.remove_suppression(email))

    def iter_messages(self, campaign_id: str, *, status: str | None = None) -> Any:
        return self._pages(
            f"/api/v1/campaigns/{campaign_id}/messages", "messages", {"status": status}
        )

    def iter_campaigns(self, *, status: str | None = None) -> Any:
        return self._pages("/api/v1/campaigns", "campaigns", {"status": status})

    def iter_suppressions(self) -> Any:
        return self._pages("/api/v1/suppressions", "suppressions", {})

    def _pages(self, url: str, kind: str, params: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _now(self) -> float:
        raise NotImplementedError
