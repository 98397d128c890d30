"""Inbound mail at the bounce address (VERP bounces, complaints, mailto unsubscribes): one row
per mail received with what became of it, so nothing is dropped silently.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import postroom.db.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbound_mail",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("received_at", postroom.db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("envelope_from", sa.String(320), nullable=False),
        sa.Column("envelope_to", sa.String(1000), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("blob_key", sa.String(300)),
        sa.PrimaryKeyConstraint("id", name="pk_inbound_mail"),
    )
    op.create_index("ix_inbound_mail_outcome", "inbound_mail", ["outcome", "id"])


def downgrade() -> None:
    op.drop_index("ix_inbound_mail_outcome", table_name="inbound_mail")
    op.drop_table("inbound_mail")
