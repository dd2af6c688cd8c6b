"""the consumer side: allow_private on service providers, more on held tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("service_providers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("allow_private", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table("held_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("authorization_expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("held_tokens", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("authorization_expires_at")
    with op.batch_alter_table("service_providers", schema=None) as batch_op:
        batch_op.drop_column("allow_private")
