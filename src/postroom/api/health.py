"""Health for orchestrators: ``/healthz`` (liveness: the process answers) and ``/readyz``
(readiness: the database, its schema and the blob store are usable, checked now)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from postroom import __version__
from postroom.api.errors import error_responses
from postroom.db.migrate import schema_revisions
from postroom.errors import PostroomError
from postroom.observability.readiness import (
    NOT_CHECKED,
    BlobProbe,
    CheckLog,
    Outcome,
    check_database,
)
from postroom.runtime import Runtime

#: How long a probe waits for each check; one that takes longer fails as ``no answer``.
CHECK_TIMEOUT_SECONDS = 2.0

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Ready(BaseModel):
    status: Literal["ready"]
    version: str
    #: Each check by name (``database``, ``migrations``, ``blob_store``): ``ok``.
    checks: dict[str, str]


class Readiness:
    """Runs the checks in threads, each under CHECK_TIMEOUT_SECONDS. A check still running
    from an earlier probe (a database that stopped answering) is awaited again rather than
    started twice, so a hung backend holds one thread per check, never one per probe."""

    def __init__(self, rt: Runtime) -> None:
        revisions = schema_revisions()
        probe = BlobProbe(rt.blobs)
        self._checks: dict[str, Callable[[], dict[str, Outcome]]] = {
            "database": lambda: check_database(rt.db, revisions),
            "blob_store": probe.check,
        }
        self._names = {"database": ("database", "migrations"), "blob_store": ("blob_store",)}
        self._running: dict[str, asyncio.Future[dict[str, Outcome]]] = {}
        self._log = CheckLog()

    async def check(self) -> dict[str, Outcome]:
        results = await asyncio.gather(*(self._run(name) for name in self._checks))
        outcomes = {name: outcome for result in results for name, outcome in result.items()}
        self._log.note(outcomes)
        return outcomes

    async def _run(self, check: str) -> dict[str, Outcome]:
        running = self._running.get(check)
        if running is None or running.done():
            running = asyncio.ensure_future(asyncio.to_thread(self._checks[check]))
            self._running[check] = running
        try:
            return await asyncio.wait_for(asyncio.shield(running), CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            first, *depending = self._names[check]
            late = Outcome(
                f"no answer within {CHECK_TIMEOUT_SECONDS:g} s", "the check is still running"
            )
            return {first: late} | dict.fromkeys(depending, Outcome(NOT_CHECKED))


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process answers. It checks no dependency, so an orchestrator does not
    restart every process when the database blips; ``/readyz`` says whether it can work."""
    return Health(status="ok", version=__version__)


@router.get("/readyz", response_model=Ready, responses=error_responses(503))
async def readyz(request: Request) -> Ready:
    """Readiness: the database answers (``SELECT 1``) with a schema no older than this code,
    and the blob store takes a small object and gives it back. 503 ``not_ready`` names the
    checks that failed in ``details.failed``."""
    readiness: Readiness = request.app.state.readiness
    outcomes = await readiness.check()
    checks = {name: outcome.status for name, outcome in outcomes.items()}
    failing = [name for name, outcome in outcomes.items() if outcome.has_failed]
    if failing:
        raise PostroomError(
            "Not ready: " + ", ".join(f"{name} {checks[name]}" for name in failing) + ".",
            code="not_ready",
            status=503,
            details={"failed": failing, "checks": checks},
        )
    return Ready(status="ready", version=__version__, checks=checks)
