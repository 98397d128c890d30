"""Bulk inserts (COPY on PostgreSQL, executemany on SQLite) store every value as given."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, select

from postroom.db.bulk import driver_value, insert_many
from postroom.db.engine import Database
from postroom.db.types import UtcDateTime

scratch = MetaData()
samples = Table(
    "bulk_samples",
    scratch,
    Column("name", String(40), nullable=False),
    Column("number", Integer, nullable=False),
    Column("note", Text),
    Column("at", UtcDateTime, nullable=False),
)

NOTES = [
    "plain",
    "tab\there",
    "line\nend",
    "carriage\r\nreturn",
    "back\\slash and \\N",
    '{"json":"with \\"escapes\\" and \\n"}',
    "Zürich ✓ 東京",
    "",
    None,
]


def test_insert_many_stores_awkward_text_exactly(database_url: str) -> None:
    db = Database(database_url)
    at = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    try:
        scratch.create_all(db.engine)
        with db.write() as conn:
            value = driver_value(conn, samples.c.at, at)
            rows = [("same", i, note, value) for i, note in enumerate(NOTES)]
            insert_many(conn, samples, ("name", "number", "note", "at"), rows)
        with db.read() as conn:
            stored = conn.execute(select(samples).order_by(samples.c.number)).all()
        assert [(r.name, r.number, r.note, r.at) for r in stored] == [
            ("same", i, note, at) for i, note in enumerate(NOTES)
        ]
    finally:
        scratch.drop_all(db.engine)
        db.dispose()
