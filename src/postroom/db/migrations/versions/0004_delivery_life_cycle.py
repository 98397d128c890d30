"""The delivery life cycle: deferred messages, retry budgets, possible duplicates, pausing,
every message transition with its time, and the state every worker shares: circuit
breakers and rate-limit buckets (with per-tenant rate overrides).

Columns are added without rebuilding tables (SQLite and PostgreSQL both add a nullable or
constant-default column in place), so upgrading a large message table is quick.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import postroom.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

MessagePk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> postroom.db.types.UtcDateTime:
    return postroom.db.types.UtcDateTime(timezone=True)


def upgrade() -> None:
    for name in ("deferred_count", "possible_duplicate_count"):
        op.add_column(
            "campaigns", sa.Column(name, sa.Integer(), nullable=False, server_default="0")
        )
    op.add_column("campaigns", sa.Column("paused_at", _utc()))
    op.add_column("tenants", sa.Column("rate_limit", sa.Float()))
    op.add_column("tenants", sa.Column("domain_rate_limits", sa.JSON()))
    op.add_column("messages", sa.Column("first_attempt_at", _utc()))
    op.add_column(
        "messages",
        sa.Column("possible_duplicate", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("messages", sa.Column("provider_message_id", sa.String(200)))
    op.create_table(
        "message_transitions",
        sa.Column("id", MessagePk, primary_key=True, autoincrement=True),
        sa.Column("message_pk", MessagePk, nullable=False),
        sa.Column("campaign_id", sa.String(40), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=False),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_message_transitions"),
    )
    op.create_index(
        "ix_message_transitions_message_pk", "message_transitions", ["message_pk", "id"]
    )
    op.create_table(
        "breakers",
        sa.Column("transport", sa.String(300), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("opened_count", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("retry_at", _utc()),
        sa.Column("probe_owner", sa.String(80)),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("transport", name="pk_breakers"),
    )
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("tat", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_rate_limits"),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
    op.drop_table("breakers")
    op.drop_index("ix_message_transitions_message_pk", table_name="message_transitions")
    op.drop_table("message_transitions")
    with op.batch_alter_table("messages") as batch:
        for name in ("provider_message_id", "possible_duplicate", "first_attempt_at"):
            batch.drop_column(name)
    with op.batch_alter_table("campaigns") as batch:
        for name in ("paused_at", "possible_duplicate_count", "deferred_count"):
            batch.drop_column(name)
    with op.batch_alter_table("tenants") as batch:
        for name in ("domain_rate_limits", "rate_limit"):
            batch.drop_column(name)
