"""Applies the Alembic migrations (``postroom migrate``; ``serve`` runs it on SQLite)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config

from postroom.db.engine import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return config


def migrate(db: Database) -> None:
    """Bring the schema to the newest revision; safe to run again and from several processes
    one after the other."""
    config = alembic_config(db)
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


@dataclass(frozen=True, slots=True)
class SchemaRevisions:
    """This code's newest migration and every revision it knows."""

    head: str | None
    known: frozenset[str]


def schema_revisions() -> SchemaRevisions:
    """Read from the migration scripts (tens of milliseconds: read it once per process)."""
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    scripts = ScriptDirectory.from_config(config)
    return SchemaRevisions(
        head=scripts.get_current_head(),
        known=frozenset(script.revision for script in scripts.walk_revisions()),
    )


def pending_migrations(db: Database) -> bool:
    """True when the database is behind the newest revision (or has no schema yet)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(db)).get_current_head()
    with db.engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current != head
