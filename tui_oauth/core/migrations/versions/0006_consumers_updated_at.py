"""an index on consumers.updated_at

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

The provider's refresh reads only the consumers changed since its last one
(``updated_at >= mark``); without the index each refresh scanned the table
(100,000 consumers: a stall of about 2 s every 30 s when it selected every row).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_consumers_updated_at", "consumers", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_consumers_updated_at", table_name="consumers")
