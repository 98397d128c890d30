"""The event store: what happened to each message after it was handed over (delivered,
bounced, complained, opened, clicked, unsubscribed…), its first time of each on the message,
unique-recipient counts per campaign, and each tenant's suppression list.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import postroom.db.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

MessagePk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ENGAGEMENT = ("delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")
MESSAGE_TIMES = (
    "delivered_at",
    "bounced_at",
    "complained_at",
    "first_opened_at",
    "first_clicked_at",
    "unsubscribed_at",
)


def _utc() -> postroom.db.types.UtcDateTime:
    return postroom.db.types.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", MessagePk, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("campaign_id", sa.String(40), nullable=False),
        sa.Column("message_pk", MessagePk, nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("recipient", sa.String(320)),
        sa.Column("occurred_at", _utc(), nullable=False),
        sa.Column("recorded_at", _utc(), nullable=False),
        sa.Column("event_key", sa.String(100), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.UniqueConstraint("event_key", name="uq_events_event_key"),
    )
    op.create_index("ix_events_campaign", "events", ["campaign_id", "id"])
    op.create_index("ix_events_campaign_type", "events", ["campaign_id", "type", "id"])
    op.create_index("ix_events_message", "events", ["message_pk", "id"])
    for name in MESSAGE_TIMES:
        op.add_column("messages", sa.Column(name, _utc()))
    op.add_column("messages", sa.Column("outcome", sa.String(20)))
    op.create_index("ix_messages_provider_message_id", "messages", ["provider_message_id"])
    for name in ENGAGEMENT:
        op.add_column(
            "campaigns",
            sa.Column(f"{name}_count", sa.Integer(), nullable=False, server_default="0"),
        )
    op.create_table(
        "suppressions",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "email_key", name="pk_suppressions"),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    with op.batch_alter_table("campaigns") as batch:
        for name in ENGAGEMENT:
            batch.drop_column(f"{name}_count")
    op.drop_index("ix_messages_provider_message_id", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        for name in (*MESSAGE_TIMES, "outcome"):
            batch.drop_column(name)
    op.drop_index("ix_events_message", table_name="events")
    op.drop_index("ix_events_campaign_type", table_name="events")
    op.drop_index("ix_events_campaign", table_name="events")
    op.drop_table("events")
