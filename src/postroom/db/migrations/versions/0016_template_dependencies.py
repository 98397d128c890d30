"""Templates record the templates they extend, include or import, pinned at upload.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("templates", sa.Column("dependencies", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("templates") as batch:
        batch.drop_column("dependencies")
