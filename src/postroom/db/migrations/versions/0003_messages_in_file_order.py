"""An index for reading a campaign's messages in file order (the messages API's pages).

Without it PostgreSQL answers ``WHERE campaign_id = ? ORDER BY id LIMIT n`` by sorting every
message of the campaign (29 ms for 20,000 messages, and growing with the list).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_campaign_id", "messages", ["campaign_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_messages_campaign_id", table_name="messages")
