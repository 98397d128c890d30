"""The webhook delivery loop a worker runs: keeps up to POSTROOM_WEBHOOK_CONCURRENCY
deliveries in flight, each a signed POST with a timeout, and records what came of it.

It shares nothing with sending but the database: a slow or dead endpoint holds at most its
own few slots (POSTROOM_WEBHOOK_ENDPOINT_CONCURRENCY) for at most the timeout, never a send.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx

from postroom import __version__
from postroom.observability.logs import log_step_failure
from postroom.runtime import Runtime
from postroom.webhooks import delivery_queue
from postroom.webhooks.destinations import PinnedRequest, PrivateDestination, pinned_request
from postroom.webhooks.payloads import event_body
from postroom.webhooks.retry_policy import RetryPolicy
from postroom.webhooks.signature import signature_header

log = logging.getLogger(__name__)

#: How much of a receiver's answer is kept in the log: enough to see what went wrong.
KEPT_ANSWER_BYTES = 300


class WebhookDispatcher:
    def __init__(self, rt: Runtime, worker_id: str, http: httpx.AsyncClient | None = None) -> None:
        settings = rt.settings
        self.rt = rt
        self.worker_id = worker_id
        self.policy = RetryPolicy(
            base_seconds=settings.webhook_retry_base_seconds,
            cap_seconds=settings.webhook_retry_cap_seconds,
            window_seconds=settings.webhook_retry_window_hours * 3600,
        )
        self.disable_after = timedelta(hours=settings.webhook_disable_after_hours)
        self.concurrency = settings.webhook_concurrency
        self.per_endpoint = settings.webhook_endpoint_concurrency
        self.timeout = settings.webhook_timeout_seconds
        self.allow_private = settings.webhook_allow_private_addresses
        self.http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,
            headers={"User-Agent": f"Postroom-Webhooks/{__version__}"},
        )
        self.busy: Counter[str] = Counter()

    async def run(self, stop: asyncio.Event, idle_seconds: float) -> None:
        """Until ``stop``: claim as many due deliveries as there are free slots, deliver
        each in its own task, and sleep when there is nothing due; on stop, finish what is
        in flight (every attempt is bounded by the timeout)."""
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                wanted = self.concurrency - len(in_flight)
                claimed = await self._claim(wanted)
                for delivery in claimed:
                    in_flight.add(asyncio.create_task(self._deliver(delivery)))
                if claimed and len(claimed) == wanted:
                    continue  # there may be more; a short claim means there is not
                waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(stop.wait())}
                waits |= in_flight
                sleep = asyncio.ensure_future(asyncio.sleep(idle_seconds))
                waits.add(sleep)
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for future in waits - in_flight:
                    future.cancel()
                in_flight = {task for task in in_flight if not task.done()}
        finally:
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
            await self.http.aclose()

    async def deliver_due(self) -> int:
        """One round: claim what is due (up to the concurrency) and deliver it all; returns
        how many were attempted. The loop above does this continuously."""
        claimed = await self._claim(self.concurrency)
        await asyncio.gather(*(self._deliver(delivery) for delivery in claimed))
        return len(claimed)

    async def _claim(self, limit: int) -> list[Any]:
        if limit <= 0:
            return []
        try:
            # The count of deliveries out goes to the thread as a copy: tasks finishing
            # on the loop change the original meanwhile.
            claimed = await asyncio.to_thread(self._claim_now, limit, Counter(self.busy))
        except Exception as exc:
            log_step_failure(log, "webhook claim", exc)
            return []
        for delivery in claimed:
            self.busy[delivery.endpoint_id] += 1
        return claimed

    def _claim_now(self, limit: int, busy: Counter[str]) -> list[Any]:
        now = self.rt.clock.now()
        with self.rt.db.read() as conn:
            if not delivery_queue.any_due(conn, now):
                return []  # the common case, without taking SQLite's write lock
        with self.rt.db.write() as conn:
            claimed = delivery_queue.claim_due(
                conn,
                self.worker_id,
                now,
                limit=limit,
                # Long enough for the request and the write after it; a worker that dies
                # mid-attempt leaves the delivery to be tried again after this.
                lease_seconds=self.timeout + 30,
                per_endpoint=self.per_endpoint,
                busy=busy,
            )
        return claimed

    async def _deliver(self, delivery: Any) -> None:
        try:
            await self._attempt(delivery)
        except Exception as exc:
            # Unrecorded, the delivery is tried again once its lease runs out.
            log_step_failure(log, f"webhook delivery {delivery.id}", exc)
        finally:
            self.busy[delivery.endpoint_id] -= 1
            if self.busy[delivery.endpoint_id] <= 0:
                del self.busy[delivery.endpoint_id]

    async def _attempt(self, delivery: Any) -> None:
        body = event_body(delivery)
        timestamp = int(self.rt.clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "Postroom-Signature": signature_header(delivery.secret, timestamp, body),
            "Postroom-Event-Id": delivery.event_uid,
            "Postroom-Event-Type": delivery.event_type,
            "Postroom-Delivery-Attempt": str(delivery.attempts + 1),
        }
        status_code: int | None = None
        retry_after: float | None = None
        try:
            target = PinnedRequest(delivery.url)
            if not self.allow_private:
                target = await pinned_request(delivery.url)
            async with self.http.stream(
                "POST",
                target.url,
                content=body,
                headers={**headers, **target.headers},
                extensions=target.extensions,
            ) as response:
                status_code = response.status_code
                retry_after = _retry_after(response.headers.get("Retry-After"))
                answer = await _first_bytes(response)
        except httpx.TimeoutException:
            error = f"no answer within {self.timeout:g} s"
        except PrivateDestination as exc:
            error = f"refused: {exc}"[:KEPT_ANSWER_BYTES]
        except (httpx.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}".strip()[:KEPT_ANSWER_BYTES]
        else:
            if 200 <= status_code < 300:
                await asyncio.to_thread(self._record_delivered, delivery, status_code)
                return
            error = f"HTTP {status_code}" + (f": {answer}" if answer else "")
        await asyncio.to_thread(self._record_failure, delivery, status_code, error, retry_after)

    def _record_delivered(self, delivery: Any, status_code: int) -> None:
        with self.rt.db.write() as conn:
            delivery_queue.record_delivered(
                conn, delivery, self.worker_id, status_code, self.rt.clock.now()
            )

    def _record_failure(
        self, delivery: Any, status_code: int | None, error: str, retry_after: float | None
    ) -> None:
        now = self.rt.clock.now()
        gone = status_code == 410
        next_at = (
            None
            if gone
            else self.policy.next_attempt(
                delivery.attempts + 1, delivery.created_at, now, retry_after=retry_after
            )
        )
        with self.rt.db.write() as conn:
            disabled = delivery_queue.record_failed_attempt(
                conn,
                delivery,
                self.worker_id,
                now,
                status_code=status_code,
                error=error,
                next_attempt_at=next_at,
                disable_after=self.disable_after,
                gone=gone,
            )
        if disabled is not None:
            log.warning(
                "webhook endpoint %s (%s) disabled: %s",
                delivery.endpoint_id,
                delivery.url,
                disabled,
            )


async def _first_bytes(response: httpx.Response) -> str:
    """The start of the answer, for the log; the rest is never read."""
    kept = b""
    async for chunk in response.aiter_raw():
        kept += chunk
        if len(kept) >= KEPT_ANSWER_BYTES:
            break
    return kept[:KEPT_ANSWER_BYTES].decode("utf-8", "replace").strip()


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare from webhook receivers: ignored)."""
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None
