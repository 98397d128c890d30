"""Per-campaign message counts by status, so status reads never count message rows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATUSES = ("queued", "sending", "sent", "failed", "suppressed", "cancelled")


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        for status in STATUSES:
            batch.add_column(
                sa.Column(f"{status}_count", sa.Integer(), nullable=False, server_default="0")
            )
    for status in STATUSES:
        op.execute(
            f"UPDATE campaigns SET {status}_count = (SELECT count(*) FROM messages "
            f"WHERE messages.campaign_id = campaigns.id AND messages.status = '{status}')"
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        for status in STATUSES:
            batch.drop_column(f"{status}_count")
