"""The worker loop: one task processes files, a few send, one delivers webhooks, one keeps the
schedule (and the liveness beat), one applies retention hourly; each wakes on new work, on its
poll interval or on stop, whichever comes first. A worker runs the tasks of its roles only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from postroom import __version__
from postroom.campaigns import lifecycle, queue
from postroom.config import WORKER_ROLES
from postroom.db.notices import listening_for_work, notify_workers
from postroom.delivery.sender import Sender
from postroom.errors import PostroomError
from postroom.ingest.processor import FileProcessor
from postroom.observability.logs import log_context, log_step_failure
from postroom.retention.service import RETENTION_INTERVAL_SECONDS, run_retention
from postroom.runtime import Runtime
from postroom.transports import open_transport
from postroom.transports.base import Transport
from postroom.webhooks.dispatcher import WebhookDispatcher

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL_SECONDS = 1.0
#: A worker whose maintenance loop (every MAINTENANCE_INTERVAL_SECONDS, failing or not) has
#: not come round for this long is stalled: its event loop is blocked or a database call
#: hangs. Longer than SQLite's 30 s busy timeout, so a queue for the write lock is not a stall.
STALL_SECONDS = 120.0


class Worker:
    """Runs until ``stop`` is set; then finishes the batch in flight and returns."""

    def __init__(
        self,
        rt: Runtime,
        transport: Transport | None = None,
        *,
        roles: frozenset[str] = frozenset(WORKER_ROLES),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rt = rt
        self.roles = roles
        self._monotonic = monotonic
        self._last_beat = monotonic()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.transport = transport or open_transport(
            rt.settings.transport_url,
            pool_size=rt.settings.smtp_pool_size,
            timeout_seconds=rt.settings.smtp_timeout_seconds,
        )
        self._thread_stop = threading.Event()

    async def run(self, stop: asyncio.Event) -> None:
        # Every line the worker logs, from its tasks and threads too, names the worker; other
        # processes' writes wake its tasks at once (PostgreSQL LISTEN/NOTIFY).
        with (
            log_context(worker_id=self.worker_id),
            listening_for_work(self.rt.db, self.rt.wakeups),
        ):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        roles = ",".join(role for role in WORKER_ROLES if role in self.roles)
        log.info("worker %s started (roles %s)", self.worker_id, roles)
        try:
            await asyncio.gather(*self._tasks(stop), self._relay_stop(stop))
        finally:
            await self.transport.close()
            log.info("worker %s stopped", self.worker_id)

    def _tasks(self, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]:
        # The maintenance loop always runs: it is the liveness beat, and the schedule's
        # upkeep when this worker has that role.
        tasks = [self._maintain_loop(stop)]
        if "files" in self.roles:
            tasks.append(self._process_files(stop))
        if "send" in self.roles:
            # Several send loops keep the relay busy while another batch is being claimed,
            # rendered or recorded.
            tasks += [self._send(stop) for _ in range(self.rt.settings.send_concurrency)]
        if "webhooks" in self.roles:
            tasks.append(self._deliver_webhooks(stop))
        if "retention" in self.roles:
            tasks.append(self._keep_retention(stop))
        return tasks

    async def _relay_stop(self, stop: asyncio.Event) -> None:
        # File processing runs in a thread and checks a threading.Event between batches.
        await stop.wait()
        self._thread_stop.set()

    async def _process_files(self, stop: asyncio.Event) -> None:
        processor = FileProcessor(self.rt, self.worker_id, self._thread_stop)
        while not stop.is_set():
            try:
                did_work = await asyncio.to_thread(processor.process_next)
            except Exception as exc:
                _log_step_failure("file processing", exc)
                did_work = False
            if not did_work:
                await self._idle(stop)

    async def _send(self, stop: asyncio.Event) -> None:
        sender = Sender(self.rt, self.transport, self.worker_id)
        while not stop.is_set():
            try:
                handled = await sender.send_due(stopping=stop.is_set)
            except Exception as exc:
                _log_step_failure("send", exc)
                handled = 0
            if not handled:
                # Held back by a rate limit: wake when it allows the next message.
                wait = min(MAINTENANCE_INTERVAL_SECONDS, self._poll())
                if sender.wait_hint is not None:
                    wait = min(wait, sender.wait_hint)
                await self._idle(stop, wait)

    async def _deliver_webhooks(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await WebhookDispatcher(self.rt, self.worker_id).run(stop, self._poll())
            except Exception as exc:
                _log_step_failure("webhook delivery", exc)
                await self._idle(stop)

    async def _maintain_loop(self, stop: asyncio.Event) -> None:
        keeps_schedule = "schedule" in self.roles
        while not stop.is_set():
            wait = MAINTENANCE_INTERVAL_SECONDS
            try:
                if keeps_schedule:
                    wait = await asyncio.to_thread(self._maintain)
            except Exception as exc:
                _log_step_failure("maintenance", exc)
            self._last_beat = self._monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    def liveness(self) -> tuple[int, dict[str, Any]]:
        """What ``/healthz`` on the metrics port answers: 200 while the maintenance loop comes
        round, 503 ``worker_stalled`` once it has not for STALL_SECONDS. A database that is
        down does not make a worker stalled (its steps fail and it waits for the database),
        so an orchestrator does not restart workers for an outage they would only repeat.
        Without the ``schedule`` role the loop touches no database: its beat shows only that
        the worker's event loop turns."""
        since = round(self._monotonic() - self._last_beat, 3)
        if since <= STALL_SECONDS:
            return 200, {
                "status": "ok",
                "version": __version__,
                "worker_id": self.worker_id,
                "seconds_since_beat": since,
            }
        stalled = PostroomError(
            f"The worker's maintenance loop has not come round for {since:.0f} s.",
            code="worker_stalled",
            status=503,
            details={"worker_id": self.worker_id, "seconds_since_beat": since},
        )
        return stalled.status, stalled.to_body()

    def _maintain(self) -> float:
        """Start scheduled campaigns that are due, take back dead workers' leases, and
        complete campaigns with nothing left to send. Returns how long to wait: at most the
        interval, less when a scheduled campaign falls due sooner (it starts on time)."""
        now = self.rt.clock.now()
        with self.rt.db.write() as conn:
            started = lifecycle.start_due_campaigns(conn, now)
            if started:
                notify_workers(conn, "sending")
            queue.reclaim_expired_leases(conn, now)
            lifecycle.complete_finished_campaigns(conn, now)
            next_start = lifecycle.next_scheduled_start(conn)
        if started:
            self.rt.wakeups.notify()
        if next_start is None:
            return MAINTENANCE_INTERVAL_SECONDS
        until_start = (next_start - self.rt.clock.now()).total_seconds()
        return min(MAINTENANCE_INTERVAL_SECONDS, max(until_start, 0.0) + 0.005)

    async def _keep_retention(self, stop: asyncio.Event) -> None:
        # Due by the runtime's clock, so that a test can move time on and see it run; first
        # at start. Each run is batched and safe beside other workers' runs.
        due: datetime | None = None
        while not stop.is_set():
            now = self.rt.clock.now()
            if due is None or now >= due:
                due = now + timedelta(seconds=RETENTION_INTERVAL_SECONDS)
                try:
                    await asyncio.to_thread(run_retention, self.rt)
                except Exception as exc:
                    _log_step_failure("retention", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), MAINTENANCE_INTERVAL_SECONDS)

    def _poll(self) -> float:
        return self.rt.settings.poll_interval_seconds

    async def _idle(self, stop: asyncio.Event, timeout: float | None = None) -> None:
        stop_wait = asyncio.ensure_future(stop.wait())
        wake_wait = asyncio.ensure_future(self.rt.wakeups.wait(timeout or self._poll()))
        try:
            await asyncio.wait({stop_wait, wake_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stop_wait, wake_wait):
                task.cancel()


def _log_step_failure(step: str, exc: Exception) -> None:
    log_step_failure(log, step, exc)
