"""Reading the refusal log (what the provider refused, and why) and keeping it bounded.

The provider writes it (core/provider/refusals.py); the CLI (`tui-oauth refusals`)
and the console read it here.  Each row comes with advice for that record
(problems.advise).  Bounded two ways, by :meth:`RefusalsService.purge` (serve's
8-hour job and `tui-oauth tokens purge`) and after each of the server's flushes:
rows older than ``refusal_retention`` go, and each bucket (a configured consumer's
key, or "" for all unknown keys together) keeps its newest
``refusal_rows_per_consumer`` rows.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_
from sqlmodel import col, select

from tui_oauth.core.errors import NotFoundError
from tui_oauth.core.models import ConsumerClock, Refusal
from tui_oauth.core.provider.problems import advise, offset_words
from tui_oauth.core.provider.refusals import trim_buckets
from tui_oauth.core.provider.settings import ProviderSettings, stored_settings
from tui_oauth.core.registry import services
from tui_oauth.core.services.windows import any_contains
from tui_oauth.core.timeutil import utcnow

if TYPE_CHECKING:
    from tui_oauth.core.store import Store

MAX_PAGE = 1000


@dataclass(frozen=True)
class RefusalRow:
    """One refused request, as recorded, with advice for it.  No secret: the token is a
    prefix, the signature is kept only for signature_invalid and never for PLAINTEXT."""

    id: int
    at: datetime
    consumer_key: str  # as sent ("" when absent)
    known: bool  # it named a configured consumer (when recorded)
    token_prefix: str
    problem: str  # the real cause
    answered: str  # the oauth_problem the client got (problem_detail=minimal hides some)
    method: str
    url: str  # the URL of the base string (the public URL)
    seen_url: str  # scheme://Host/path as the request reached this server
    client_addr: str
    signature_method: str
    timestamp: int | None
    offset: int | None  # the client's timestamp - our clock, seconds (negative: behind)
    base_string: str | None
    truncated: bool
    signature: str | None
    advice: str
    #: what the server said beyond the problem ("Missing: oauth_nonce."), or None
    detail: str | None = None
    #: scheme://host:port/path of the address the server listens on, as reached ("")
    listen_url: str = ""
    #: signature_invalid: the debugger's verdict when recorded ("internal_url: The
    #: consumer signed ...", "none: ..."), or None (not diagnosed)
    finding: str | None = None


@dataclass(frozen=True)
class RefusalSummary:
    """A consumer's refusals: count by problem (most first), the last few, the total."""

    counts: dict[str, int]
    recent: list[RefusalRow]
    total: int


@dataclass(frozen=True)
class ClockSkew:
    """A consumer's clock against ours, from its recent timestamps."""

    consumer_key: str
    median_offset: int  # seconds; negative: behind ours
    samples: int
    updated_at: datetime

    @property
    def words(self) -> str:
        """``7 min 12 s behind, from 40 requests``."""
        return f"{offset_words(self.median_offset)}, from {self.samples} request(s)"


def _window(store: Store) -> int:
    with store.session() as s:
        value = stored_settings(s).get("timestamp_window", ProviderSettings.timestamp_window)
    return int(value)


def to_row(r: Refusal, window: int) -> RefusalRow:
    return RefusalRow(
        id=r.id or 0, at=r.at, consumer_key=r.consumer_key, known=r.bucket != "",
        token_prefix=r.token_prefix, problem=r.problem, answered=r.answered, method=r.method,
        url=r.url, seen_url=r.seen_url, client_addr=r.client_addr,
        signature_method=r.signature_method, timestamp=r.timestamp, offset=r.offset,
        base_string=r.base_string, truncated=r.truncated, signature=r.signature,
        detail=r.detail, listen_url=r.listen_url, finding=r.finding,
        advice=advise(r.problem, offset=r.offset, window=window, url=r.url,
                      seen_url=r.seen_url, signature_method=r.signature_method,
                      detail=r.detail, finding=r.finding, listen_url=r.listen_url,
                      consumer_key=r.consumer_key))


