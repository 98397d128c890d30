"""Indexes for retention: webhook deliveries that finished (delivered, or failed for good) by
the time they finished, so that deleting the old ones reads only those; and campaigns by
their file, so that finding the files no campaign used does not scan every campaign.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

FINISHED = "status <> 'pending'"


def upgrade() -> None:
    op.create_index("ix_campaigns_file", "campaigns", ["file_id"])
    op.create_index(
        "ix_webhook_deliveries_finished",
        "webhook_deliveries",
        ["finished_at"],
        sqlite_where=sa.text(FINISHED),
        postgresql_where=sa.text(FINISHED),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_finished", table_name="webhook_deliveries")
    op.drop_index("ix_campaigns_file", table_name="campaigns")
