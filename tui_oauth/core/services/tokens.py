"""Tokens we issued as provider: listing, revoking and purging, for the admin.

Request tokens go ``pending`` -> ``authorized`` (or ``denied``) -> ``used``;
access tokens are ``active`` until ``revoked``.  Expiry is not a stored state:
a token whose ``expires_at`` has passed shows as ``expired``.  Revoked tokens
stay (so a consumer is told ``token_revoked``) until purged.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from sqlalchemy import and_, delete, func, or_, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from tui_oauth.core.errors import NotFoundError, ValidationError
from tui_oauth.core.models import Consumer, Nonce, Token, TokenState, TokenType
from tui_oauth.core.registry import services
from tui_oauth.core.services.windows import count_rows, in_order, position_of, window_ids
from tui_oauth.core.timeutil import utcnow

if TYPE_CHECKING:
    from tui_oauth.core.store import Store

LIVE_STATES = (TokenState.PENDING, TokenState.AUTHORIZED, TokenState.ACTIVE)
#: The CLI's --state and --type choices, plain strings (click's Choice would match an
#: Enum member by its name, PENDING, rather than its value).
STATES = tuple(state.value for state in TokenState)
TYPES = tuple(kind.value for kind in TokenType)
MAX_PAGE = 1000
#: Seconds a long purge pauses between its batches, so that SQLite's busy handler
#: lets the provider's writes (nonces, tokens) in instead of starving them.
BATCH_PAUSE = 0.005
#: Seconds a purge's delete may hold the write lock (the batch size adapts to it): a
#: signed request arriving meanwhile waits at most about this long for its nonce.
PURGE_HOLD = 0.004
PURGE_FIRST_BATCH = 200
PURGE_MIN_BATCH = 20


@dataclass(frozen=True)
class TokenRow:
    """A token as the admin sees it: never its secret."""

    id: int
    token: str
    consumer_key: str
    consumer_name: str
    type: str
    user: str | None
    state: str  # the stored state, or "expired"
    issued_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class TokenPage:
    rows: list[TokenRow]
    next_before_id: int | None


@dataclass(frozen=True)
class TokenSelection:
    """Which tokens a bulk revoke touches; at least one criterion is required."""

    consumer_key: str | None = None
    user: str | None = None
    type: str | None = None
    expired: bool = False
    unused_days: int | None = None

    def is_empty(self) -> bool:
        return (self.consumer_key is None and self.user is None and not self.expired
                and self.unused_days is None)


@dataclass(frozen=True)
class PendingRequest:
    """A request token waiting for the user's decision (what the authorize page shows)."""

    token: str
    consumer_key: str
    consumer_name: str
    consumer_description: str | None
    callback_url: str | None
    expires_at: datetime | None


@dataclass(frozen=True)
class Decision:
    """The user's answer to a request token: a verifier, or ``denied``."""

    token: str
    consumer_key: str
    consumer_name: str
    user: str
    approved: bool
    verifier: str  # "denied" when not approved
    callback_url: str | None  # None or "oob": out of band

    @property
    def out_of_band(self) -> bool:
        return self.callback_url in (None, "oob")

    def redirect_url(self) -> str | None:
        """The callback with oauth_token and oauth_verifier added, or None for oob.

        RFC 5849 section 2.2: the two are *added* to the callback's query, which stays
        exactly as the consumer sent it (``state=a%20b``, ``flag`` without ``=``, ``;``
        and escapes that are not UTF-8 untouched), before any fragment.
        """
        if self.out_of_band:
            return None
        assert self.callback_url is not None
        url, hash_, fragment = self.callback_url.partition("#")
        added = urlencode([("oauth_token", self.token), ("oauth_verifier", self.verifier)],
                          quote_via=quote)
        if "?" not in url:
            url += "?" + added
        elif url.endswith(("?", "&")):
            url += added
        else:
            url += "&" + added
        return url + hash_ + fragment


class TokenStateError(ValidationError):
    """The token exists but cannot be used for this (expired, used, decided)."""


VERIFIER_DENIED = "denied"
MAX_USER = 255


def check_user(user: str | None) -> str:
    user = (user or "").strip()
    if not user:
        raise ValidationError("Say which user approves: a user name is required.", field="user")
    if len(user) > MAX_USER or not user.isprintable():
        raise ValidationError(f"A user name is printable text of at most {MAX_USER} characters.",
                              field="user")
    return user


