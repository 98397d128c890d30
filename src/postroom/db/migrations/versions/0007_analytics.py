"""Analytics rollups: per campaign minute and event type, clicked URL, bounce reason and
recipient domain, kept with the events so analytics reads stay small.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import postroom.db.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DOMAIN_COUNTS = ("sent", "delivered", "bounced", "complained", "opened", "clicked", "unsubscribed")


def upgrade() -> None:
    op.create_table(
        "analytics_minutes",
        sa.Column("campaign_id", sa.String(40), primary_key=True),
        sa.Column("bucket", postroom.db.types.UtcDateTime(timezone=True), primary_key=True),
        sa.Column("type", sa.String(20), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("uniques", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_analytics_minutes_tenant", "analytics_minutes", ["tenant_id", "bucket"])
    op.create_table(
        "analytics_links",
        sa.Column("campaign_id", sa.String(40), primary_key=True),
        sa.Column("url", sa.String(2000), primary_key=True),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("unique_clicks", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "analytics_bounces",
        sa.Column("campaign_id", sa.String(40), primary_key=True),
        sa.Column("bounce_type", sa.String(40), primary_key=True),
        sa.Column("status", sa.String(40), primary_key=True),
        sa.Column("subtype", sa.String(80), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "analytics_domains",
        sa.Column("campaign_id", sa.String(40), primary_key=True),
        sa.Column("domain", sa.String(255), primary_key=True),
        *(
            sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
            for name in DOMAIN_COUNTS
        ),
    )


def downgrade() -> None:
    op.drop_table("analytics_domains")
    op.drop_table("analytics_bounces")
    op.drop_table("analytics_links")
    op.drop_index("ix_analytics_minutes_tenant", table_name="analytics_minutes")
    op.drop_table("analytics_minutes")
