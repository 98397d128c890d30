"""Migrations build exactly the schema that db/tables.py describes, and 0002 backfills the
message counts of campaigns that existed before it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from postroom.db.engine import Database
from postroom.db.migrate import alembic_config
from postroom.db.tables import metadata
from tests.conftest import PostgresDatabases


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def blank_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_databases: PostgresDatabases | None
) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'blank.db'}"
    if postgres_databases is None:
        pytest.skip("PostgreSQL test: set POSTROOM_TEST_DATABASE_URL to run it")
    name = f"{postgres_databases.prefix}_blank_{len(postgres_databases.created)}"
    with postgres_databases.admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    postgres_databases.created.append(name)
    return postgres_databases.url_for(name)


def upgrade(db: Database, revision: str) -> None:
    config = alembic_config(db)
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def test_migrations_match_the_table_definitions(blank_url: str) -> None:
    db = Database(blank_url)
    upgrade(db, "head")
    with db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    db.dispose()
    assert differences == []


def test_0002_backfills_message_counts(blank_url: str) -> None:
    db = Database(blank_url)
    upgrade(db, "0001")
    now = datetime.now(UTC).replace(tzinfo=None)
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants VALUES ('t', 't', :now)"), {"now": now})
        conn.execute(
            text(
                "INSERT INTO templates (id, tenant_id, name, subject, status, blob_key, variables,"
                " errors, created_at) VALUES ('tp', 't', 'n', 's', 'ready', 'k', '[]', '[]', :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO files (id, tenant_id, filename, content_type, status, blob_key,"
                " created_at) VALUES ('f', 't', 'f', 'text/csv', 'uploaded', 'kf', :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO campaigns (id, tenant_id, name, template_id, file_id, from_email,"
                " metadata, status, file_warnings, rows_done, valid_rows, invalid_rows,"
                " duplicate_rows, created_at) VALUES ('c', 't', 'c', 'tp', 'f', 'a@b.c', '{}',"
                " 'sending', '[]', 0, 3, 0, 0, :now)"
            ),
            {"now": now},
        )
        for i, status in enumerate(["sent", "sent", "queued"]):
            conn.execute(
                text(
                    "INSERT INTO messages (campaign_id, row_number, email, email_key, fields,"
                    " status, attempts, available_at, updated_at) VALUES ('c', :row, :e, :e, '{}',"
                    " :status, 0, :now, :now)"
                ),
                {"row": i + 2, "e": f"u{i}@example.com", "status": status, "now": now},
            )
    upgrade(db, "head")
    with db.engine.connect() as conn:
        row = conn.execute(text("SELECT sent_count, queued_count, failed_count FROM campaigns"))
        assert row.one() == (2, 1, 0)
    db.dispose()
