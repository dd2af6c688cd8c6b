"""consumers.previous_secret_until: a rotated shared secret's overlap window

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

`consumers rotate-secret KEY --overlap 24h` keeps the old shared secret in the keyring
beside the new one; the provider accepts both until this moment, and the purge then
deletes the old one.  NULL: no previous secret.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("consumers", sa.Column("previous_secret_until", sa.DateTime(), nullable=True))


def downgrade() -> None:
    # Not batch mode: on SQLite it rebuilds the table and loses the expression index
    # on lower(name) (0004); SQLite 3.35+ drops a plain column in place.
    op.drop_column("consumers", "previous_secret_until")