def shown_state(token: Token, now: datetime) -> str:
    if token.state in LIVE_STATES and token.expires_at is not None and token.expires_at <= now:
        return TokenState.EXPIRED
    return token.state


class TokenService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _consumer_id(self, key: str) -> int:
        with self.store.session() as s:
            cid = s.exec(select(Consumer.id).where(Consumer.key == key)).first()
        if cid is None:
            raise NotFoundError(f"No consumer with key {key!r}.",
                                hint="`tui-oauth consumers list` shows them.")
        return cid

    def _where(self, sel: TokenSelection, now: datetime) -> list[ColumnElement[bool]]:
        if sel.type is not None and sel.type not in TYPES:
            raise ValidationError(f"Token type must be one of {', '.join(TYPES)}.", field="type")
        if sel.unused_days is not None and sel.unused_days < 0:
            raise ValidationError("--unused-days must be 0 or more.", field="unused_days")
        where: list[ColumnElement[bool]] = []
        if sel.consumer_key is not None:
            where.append(col(Token.consumer_id) == self._consumer_id(sel.consumer_key))
        if sel.user is not None:
            where.append(col(Token.user) == sel.user)
        if sel.type is not None:
            where.append(col(Token.type) == sel.type)
        if sel.expired:
            where.append(and_(col(Token.expires_at).is_not(None), col(Token.expires_at) <= now))
        if sel.unused_days is not None:
            cutoff = now - timedelta(days=sel.unused_days)
            where.append(or_(
                and_(col(Token.last_used_at).is_(None), col(Token.issued_at) <= cutoff),
                col(Token.last_used_at) <= cutoff,
            ))
        return where

    # A consumer's tokens a window at a time, newest first (the console's detail view)

    def count_of(self, consumer_key: str) -> int:
        """How many tokens ``consumer_key`` has, in any state (an index-only count)."""
        cid = self._consumer_id(consumer_key)
        with self.store.session() as s:
            return count_rows(s, Token, [col(Token.consumer_id) == cid])

    def window(self, consumer_key: str, *, start: int = 0, size: int = 100,
               total: int | None = None) -> list[TokenRow]:
        """Tokens ``start`` .. ``start + size - 1`` of ``consumer_key``, newest first."""
        cid = self._consumer_id(consumer_key)
        now = utcnow()
        with self.store.session() as s:
            ids = window_ids(s, Token.id, [col(Token.consumer_id) == cid], [col(Token.id)],
                             descending=True, start=start, size=size, total=total)
            if not ids:
                return []
            found = s.exec(select(Token, Consumer.key, Consumer.name)
                           .join(Consumer, col(Consumer.id) == col(Token.consumer_id))
                           .where(col(Token.id).in_(ids))).all()
        return [TokenRow(t.id or 0, t.token, key, name, t.type, t.user, shown_state(t, now),
                         t.issued_at, t.expires_at, t.last_used_at)
                for t, key, name in in_order(found, ids, lambda r: r[0].id)]

    def position(self, consumer_key: str, token: str) -> int | None:
        """Where ``token`` stands among ``consumer_key``'s tokens, newest first."""
        cid = self._consumer_id(consumer_key)
        with self.store.session() as s:
            return position_of(s, Token, [col(Token.consumer_id) == cid], [col(Token.id)],
                               col(Token.token) == token, descending=True)

    def list(self, *, consumer_key: str | None = None, user: str | None = None,
             type: str | None = None, state: str | None = None, limit: int = 100,
             before_id: int | None = None) -> TokenPage:
        """Newest first, paged by id (``before_id``), filtered; never reads a secret."""
        if state is not None and state not in STATES:
            raise ValidationError(f"State must be one of {', '.join(STATES)}.", field="state")
        now = utcnow()
        limit = max(1, min(limit, MAX_PAGE))
        stmt = (select(Token, Consumer.key, Consumer.name)
                .join(Consumer, col(Consumer.id) == col(Token.consumer_id)))
        for cond in self._where(TokenSelection(consumer_key, user, type), now):
            stmt = stmt.where(cond)
        if state == TokenState.EXPIRED:
            stmt = stmt.where(col(Token.state).in_(LIVE_STATES),
                              col(Token.expires_at).is_not(None), col(Token.expires_at) <= now)
        elif state is not None:
            stmt = stmt.where(col(Token.state) == state)
            if state in LIVE_STATES:
                stmt = stmt.where(or_(col(Token.expires_at).is_(None),
                                      col(Token.expires_at) > now))
        if before_id is not None:
            stmt = stmt.where(col(Token.id) < before_id)
        stmt = stmt.order_by(col(Token.id).desc()).limit(limit + 1)
        with self.store.session() as s:
            found = s.exec(stmt).all()
        rows = [
            TokenRow(t.id or 0, t.token, key, name, t.type, t.user, shown_state(t, now),
                     t.issued_at, t.expires_at, t.last_used_at)
            for t, key, name in found[:limit]
        ]
        return TokenPage(rows, rows[-1].id if len(found) > limit and rows else None)

    def count(self, sel: TokenSelection, *, only_live: bool = True) -> int:
        """How many tokens a bulk revoke would touch (shown before asking)."""
        now = utcnow()
        stmt = select(func.count()).select_from(Token)
        for cond in self._where(sel, now):
            stmt = stmt.where(cond)
        if only_live:
            stmt = stmt.where(col(Token.state).in_(LIVE_STATES))
        with self.store.session() as s:
            return int(s.exec(stmt).one())

    # The user's decision on a request token (authorize page, CLI, TUI) ---------

    def _pending_row(self, session: Session, token: str, now: datetime,
                     *, lock: bool) -> tuple[Token, Consumer]:
        stmt = select(Token).where(Token.token == token, Token.type == TokenType.REQUEST)
        if lock:
            stmt = stmt.with_for_update()
        row = session.exec(stmt).first()
        if row is None:
            raise NotFoundError(f"No request token {token!r}.",
                                hint="`tui-oauth tokens list --type request --state pending`.")
        consumer = session.get(Consumer, row.consumer_id)
        assert consumer is not None
        if row.state != TokenState.PENDING:
            raise TokenStateError(f"This request token was already {row.state}; the consumer "
                                  "must start again.", field="token")
        if row.expires_at is not None and row.expires_at <= now:
            raise TokenStateError("This request token has expired; the consumer must start "
                                  "again.", field="token")
        return row, consumer

    def pending(self, token: str) -> PendingRequest:
        """A pending request token, for the authorize page; raises when it is not pending."""
        with self.store.session() as s:
            row, consumer = self._pending_row(s, token, utcnow(), lock=False)
            return PendingRequest(row.token, consumer.key, consumer.name, consumer.description,
                                  row.callback_url, row.expires_at)

    def authorize(self, token: str, user: str) -> Decision:
        """Approve a pending request token as ``user``; returns the verifier."""
        return self._decide(token, check_user(user), approve=True)

    def deny(self, token: str, user: str) -> Decision:
        """Deny a pending request token; the consumer gets ``oauth_verifier=denied``."""
        return self._decide(token, check_user(user), approve=False)

    def _decide(self, token: str, user: str, *, approve: bool) -> Decision:
        now = utcnow()
        with self.store.transaction() as uow:
            row, consumer = self._pending_row(uow.session, token, now, lock=True)
            if approve:
                verifier = secrets.token_urlsafe(15)
                row.state, row.verifier = TokenState.AUTHORIZED, verifier
            else:
                verifier = VERIFIER_DENIED
                row.state, row.verifier = TokenState.DENIED, None
            row.user = user
            uow.session.add(row)
            uow.audit("token.authorize" if approve else "token.deny", "token",
                      f"{consumer.key}/request", after={"state": row.state, "user": user})
        return Decision(row.token, consumer.key, consumer.name, user, approve, verifier,
                        row.callback_url)

    def purge_nonces(self, older_than: int, *, batch: int = 5000) -> int:
        """Delete nonces whose timestamp is more than ``older_than`` seconds old (they
        can no longer be replayed: their timestamp is refused).  Batched as
        :meth:`purge` is."""
        cutoff = int(time.time()) - older_than
        return self._purge_batches(Nonce, Nonce.timestamp < cutoff, batch)

    def revoke(self, token: str) -> TokenRow:
        """Revoke one token (by its token string); effective on the next request."""
        now = utcnow()
        with self.store.transaction() as uow:
            row = uow.session.exec(select(Token).where(Token.token == token)
                                   .with_for_update()).first()
            if row is None:
                raise NotFoundError(f"No token {token!r}.", hint="`tui-oauth tokens list`.")
            key = uow.session.exec(select(Consumer.key)
                                   .where(Consumer.id == row.consumer_id)).one()
            before = row.state
            if row.state in LIVE_STATES:
                row.state, row.revoked_at = TokenState.REVOKED, now
                uow.session.add(row)
                uow.audit("token.revoke", "token", f"{key}/{row.type}",
                          before={"state": before, "user": row.user},
                          after={"state": TokenState.REVOKED, "user": row.user})
            result = TokenRow(row.id or 0, row.token, key, "", row.type, row.user,
                              shown_state(row, now), row.issued_at, row.expires_at,
                              row.last_used_at)
        return result

    def revoke_where(self, sel: TokenSelection) -> int:
        """Revoke every live token matching ``sel``; returns how many."""
        if sel.is_empty():
            raise ValidationError("Say which tokens: a consumer, a user, --expired or "
                                  "--unused-days.", field="selection")
        now = utcnow()
        with self.store.transaction() as uow:
            stmt = (update(Token).where(*self._where(sel, now))
                    .where(col(Token.state).in_(LIVE_STATES))
                    .values(state=TokenState.REVOKED, revoked_at=now))
            n = uow.session.exec(stmt).rowcount
            if n:
                uow.audit("token.revoke_bulk", "token", sel.consumer_key or sel.user or "*",
                          detail=f"{n} token(s) revoked: {sel}")
        return int(n or 0)

    def purge_rows(self, table: Any, cond: Any, *, batch: int = 1000) -> int:
        """Delete the rows of ``table`` (with an ``id``) matching ``cond`` as
        :meth:`purge` does, in short batches; returns how many went."""
        return self._purge_batches(table, cond, batch)

    def _purge_batches(self, table: Any, cond: Any, ceiling: int) -> int:
        """Delete the rows of ``table`` matching ``cond`` in short write transactions,
        so that the provider's writes (a nonce per signed request) wait little behind a
        purge: each batch's ids are found by a read, in id order from where the last
        batch ended (never holding the write lock while searching), then deleted with
        ``cond`` checked again; the batch size adapts so that a delete holds the lock
        about PURGE_HOLD seconds (at most ``ceiling`` rows), and the WAL is checkpointed
        between batches.  Returns how many rows went."""
        id_col = col(table.id)
        size, last_id, total = min(ceiling, PURGE_FIRST_BATCH), 0, 0
        while True:
            with self.store.session() as s:
                ids = list(s.exec(select(id_col).where(cond, id_col > last_id)
                                  .order_by(id_col).limit(size)).all())
            if not ids:
                return total
            started = time.perf_counter()
            with self.store.transaction() as uow:
                total += int(uow.session.exec(
                    delete(table).where(id_col.in_(ids), cond)).rowcount or 0)
            held = time.perf_counter() - started
            last_id = ids[-1]
            if held > 2 * PURGE_HOLD:
                size = max(PURGE_MIN_BATCH, size // 2)
            elif held < PURGE_HOLD / 2:
                size = min(ceiling, size * 2)
            self.store.keep_wal_small()
            time.sleep(BATCH_PAUSE)  # let the server's writes in between batches

    def purge(self, *, batch: int = 1000, revoked_older_than: timedelta = timedelta(days=1)
              ) -> int:
        """Delete expired tokens, used/denied request tokens and long-revoked ones,
        in batches (safe while the server runs), and the refusal log's rows past its
        retention or beyond its cap (RefusalsService.purge).  Returns how many tokens
        went."""
        now = utcnow()
        cond = or_(
            and_(col(Token.expires_at).is_not(None), col(Token.expires_at) <= now),
            col(Token.state).in_((TokenState.USED, TokenState.DENIED)),
            and_(col(Token.state) == TokenState.REVOKED,
                 col(Token.revoked_at) <= now - revoked_older_than),
        )
        total = self._purge_batches(Token, cond, batch)
        if total:
            with self.store.transaction() as uow:
                uow.audit("token.purge", "token", "*", detail=f"{total} token(s) purged")
        services(self.store).refusals.purge()
        return total
