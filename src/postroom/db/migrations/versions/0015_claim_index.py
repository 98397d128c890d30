"""The claim's index: messages waiting to be sent (queued or deferred) by campaign, status and
due time, so that a claim reads only claimable rows however many sent ones the table holds
(docs/scaling.md). A big existing PostgreSQL install may build it beforehand, without
blocking writes, with the statement in docs/scaling.md; this migration then skips it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
# 0013 (request limits and quotas) is on another branch: the chain is fixed when both land.
down_revision = "0014"
branch_labels = None
depends_on = None

WAITING = "status IN ('queued', 'deferred')"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX IF NOT EXISTS ix_messages_due ON messages"
            f" (campaign_id, status, available_at, id) WHERE {WAITING}"
        )
        return
    op.create_index(
        "ix_messages_due",
        "messages",
        ["campaign_id", "status", "available_at", "id"],
        sqlite_where=sa.text(WAITING),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_due", table_name="messages")
