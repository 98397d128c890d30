"""Bulk inserts that skip SQLAlchemy's per-row parameter processing (the ingest hot path)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, Table


def driver_value(conn: Connection, column: Column[Any], value: Any) -> Any:
    """``value`` as the driver expects it for ``column`` (e.g. a UTC datetime as SQLite's
    text form): convert a value shared by many rows once, not once per row."""
    processor = column.type.bind_processor(conn.dialect)
    value = processor(value) if processor else value
    if isinstance(value, datetime) and conn.dialect.name == "sqlite":
        # What the sqlite3 module's adapter would do for every row, done once.
        return value.isoformat(" ")
    return value


def insert_many(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert plain tuples already in driver form (see :func:`driver_value`): ``COPY`` on
    PostgreSQL, one ``executemany`` elsewhere."""
    if not rows:
        return
    unknown = [name for name in columns if name not in table.c]
    if unknown:
        raise KeyError(f"{table.name} has no column(s) {unknown}")
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, table, columns, rows)
        return
    insert_rows(conn, table, columns, rows)


def insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """The same with one multi-row ``executemany`` INSERT on any database (on PostgreSQL
    only the benchmark of COPY against INSERT uses it)."""
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    conn.exec_driver_sql(sql, list(rows))


def refresh_statistics(conn: Connection, table: Table) -> None:
    """After a bulk load: PostgreSQL's planner otherwise plans from the table's old size until
    autovacuum catches up (a minute or more), and may sort a whole campaign to read one page
    of it. SQLite's planner needs nothing here."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f'ANALYZE "{table.name}"')


def existing_message_keys(conn: Connection, campaign_id: str, keys: list[str]) -> dict[str, int]:
    """Which of ``keys`` a campaign already has a message for, with that message's row.

    Plain driver SQL: compiling thousands of bind parameters per batch through SQLAlchemy
    costs more than the query itself.
    """
    if not keys:
        return {}
    if conn.dialect.name == "sqlite":
        # One statement text whatever the batch: an IN list of varying length would fill the
        # driver's statement cache with large compiled statements (tens of MB).
        sql = (
            "SELECT email_key, row_number FROM messages WHERE campaign_id = ? "
            "AND email_key IN (SELECT value FROM json_each(?))"
        )
        rows = conn.exec_driver_sql(sql, (campaign_id, json.dumps(keys)))
    else:
        sql = (
            "SELECT email_key, row_number FROM messages "
            "WHERE campaign_id = %s AND email_key = ANY(%s)"
        )
        rows = conn.exec_driver_sql(sql, (campaign_id, keys))
    return {key: row for key, row in rows}


def _copy_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """COPY FROM STDIN through psycopg 3, inside the connection's current transaction."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    with raw.cursor() as cursor:  # type: ignore[attr-defined]
        statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        with cursor.copy(statement) as copy:
            copy.write(copy_text(rows))


# What COPY's text format gives a meaning to inside a value, and how each is written.
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(rows: Sequence[tuple[Any, ...]]) -> str:
    """``rows`` in COPY's text format: a line per row, values separated by tabs.

    Built a column at a time so that the work per value stays in C: psycopg's ``write_row``
    formats each value in Python, which made it the largest single cost of a COPY. Values may
    be None, str, int, float, bool, or what ``str()`` writes as PostgreSQL reads it (datetime).
    """
    if not rows:
        return ""
    columns = [_copy_column(list(values)) for values in zip(*rows, strict=True)]
    return "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"


def _copy_column(values: list[Any]) -> list[str]:
    first = values[0]
    if values.count(first) == len(values):
        # One value for every row (a campaign id, a status, a time): format it once.
        return [_copy_value(first)] * len(values)
    if all(type(value) is str for value in values):
        if _COPY_SPECIAL.search("".join(values)) is None:
            return values
        return [value.translate(_COPY_ESCAPES) for value in values]
    if all(type(value) is int for value in values):
        return list(map(str, values))
    return list(map(_copy_value, values))


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    return str(value).translate(_COPY_ESCAPES)
