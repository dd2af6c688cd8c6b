"""Reading the audit log: newest first, filtered, paged by id (it can hold millions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import col, select

from tui_oauth.core.models import AuditEntry
from tui_oauth.core.services.windows import any_contains

if TYPE_CHECKING:
    from tui_oauth.core.store import Store

MAX_PAGE = 1000


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_before_id: int | None  # pass as before_id for the next (older) page


class AuditService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def list(self, *, limit: int = 50, before_id: int | None = None, text: str | None = None,
             action: str | None = None, target: str | None = None, actor: str | None = None,
             since: datetime | None = None) -> AuditPage:
        limit = max(1, min(limit, MAX_PAGE))
        stmt = select(AuditEntry)
        if before_id is not None:
            stmt = stmt.where(col(AuditEntry.id) < before_id)
        if action:
            stmt = stmt.where(col(AuditEntry.action).startswith(action, autoescape=True))
        if target:
            stmt = stmt.where(AuditEntry.target == target)
        if actor:
            stmt = stmt.where(AuditEntry.actor == actor)
        if since is not None:
            stmt = stmt.where(col(AuditEntry.at) >= since)
        stmt = stmt.where(*any_contains(
            [AuditEntry.action, AuditEntry.target, AuditEntry.actor, AuditEntry.detail], text))
        stmt = stmt.order_by(col(AuditEntry.id).desc()).limit(limit + 1)
        with self.store.session() as s:
            rows = list(s.exec(stmt).all())
        more = len(rows) > limit
        rows = rows[:limit]
        return AuditPage(rows, rows[-1].id if more and rows else None)
