"""indexes for the lists' sort orders and a consumer's tokens

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

The console reads lists a window at a time: it skips along the sort order
(name ignoring case, signature method, creation time, each with the key to
break ties) and a consumer's tokens newest first.  Without these indexes each
window sorted the whole table (100,000 consumers: about 0.3 s a window).  Each
index ends with the id, which is what a window selects: PostgreSQL then skips along
the index alone (SQLite's indexes carry the rowid anyway).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_consumers_name_lower", "consumers",
                    [sa.text("lower(name)"), "key", "id"])
    op.create_index("ix_consumers_signature_key", "consumers",
                    ["signature_method", "key", "id"])
    op.create_index("ix_consumers_created_key", "consumers", ["created_at", "key", "id"])
    op.create_index("ix_tokens_consumer_id", "tokens", ["consumer_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_tokens_consumer_id", table_name="tokens")
    op.drop_index("ix_consumers_created_key", table_name="consumers")
    op.drop_index("ix_consumers_signature_key", table_name="consumers")
    op.drop_index("ix_consumers_name_lower", table_name="consumers")
