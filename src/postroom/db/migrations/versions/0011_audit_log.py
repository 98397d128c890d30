"""The audit log: one row per state-changing call, per tenant, append-only.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import postroom.db.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("at", postroom.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(20), nullable=False),
        sa.Column("key_id", sa.String(40)),
        sa.Column("action", sa.String(200), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("status", sa.Integer()),
        sa.Column("client_address", sa.String(100)),
        sa.Column("request_id", sa.String(80)),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_tenant", "audit_log", ["tenant_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_tenant", table_name="audit_log")
    op.drop_table("audit_log")
