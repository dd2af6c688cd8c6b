"""indexes for `tokens list` filters: by state, by type, a user's tokens newest first

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

`tokens list --state S` and `--type T` read the table newest first and kept the rows
that matched: with few matches, the whole table.  Each filter now has an index ending
with the id, so a page is an index range.  The index on user gets the id too
(PostgreSQL sorted a user's tokens to page them; SQLite's index had the rowid already).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tokens_state_id", "tokens", ["state", "id"])
    op.create_index("ix_tokens_type_id", "tokens", ["type", "id"])
    op.create_index("ix_tokens_user_id", "tokens", ["user", "id"])
    op.drop_index("ix_tokens_user", table_name="tokens")


def downgrade() -> None:
    op.create_index("ix_tokens_user", "tokens", ["user"])
    op.drop_index("ix_tokens_user_id", table_name="tokens")
    op.drop_index("ix_tokens_type_id", table_name="tokens")
    op.drop_index("ix_tokens_state_id", table_name="tokens")
