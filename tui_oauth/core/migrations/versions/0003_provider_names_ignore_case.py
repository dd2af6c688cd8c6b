"""service provider names are unique without regard to case

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

Names that differ only in case ("Example", "example") are told apart by
renaming the later ones ("example (2)"), recorded in the audit log, before the
unique index on lower(name) is made: no row is lost, and the admin sees why.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_service_providers_name_lower"


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, name FROM service_providers ORDER BY id")).all()
    taken: set[str] = set()
    now = datetime.now(UTC).replace(tzinfo=None)
    for pid, name in rows:
        if name.lower() not in taken:
            taken.add(name.lower())
            continue
        n = 2
        while f"{name} ({n})".lower() in taken:
            n += 1
        new = f"{name} ({n})"[:255]
        taken.add(new.lower())
        conn.execute(sa.text("UPDATE service_providers SET name = :new WHERE id = :id"),
                     {"new": new, "id": pid})
        conn.execute(sa.text(
            "INSERT INTO audit_log (at, actor, action, target_type, target, detail) "
            "VALUES (:at, 'schema upgrade', 'provider.rename', 'service_provider', :target, "
            ":detail)"),
            {"at": now, "target": new[:255],
             "detail": f"renamed from {name!r}: provider names are now unique without "
                       "regard to case"})
    op.create_index(INDEX, "service_providers", [sa.text("lower(name)")], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="service_providers")
