"""The Database's connections: a held connection for a series of write transactions."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

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
