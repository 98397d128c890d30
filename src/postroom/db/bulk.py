"""Bulk inserts that skip SQLAlchemy's per-row parameter processing (the ingest hot path)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Connection, Table


def driver_value(conn: Connection, column: Column[Any], value: Any) -> Any:
    """``value`` as the driver expects it for ``column`` (e.g. a UTC datetime as SQLite's
    text form): convert a value shared by many rows once, not once per row."""
    processor = column.type.bind_processor(conn.dialect)
    return processor(value) if processor else value


def insert_many(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """One ``executemany`` of plain tuples already in driver form (see :func:`driver_value`)."""
    if not rows:
        return
    for name in columns:
        table.c[name]
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    conn.exec_driver_sql(sql, list(rows))
