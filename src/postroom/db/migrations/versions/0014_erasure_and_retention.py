"""Erasure and retention: a suppression may be kept as a hash alone (no address), files
record when their source CSV was deleted, and campaigns when their messages' personalisation
was purged for good.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from postroom.db.types import UtcDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("suppressions") as batch:
        batch.alter_column("email", existing_type=sa.String(320), nullable=True)
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("processed_at", UtcDateTime(timezone=True)))
        batch.add_column(sa.Column("source_deleted_at", UtcDateTime(timezone=True)))
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("personalisation_purged_at", UtcDateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("personalisation_purged_at")
    with op.batch_alter_table("files") as batch:
        batch.drop_column("source_deleted_at")
        batch.drop_column("processed_at")
    op.execute("DELETE FROM suppressions WHERE email IS NULL")
    with op.batch_alter_table("suppressions") as batch:
        batch.alter_column("email", existing_type=sa.String(320), nullable=False)
