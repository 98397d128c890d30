"""JSON built by the database itself, in the dialect's own spelling, so that set-based
statements (INSERT … SELECT) can fill a JSON column without a round trip per row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func
from sqlalchemy.sql.elements import ColumnElement


def json_object(conn: Connection, *pairs: Any) -> ColumnElement[Any]:
    """A JSON object from alternating keys and values (columns or literals); NULL values stay
    JSON nulls."""
    if conn.dialect.name == "postgresql":
        return func.json_build_object(*pairs)
    return func.json_object(*pairs)
