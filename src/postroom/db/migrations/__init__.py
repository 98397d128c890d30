"""Alembic migrations for the Postroom schema."""
