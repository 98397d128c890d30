"""The Database: one SQLAlchemy engine per process, with read and write transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from postroom.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Connections each process keeps open. Connections past these (up to POOL_OVERFLOW more) are
# opened for a burst and closed after it, which costs PostgreSQL a new backend process every
# time, so callers should not run more database threads than POOL_SIZE (see api/app.py).
POOL_SIZE = 10
POOL_OVERFLOW = 10
SQLITE_BULK_CACHE_KIB = 64 * 1024


class Database:
    """Owns the engine. ``read()`` and ``write()`` each give one transaction.

    On SQLite a write transaction starts with ``BEGIN IMMEDIATE`` so that two writers queue on
    the busy timeout instead of failing when a read lock is upgraded; reads stay deferred and,
    with WAL, never block writers.
    """

    def __init__(self, url: str) -> None:
        self.url = normalise_database_url(url)
        self.engine = _create_engine(self.url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def read_latest(self) -> Iterator[Connection]:
        """For short lookups that need no snapshot: each statement sees what was committed
        when it ran. On PostgreSQL this runs outside a transaction, which spares a request the
        BEGIN and COMMIT round trips; on SQLite, where they cost nothing, it is ``read()``."""
        if self.is_sqlite:
            with self.read() as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(postroom_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def writes(self) -> Iterator[Connection]:
        """One connection for a series of write transactions, each ``with conn.begin():``.

        For long jobs that commit often (file processing): a connection of their own keeps
        SQLite's page cache warm from one transaction to the next, where ``write()`` may hand
        out a different pooled connection, with a cold cache, every time; on SQLite that
        cache is 64 MB while the connection is held.
        """
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                yield conn.execution_options(postroom_write=True)
                return
            # SQLite's page cache is per connection and 2 MB by default: too little for the
            # indexes of a campaign's messages, which file processing updates in random key
            # order. Only this connection gets more, and only while it is held, so the pool's
            # other connections (the sender's) never grow to that size. The DB-API
            # connection runs the pragma outside any transaction.
            raw = conn.connection.dbapi_connection
            assert raw is not None
            usual_size = raw.execute("PRAGMA cache_size").fetchone()[0]
            raw.execute(f"PRAGMA cache_size=-{SQLITE_BULK_CACHE_KIB}")
            try:
                yield conn.execution_options(postroom_write=True)
            finally:
                raw.execute(f"PRAGMA cache_size={usual_size}")  # frees what it held

    def check_reachable(self) -> None:
        """Raise ConfigError naming POSTROOM_DATABASE_URL when the database cannot be reached."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise ConfigError(
                "POSTROOM_DATABASE_URL", f"cannot connect to {self.safe_url}: {reason}"
            ) from None

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


def normalise_database_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here; SQLite paths get their folder created."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("POSTROOM_DATABASE_URL", f"not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        return _create_sqlite_engine(url, parsed.database)
    # No pre-ping: it would cost every request a round trip. A connection the server dropped
    # fails its one request, and SQLAlchemy then replaces every pooled connection as it is
    # next checked out; recycling keeps connections from outliving server-side timeouts.
    return create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_recycle=1800)


def _create_sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's begin event below.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        is_write = conn.get_execution_options().get("postroom_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if is_write else "BEGIN")

    return engine
