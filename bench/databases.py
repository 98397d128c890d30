"""Fresh, empty databases for each measurement: a SQLite file, or a new PostgreSQL database
created on the server that POSTROOM_BENCH_DATABASE_URL points at (dropped afterwards)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from postroom.db.engine import normalise_database_url


@contextmanager
def fresh_database(
    kind: str, workdir: Path, server_url: str | None, *, prefix: str = "postroom_bench"
) -> Iterator[str]:
    if kind == "sqlite":
        workdir.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{workdir / f'bench-{secrets.token_hex(3)}.db'}"
        return
    if not server_url:
        raise RuntimeError("set POSTROOM_BENCH_DATABASE_URL to benchmark PostgreSQL")
    url = make_url(normalise_database_url(server_url))
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
