"""Work notices between processes: a write that makes work sends PostgreSQL ``NOTIFY`` in its
own transaction, and every worker process ``LISTEN``s on one dedicated connection and wakes
its sleeping tasks through :class:`~postroom.db.wakeups.Wakeups`. On SQLite there are no other
processes to tell, and nothing is sent.

A notice only saves waiting: workers still poll, so a notice lost while the listening
connection was down costs at most one poll interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from postroom.db.engine import Database
from postroom.db.wakeups import Wakeups

log = logging.getLogger(__name__)

CHANNEL = "postroom_work"
#: How often the listener looks up from waiting: to see a stop, and to check its connection.
LISTEN_TIMEOUT_SECONDS = 1.0
#: A connection that hears nothing for this long is asked a question, so that a connection
#: lost without a word (a dropped network path) is noticed and replaced.
CHECK_AFTER_SECONDS = 30.0
RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 30.0


def notify_workers(conn: Connection, kind: str) -> None:
    """Tell every worker process that work of ``kind`` (a word for the logs: "campaign",
    "sending") exists, once this transaction commits. PostgreSQL delivers a NOTIFY on commit
    and drops it on rollback, so no worker wakes for a write that did not happen. A no-op on
    SQLite. On an autocommit connection it is sent at once."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_notify(%s, %s)", (CHANNEL, kind))


class NoticeListener:
    """A thread holding one connection that ``LISTEN``s on :data:`CHANNEL`; every notice, and
    every (re)connection (notices sent while it was away are lost), wakes ``wakeups``. A lost
    connection is replaced, waiting longer after each failure (up to RECONNECT_MAX_SECONDS)."""

    def __init__(self, database_url: str, wakeups: Wakeups) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._wakeups = wakeups
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notice-listener", daemon=True)
        #: Set while a connection is listening (tests wait for it).
        self.listening = threading.Event()
        #: The listening connection's server process id, while there is one.
        self.backend_pid: int | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=LISTEN_TIMEOUT_SECONDS * 5)

    def _run(self) -> None:
        delay = RECONNECT_FIRST_SECONDS
        while not self._stop.is_set():
            try:
                self._listen()
                delay = RECONNECT_FIRST_SECONDS
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.warning(
                    "listening for work notices failed (%s); retrying in %.1f s; workers poll "
                    "meanwhile",
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                    delay,
                )
                self._stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
            finally:
                self.listening.clear()
                self.backend_pid = None

    def _listen(self) -> None:
        import psycopg

        with psycopg.connect(self._conninfo, autocommit=True, **_KEEPALIVES) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self.backend_pid = conn.info.backend_pid
            self.listening.set()
            self._wakeups.notify()  # whatever was announced while nobody listened
            quiet = 0.0
            while not self._stop.is_set():
                heard = False
                for _notice in conn.notifies(timeout=LISTEN_TIMEOUT_SECONDS):
                    heard = True
                    self._wakeups.notify()
                quiet = 0.0 if heard else quiet + LISTEN_TIMEOUT_SECONDS
                if quiet >= CHECK_AFTER_SECONDS:
                    conn.execute("SELECT 1")
                    quiet = 0.0


# TCP keepalives, so that the kernel also notices a peer that vanished.
_KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


@contextmanager
def listening_for_work(db: Database, wakeups: Wakeups) -> Iterator[NoticeListener | None]:
    """For a worker process's lifetime: a listener on PostgreSQL, nothing on SQLite."""
    if db.is_sqlite:
        yield None
        return
    listener = NoticeListener(db.url, wakeups)
    listener.start()
    try:
        yield listener
    finally:
        listener.stop()
