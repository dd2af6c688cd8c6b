"""consumer_info.previous_public_key / previous_key_until: our old public key, still
published after `info rotate-key --overlap`

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

The consumer-info document carries it as <previousPublicKey> until the window ends,
for providers that read it (Atlassian's read only <publicKey>).  NULL: none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("consumer_info", sa.Column("previous_public_key", sa.Text(), nullable=True))
    op.add_column("consumer_info", sa.Column("previous_key_until", sa.DateTime(), nullable=True))


def downgrade() -> None:
    # Not batch mode (it would rebuild the table); SQLite 3.35+ drops columns in place.
    op.drop_column("consumer_info", "previous_key_until")
    op.drop_column("consumer_info", "previous_public_key")