class RefusalsService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _query(self, consumer: str | None, problem: str | None, since: datetime | None,
               text: str | None) -> Any:
        stmt = select(Refusal)
        if consumer is not None:
            bucket, key = col(Refusal.bucket), col(Refusal.consumer_key)
            stmt = stmt.where(or_(bucket == consumer, and_(bucket == "", key == consumer)))
        if problem:
            stmt = stmt.where(Refusal.problem == problem)
        if since is not None:
            stmt = stmt.where(col(Refusal.at) >= since)
        return stmt.where(*any_contains([Refusal.consumer_key, Refusal.problem, Refusal.url,
                                         Refusal.seen_url, Refusal.listen_url,
                                         Refusal.client_addr], text))

    def list(self, *, consumer: str | None = None, problem: str | None = None,
             since: datetime | None = None, text: str | None = None,
             limit: int = 100) -> builtins.list[RefusalRow]:
        """Newest first, at most ``limit`` (1..1000).  ``consumer``: the key as sent;
        ``text``: a case-insensitive filter on key, problem, URLs (the public one, the one
        the request reached, the listen address) and client address."""
        limit = max(1, min(limit, MAX_PAGE))
        stmt = self._query(consumer, problem, since, text)
        stmt = stmt.order_by(col(Refusal.id).desc()).limit(limit)
        window = _window(self.store)
        with self.store.session() as s:
            return [to_row(r, window) for r in s.exec(stmt).all()]

    def iter(self, *, consumer: str | None = None, problem: str | None = None,
             since: datetime | None = None, text: str | None = None,
             batch: int = 500) -> Iterator[RefusalRow]:
        """Every match, newest first, read ``batch`` rows at a time (for the CLI)."""
        batch = max(1, min(batch, MAX_PAGE))
        window = _window(self.store)
        before: int | None = None
        while True:
            stmt = self._query(consumer, problem, since, text)
            if before is not None:
                stmt = stmt.where(col(Refusal.id) < before)
            stmt = stmt.order_by(col(Refusal.id).desc()).limit(batch)
            with self.store.session() as s:
                rows = [to_row(r, window) for r in s.exec(stmt).all()]
            yield from rows
            if len(rows) < batch:
                return
            before = rows[-1].id

    def get(self, refusal_id: int) -> RefusalRow:
        with self.store.session() as s:
            row = s.get(Refusal, refusal_id)
            if row is None:
                raise NotFoundError(f"No refusal {refusal_id} (it may have been pruned).",
                                    hint="`tui-oauth refusals list` shows the ones kept.")
            return to_row(row, _window(self.store))

    def summary(self, consumer_key: str, recent: int = 5) -> RefusalSummary:
        """Count by problem (most first), the ``recent`` newest and the total."""
        cond = self._query(consumer_key, None, None, None).whereclause
        with self.store.session() as s:
            pairs = s.exec(select(Refusal.problem, func.count()).where(cond)
                           .group_by(Refusal.problem)).all()
        counts = dict(sorted(((p, int(n)) for p, n in pairs), key=lambda x: (-x[1], x[0])))
        rows = self.list(consumer=consumer_key, limit=recent) if recent > 0 else []
        return RefusalSummary(counts, rows, sum(counts.values()))

    def clock(self, consumer_key: str) -> ClockSkew | None:
        """The consumer's clock offset as the server last measured it, or None."""
        with self.store.session() as s:
            row = s.get(ConsumerClock, consumer_key)
        if row is None:
            return None
        return ClockSkew(row.consumer_key, row.median_offset, row.samples, row.updated_at)

    def purge(self) -> int:
        """Delete refusals older than ``refusal_retention`` and each bucket's rows
        beyond ``refusal_rows_per_consumer``; returns how many went."""
        with self.store.session() as s:
            values = stored_settings(s)
        defaults = ProviderSettings()
        retention = int(values.get("refusal_retention", defaults.refusal_retention))
        keep = int(values.get("refusal_rows_per_consumer", defaults.refusal_rows_per_consumer))
        cutoff = utcnow() - timedelta(seconds=retention)
        total = services(self.store).tokens.purge_rows(Refusal, col(Refusal.at) < cutoff)
        with self.store.session() as s:
            over = list(s.exec(select(Refusal.bucket).group_by(Refusal.bucket)
                               .having(func.count() > keep)).all())
        for bucket in over:
            with self.store.transaction() as uow:
                total += trim_buckets(uow.session.connection(), [bucket], keep)
        return total
