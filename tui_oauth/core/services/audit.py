"""Reading the audit log: newest first, filtered, paged by id (it can hold millions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func
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
    #: the search stopped at this id (``scan`` entries looked at) with older entries
    #: not searched yet; ``next_before_id`` goes on from there
    searched_to_id: int | None = None


class AuditService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def list(self, *, limit: int = 50, before_id: int | None = None, text: str | None = None,
             action: str | None = None, target: str | None = None, actor: str | None = None,
             since: datetime | None = None, scan: int | None = None) -> AuditPage:
        """Newest first, ``limit`` at a time, before ``before_id``.  With a ``text``
        filter and ``scan``, at most the ``scan`` entries below ``before_id`` are
        searched (a filter that matches nothing does not read a million entries for
        one page): the page then says where it stopped, and the next goes on."""
        limit = max(1, min(limit, MAX_PAGE))
        stmt = select(AuditEntry)
        floor: int | None = None
        with self.store.session() as s:
            if scan is not None and text and text.strip():
                top = before_id if before_id is not None else (
                    s.exec(select(func.max(AuditEntry.id))).one() or 0) + 1
                floor = top - max(scan, 1)
                lowest = s.exec(select(func.min(AuditEntry.id))).one()
                if lowest is None or floor <= lowest:
                    floor = None  # the rest of the log is within reach: search it all
        if floor is not None:
            stmt = stmt.where(col(AuditEntry.id) >= floor)
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
        if more:
            return AuditPage(rows, rows[-1].id)
        return AuditPage(rows, floor, searched_to_id=floor)
