"""Readiness checks for ``/readyz``: the database answers with a schema this code can use,
and the blob store takes an object and gives it back. Synchronous; the API runs them in
threads under a timeout."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import text

from postroom.blobs.base import BlobStore
from postroom.db.engine import Database
from postroom.db.migrate import SchemaRevisions

log = logging.getLogger(__name__)

#: Where the blob probe writes (under the store's own prefix); each probe is deleted at once.
PROBE_PREFIX = "readyz/"
PROBE_BYTES = b"postroom readiness probe\n"

#: A blob probe that succeeded is trusted this long before the next round trip: on S3 each
#: probe is three billed requests, and load balancers probe every few seconds from each zone.
#: A failure is never reused, so a store that comes back is seen at the next probe.
BLOB_RECHECK_SECONDS = 30.0

OK = "ok"
NOT_CHECKED = "not checked"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One check's result: ``status`` is ``"ok"`` or a short reason fit for a public answer
    (the kind of failure, never the error's text, which may name hosts, paths or users);
    ``detail`` is that text, for the log."""

    status: str
    detail: str = ""

    @property
    def is_ok(self) -> bool:
        return self.status == OK

    @property
    def has_failed(self) -> bool:
        """Not ok, and not merely left unchecked because the check it depends on failed."""
        return self.status not in (OK, NOT_CHECKED)


def failed(exc: BaseException) -> Outcome:
    lines = str(exc).strip().splitlines()
    return Outcome(f"failed: {type(exc).__name__}", lines[0] if lines else "")


def check_database(db: Database, revisions: SchemaRevisions) -> dict[str, Outcome]:
    """``database`` and ``migrations``.

    The schema fails its check only when it is *behind* this code (a revision the code knows
    that is not its newest, or none at all). A database newer than the code is what a rolling
    upgrade looks like after ``postroom migrate`` ran and before this process was replaced;
    taking every old process out of the load balancer then would leave nothing serving.
    """
    try:
        with db.read_latest() as conn:
            conn.execute(text("SELECT 1"))
            try:
                current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except Exception:
                current = None  # no schema at all
    except Exception as exc:
        return {"database": failed(exc), "migrations": Outcome(NOT_CHECKED)}
    database = Outcome(OK)
    if current == revisions.head or (current is not None and current not in revisions.known):
        return {"database": database, "migrations": Outcome(OK)}
    behind = Outcome(
        "behind: run postroom migrate",
        f"the schema is at {current or 'no revision'}, this code needs {revisions.head}",
    )
    return {"database": database, "migrations": behind}


class BlobProbe:
    """A round trip through the BlobStore interface: write and commit a small object, read
    it back, delete it. This proves the store writable and readable, which a listing or an
    existence check cannot."""

    def __init__(
        self, blobs: BlobStore, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._blobs = blobs
        self._monotonic = monotonic
        self._good_until = 0.0

    def check(self) -> dict[str, Outcome]:
        """``blob_store``."""
        if self._monotonic() < self._good_until:
            return {"blob_store": Outcome(OK)}
        key = f"{PROBE_PREFIX}{secrets.token_hex(8)}"
        try:
            writer = self._blobs.writer(key, max_bytes=len(PROBE_BYTES))
            writer.write(PROBE_BYTES)
            writer.commit()
            try:
                read_back = self._blobs.read_bytes(key)
            finally:
                self._blobs.delete(key)
        except Exception as exc:
            return {"blob_store": failed(exc)}
        if read_back != PROBE_BYTES:
            return {"blob_store": Outcome("failed: read back other bytes", f"key {key}")}
        self._good_until = self._monotonic() + BLOB_RECHECK_SECONDS
        return {"blob_store": Outcome(OK)}


class CheckLog:
    """Logs a check when it starts failing (with the error's text) and when it recovers, not
    at every probe: orchestrators ask every few seconds."""

    def __init__(self) -> None:
        self._failing: dict[str, str] = {}

    def note(self, outcomes: Mapping[str, Outcome]) -> None:
        for name, outcome in outcomes.items():
            before = self._failing.get(name)
            if outcome.is_ok:
                if before is not None:
                    del self._failing[name]
                    log.warning("readiness: %s is ok again", name)
            elif outcome.has_failed and before != outcome.status:
                self._failing[name] = outcome.status
                log.warning("readiness: %s %s (%s)", name, outcome.status, outcome.detail)
