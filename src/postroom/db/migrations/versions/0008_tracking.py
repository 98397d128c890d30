"""Open and click tracking switches: per campaign (resolved at creation) and tenant defaults.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        for name in ("track_opens", "track_clicks"):
            batch.add_column(sa.Column(name, sa.Boolean(), nullable=False, server_default="1"))
    with op.batch_alter_table("tenants") as batch:
        for name in ("track_opens", "track_clicks"):
            batch.add_column(sa.Column(name, sa.Boolean()))


def downgrade() -> None:
    for table in ("tenants", "campaigns"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("track_clicks")
            batch.drop_column("track_opens")
