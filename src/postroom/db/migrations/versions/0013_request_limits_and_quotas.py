"""Request rates and quotas per tenant: an API rate and burst of its own, the largest
recipient file, rows per campaign and messages per day, and the daily message counter.

On PostgreSQL the rate-limit buckets become UNLOGGED: every API request now writes one, and
a logged table makes each of those commits wait for a WAL flush (about 3 ms here, against 1
unlogged). After a crash the buckets start empty, which costs at most one burst.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_TENANT_COLUMNS = (
    ("api_rate_limit", sa.Float()),
    ("api_rate_burst", sa.Integer()),
    ("quota_file_bytes", sa.BigInteger()),
    ("quota_rows_per_campaign", sa.BigInteger()),
    ("quota_messages_per_day", sa.BigInteger()),
)


def upgrade() -> None:
    for name, type_ in _TENANT_COLUMNS:
        op.add_column("tenants", sa.Column(name, type_))
    op.create_table(
        "tenant_daily_usage",
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_tenant_daily_usage_tenant_id_tenants",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "day", name="pk_tenant_daily_usage"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE rate_limits SET UNLOGGED")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE rate_limits SET LOGGED")
    op.drop_table("tenant_daily_usage")
    with op.batch_alter_table("tenants") as batch:
        for name, _type in reversed(_TENANT_COLUMNS):
            batch.drop_column(name)
