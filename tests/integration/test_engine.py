"""The Database's connections: a held connection for a series of write transactions."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from postroom.db.engine import SQLITE_BULK_CACHE_KIB, Database


def _cache_size(conn: object) -> int:
    raw = conn.connection.dbapi_connection  # type: ignore[attr-defined]
    size: int = raw.execute("PRAGMA cache_size").fetchone()[0]
    return size


def test_writes_gives_sqlite_a_large_cache_only_while_held(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'cache.db'}")
    try:
        with db.engine.connect() as conn:
            usual = _cache_size(conn)
        with db.writes() as conn:
            assert _cache_size(conn) == -SQLITE_BULK_CACHE_KIB
            raw = conn.connection.dbapi_connection
            for number in range(3):
                with conn.begin():
                    conn.execute(text("CREATE TABLE IF NOT EXISTS t (n INTEGER)"))
                    conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": number})
        # The pool hands the same connection out again, with its usual cache.
        with db.engine.connect() as conn:
            assert conn.connection.dbapi_connection is raw
            assert _cache_size(conn) == usual
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 3
    finally:
        db.dispose()


def test_writes_commits_each_transaction_on_postgresql_too(database_url: str) -> None:
    db = Database(database_url)
    try:
        with db.writes() as conn:
            for number in range(3):
                with conn.begin():
                    conn.execute(text("CREATE TABLE IF NOT EXISTS writes_t (n INTEGER)"))
                    conn.execute(text("INSERT INTO writes_t VALUES (:n)"), {"n": number})
        with db.read() as conn:
            assert conn.execute(text("SELECT count(*) FROM writes_t")).scalar_one() == 3
        with db.write() as conn:
            conn.execute(text("DROP TABLE writes_t"))
    finally:
        db.dispose()


def test_read_latest_sees_each_commit_and_needs_no_transaction_on_postgresql(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        with db.write() as conn:
            conn.execute(text("CREATE TABLE latest_t (n INTEGER)"))
        with db.read_latest() as conn:
            assert conn.execute(text("SELECT count(*) FROM latest_t")).scalar_one() == 0
            with db.write() as other:
                other.execute(text("INSERT INTO latest_t VALUES (1)"))
            seen = conn.execute(text("SELECT count(*) FROM latest_t")).scalar_one()
            raw = conn.connection.dbapi_connection
            # PostgreSQL: outside a transaction each statement sees the latest commit; SQLite
            # reads in one transaction there, a snapshot taken at the first statement.
            assert seen == (0 if db.is_sqlite else 1)
            if not db.is_sqlite:
                assert raw is not None and raw.autocommit is True
        with db.read() as conn:  # the connection goes back to the pool transactional again
            raw = conn.connection.dbapi_connection
            assert raw is not None
            assert db.is_sqlite or raw.autocommit is False
    finally:
        db.dispose()


def test_a_connection_the_server_dropped_fails_one_request_only(database_url: str) -> None:
    db = Database(database_url)
    if db.is_sqlite:
        db.dispose()
        return  # nothing can drop a SQLite connection
    try:
        with db.read() as conn:
            victim = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        killer = Database(database_url)  # its own connection, not the pooled victim
        with killer.write() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
        killer.dispose()
        failures = 0
        for _ in range(3):
            try:
                with db.read_latest() as conn:
                    assert conn.execute(text("SELECT 1")).scalar_one() == 1
            except OperationalError:
                failures += 1
        assert failures <= 1
    finally:
        db.dispose()
