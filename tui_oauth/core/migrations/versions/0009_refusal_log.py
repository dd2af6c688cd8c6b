"""refusals and consumer_clock: the provider's log of refused requests, and each
consumer's clock offset

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

The provider records each refused signed request (never a secret) in ``refusals``,
bounded by age (``refusal_retention``) and by rows per consumer
(``refusal_rows_per_consumer``; all unknown consumer keys share the bucket "").
``consumer_clock`` keeps the median offset of each consumer's recent timestamps.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "refusals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("bucket", sa.String(length=255), nullable=False),
        sa.Column("consumer_key", sa.String(length=255), nullable=False),
        sa.Column("token_prefix", sa.String(length=16), nullable=False),
        sa.Column("problem", sa.String(length=64), nullable=False),
        sa.Column("answered", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("seen_url", sa.Text(), nullable=False),
        sa.Column("client_addr", sa.String(length=255), nullable=False),
        sa.Column("signature_method", sa.String(length=32), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=True),
        sa.Column("offset", sa.BigInteger(), nullable=True),
        sa.Column("base_string", sa.Text(), nullable=True),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("detail", sa.String(length=512), nullable=True),
        sa.Column("listen_url", sa.Text(), nullable=False),
        sa.Column("finding", sa.String(length=512), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refusals")),
    )
    op.create_index("ix_refusals_at", "refusals", ["at"])
    op.create_index("ix_refusals_bucket_id", "refusals", ["bucket", "id"])
    op.create_table(
        "consumer_clock",
        sa.Column("consumer_key", sa.String(length=255), nullable=False),
        sa.Column("median_offset", sa.BigInteger(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consumer_key", name=op.f("pk_consumer_clock")),
    )


def downgrade() -> None:
    op.drop_table("consumer_clock")
    op.drop_index("ix_refusals_bucket_id", table_name="refusals")
    op.drop_index("ix_refusals_at", table_name="refusals")
    op.drop_table("refusals")
