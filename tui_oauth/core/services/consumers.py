"""Consumers: applications allowed to consume our resources."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from secrets import token_urlsafe
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, tuple_
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from tui_oauth.core.errors import ConflictError, FieldError, NotFoundError, ValidationError
from tui_oauth.core.keys import PublicKeyInfo, describe, parse_public_key
from tui_oauth.core.models import (
    CONSUMER_SIGNATURE_METHODS,
    HMAC_SHA1,
    RSA_SHA1,
    Consumer,
    Token,
    TokenType,
    consumer_secret_item,
    previous_secret_item,
)
from tui_oauth.core.services import (
    UNSET,
    check_edit,
    check_fresh,
    editable_changes,
    locked,
    remove_with,
    save_edit,
    save_new,
)
from tui_oauth.core.services.windows import (
    MAX_WINDOW,
    any_contains,
    count_rows,
    counts_by,
    in_order,
    position_of,
    window_ids,
)
from tui_oauth.core.sqlite_reads import CONSUMER_FILTER, CONSUMER_SORTS, ConsumerSummary
from tui_oauth.core.timeutil import utcnow
from tui_oauth.core.validation import (
    MAX_DESCRIPTION,
    MAX_KEY,
    MAX_NAME,
    Checker,
)

if TYPE_CHECKING:
    from tui_oauth.core.consumer_info_fetch import FetchResult
    from tui_oauth.core.store import Store, UnitOfWork

#: The same names as sqlite_reads.CONSUMER_SORTS (the CLI's fast path sorts by those).
SORT_COLUMNS: dict[str, Any] = {
    "key": Consumer.key,
    "name": func.lower(Consumer.name),  # case-insensitive, like the providers list
    "signature_method": Consumer.signature_method,
    "created": Consumer.created_at,
    # as 0/1: a keyset page compares it with < and >, which SQL booleans do not take
    "two_lo": case((col(Consumer.two_lo_allowed), 1), else_=0),
}
assert SORT_COLUMNS.keys() == CONSUMER_SORTS.keys()
#: windows starting above this row are read in one statement (skipping that many rows
#: costs less than a second statement); deeper ones skip along the index by id first
SHALLOW = 1000
EDITABLE = (
    "name", "description", "public_key", "callback_url", "signature_method", "allow_plaintext",
    "three_lo_allowed", "two_lo_allowed", "two_lo_execute_as", "two_lo_impersonation",
)


@dataclass(frozen=True)
class ConsumerDetail:
    consumer: Consumer
    public_key: PublicKeyInfo | None
    request_tokens: int
    access_tokens: int

    @property
    def token_count(self) -> int:
        return self.request_tokens + self.access_tokens


@dataclass(frozen=True)
class ConsumerPreview:
    """What adding by URL found, shown to the admin before saving."""

    fetched: FetchResult
    existing: Consumer | None  # a consumer with the same key is already stored

    @property
    def key(self) -> str:
        return self.fetched.doc.key


#: The longest overlap a rotation may keep the old secret for.
MAX_OVERLAP = timedelta(days=90)


@dataclass(frozen=True)
class Rotation:
    key: str
    secret: str  # the new shared secret (the caller shows it once, or was given it)
    generated: bool
    previous_until: datetime | None  # None: the old secret was dropped at once


class ConsumerService:
    def __init__(self, store: Store) -> None:
        self.store = store

    # Reading ---------------------------------------------------------------

    def iter_list(self, filter: str | None = None, *, sort: str = "key",
                  descending: bool = False, page_size: int = 1000
                  ) -> Iterator[ConsumerSummary]:
        """The same rows as :meth:`list`, read a page at a time (keyset paging on the
        sort column and the key), so that memory stays constant however many there are;
        token counts are taken for each page's consumers only (an indexed query)."""
        order = self._order(sort)
        first = order[0]
        after: tuple[Any, str] | None = None
        while True:
            stmt = sa_select(*self._SUMMARY, first.label("sort_value"))
            stmt = self._filtered(stmt, filter)
            if after is not None:  # ties are broken by the key, in the sort's direction
                value, key = after
                left: Any = first if sort == "key" else tuple_(first, col(Consumer.key))
                right: Any = key if sort == "key" else tuple_(value, key)
                stmt = stmt.where(left < right if descending else left > right)
            stmt = stmt.order_by(*(o.desc() if descending else o.asc() for o in order))
            with self.store.session() as s:
                rows = s.execute(stmt.limit(page_size)).all()
                counts = counts_by(s, col(Token.consumer_id), [r[0] for r in rows])
            yield from (self._summary(r, counts) for r in rows)
            if len(rows) < page_size:
                return
            after = (rows[-1][-1], rows[-1][1])

    # Windows: what the console's list asks for as it scrolls (see services/windows.py)

    def count(self, filter: str | None = None) -> int:
        """How many consumers match ``filter``."""
        with self.store.session() as s:
            return count_rows(s, Consumer, self._conditions(filter))

    def window(self, filter: str | None = None, *, sort: str = "key",
               descending: bool = False, start: int = 0, size: int = 100,
               total: int | None = None) -> list[ConsumerSummary]:
        """Rows ``start`` .. ``start + size - 1`` of the list sorted by ``sort``
        (ties by key, in the same direction); ``total`` (from :meth:`count`) lets a
        window near the end be read from the end."""
        order = self._order(sort)
        conditions = self._conditions(filter)
        with self.store.session() as s:
            if start < SHALLOW and (total is None or start + size / 2 <= total / 2):
                # Near the top: one statement (the first screen of the console).
                rows = s.execute(
                    sa_select(*self._SUMMARY).where(*conditions)
                    .order_by(*(o.desc() if descending else o.asc() for o in order))
                    .offset(max(start, 0)).limit(max(0, min(size, MAX_WINDOW)))).all()
                ids = [r[0] for r in rows]
            else:
                ids = window_ids(s, Consumer.id, conditions, order, descending=descending,
                                 start=start, size=size, total=total)
                rows = in_order(s.execute(sa_select(*self._SUMMARY).where(
                    col(Consumer.id).in_(ids))).all(), ids, lambda r: r[0]) if ids else []
            counts = counts_by(s, col(Token.consumer_id), ids)
        return [self._summary(r, counts) for r in rows]

    #: The columns of a list row: never the public key itself, only whether there is one.
    _SUMMARY = (col(Consumer.id), col(Consumer.key), col(Consumer.name),
                col(Consumer.signature_method), col(Consumer.two_lo_allowed),
                col(Consumer.created_at), col(Consumer.public_key).is_not(None),
                col(Consumer.has_shared_secret))

    @staticmethod
    def _summary(r: Any, counts: dict[int, int]) -> ConsumerSummary:
        return ConsumerSummary(key=r[1], name=r[2], signature_method=r[3],
                               two_lo_allowed=bool(r[4]), token_count=counts.get(r[0], 0),
                               created_at=r[5], has_public_key=bool(r[6]),
                               has_shared_secret=bool(r[7]))

    def position(self, key: str, filter: str | None = None, *, sort: str = "key",
                 descending: bool = False) -> int | None:
        """Where ``key`` stands in that list (None when the filter hides it or it is gone)."""
        with self.store.session() as s:
            return position_of(s, Consumer, self._conditions(filter), self._order(sort),
                               col(Consumer.key) == key, descending=descending)

    @staticmethod
    def _order(sort: str) -> list[Any]:
        if sort not in SORT_COLUMNS:
            raise ValidationError(
                f"Cannot sort by {sort!r}; choose one of {', '.join(sorted(SORT_COLUMNS))}.",
                field="sort",
            )
        return [SORT_COLUMNS[sort]] if sort == "key" else [SORT_COLUMNS[sort],
                                                            col(Consumer.key)]

    @staticmethod
    def _conditions(filter: str | None) -> list[Any]:
        return any_contains([getattr(Consumer, c) for c in CONSUMER_FILTER], filter)

    @classmethod
    def _filtered(cls, stmt: Any, filter: str | None) -> Any:
        return stmt.where(*cls._conditions(filter))

    def list(self, filter: str | None = None, *, sort: str = "key",
             descending: bool = False) -> list[ConsumerSummary]:
        """Every consumer matching ``filter``, sorted (then by key)."""
        return list(self.iter_list(filter, sort=sort, descending=descending))

    def get(self, key: str) -> Consumer:
        with self.store.session() as s:
            row = s.exec(select(Consumer).where(Consumer.key == key)).first()
        if row is None:
            raise self._missing(key)
        return row

    def detail(self, key: str) -> ConsumerDetail:
        consumer = self.get(key)
        counts = self._token_counts(consumer)
        info = describe(consumer.public_key) if consumer.public_key else None
        return ConsumerDetail(consumer, info, counts.get(TokenType.REQUEST, 0),
                              counts.get(TokenType.ACCESS, 0))

    def _token_counts(self, consumer: Consumer) -> dict[str, int]:
        with self.store.session() as s:
            rows = s.exec(
                select(Token.type, func.count())
                .where(Token.consumer_id == consumer.id)
                .group_by(col(Token.type))
            ).all()
        return {t: int(n) for t, n in rows}

    def shared_secret(self, key: str) -> str | None:
        """Read a consumer's shared secret from the keyring (on purpose only)."""
        consumer = self.get(key)
        if not consumer.has_shared_secret:
            return None
        return self.store.secrets.get(consumer_secret_item(consumer))

    # Validation ------------------------------------------------------------

    def _clean(self, c: Checker, data: dict[str, Any], *, has_secret: bool,
               key_check: bool) -> dict[str, Any]:
        """Check every field into ``c``; the caller raises once with all errors."""
        out: dict[str, Any] = {}
        if key_check:
            out["key"] = c.identifier("key", data.get("key"), label="Consumer key", max_len=MAX_KEY)
        out["name"] = c.text("name", data.get("name"), label="Name", max_len=MAX_NAME,
                             required=True)
        out["description"] = c.text("description", data.get("description"), label="Description",
                                    max_len=MAX_DESCRIPTION, multiline=True)
        out["callback_url"] = c.url("callback_url", data.get("callback_url"), label="Callback URL")
        pk = data.get("public_key")
        out["public_key"] = None
        if pk is not None and str(pk).strip():
            try:
                out["public_key"] = parse_public_key(str(pk), "public_key").base64_der
            except ValidationError as exc:
                c.errors.extend(exc.errors)
        method = (data.get("signature_method") or "").strip().upper()
        if not method:
            method = RSA_SHA1 if pk else HMAC_SHA1 if has_secret else RSA_SHA1
        out["signature_method"] = method
        if method not in CONSUMER_SIGNATURE_METHODS:
            c.fail("signature_method",
                   f"Signature method {method!r} is not one of "
                   f"{', '.join(CONSUMER_SIGNATURE_METHODS)}.")
        elif method == RSA_SHA1 and not (pk and str(pk).strip()):
            if not c.errors or all(e.field != "public_key" for e in c.errors):
                c.fail("public_key", "RSA-SHA1 needs the consumer's RSA public key; paste it "
                       "(PEM, certificate or base64), or choose HMAC-SHA1 with a shared secret.")
        elif method == HMAC_SHA1 and not has_secret:
            c.fail("shared_secret", "HMAC-SHA1 needs a shared secret; give one "
                   "(--secret-stdin or --secret-file), or choose RSA-SHA1 with a public key.")
        out["allow_plaintext"] = bool(data.get("allow_plaintext", False))
        if out["allow_plaintext"] and not has_secret:
            c.fail("allow_plaintext", "PLAINTEXT signs with the shared secret; give one first.")
        out["three_lo_allowed"] = bool(data.get("three_lo_allowed", True))
        out["two_lo_allowed"] = bool(data.get("two_lo_allowed", False))
        out["two_lo_execute_as"] = c.text("two_lo_execute_as", data.get("two_lo_execute_as"),
                                          label="Execute-as user", max_len=MAX_NAME)
        out["two_lo_impersonation"] = bool(data.get("two_lo_impersonation", False))
        if not out["two_lo_allowed"]:
            if out["two_lo_execute_as"]:
                c.fail("two_lo_execute_as",
                       "An execute-as user only applies with 2-legged OAuth allowed; allow 2LO "
                       "or leave the user blank.")
            if out["two_lo_impersonation"]:
                c.fail("two_lo_impersonation",
                       "Impersonation is part of 2-legged OAuth; allow 2LO first.")
        return out

    def check_fields(self, data: dict[str, Any], *, has_secret: bool) -> dict[str, Any]:
        """Every field of a new consumer, checked as :meth:`add` checks them (for an
        import); raises one ValidationError listing every problem."""
        c = Checker()
        fields = self._clean(c, data, has_secret=has_secret, key_check=True)
        c.raise_if_any()
        return fields

    # Writing ---------------------------------------------------------------

    def add(self, *, key: str, name: str, description: str | None = None,
            public_key: str | None = None, shared_secret: str | None = None,
            callback_url: str | None = None, signature_method: str | None = None,
            allow_plaintext: bool = False, three_lo_allowed: bool = True,
            two_lo_allowed: bool = False, two_lo_execute_as: str | None = None,
            two_lo_impersonation: bool = False) -> Consumer:
        c = Checker()
        secret = c.secret("shared_secret", shared_secret, label="Shared secret")
        fields = self._clean(c, dict(
            key=key, name=name, description=description, public_key=public_key,
            callback_url=callback_url, signature_method=signature_method,
            allow_plaintext=allow_plaintext, three_lo_allowed=three_lo_allowed,
            two_lo_allowed=two_lo_allowed, two_lo_execute_as=two_lo_execute_as,
            two_lo_impersonation=two_lo_impersonation,
        ), has_secret=shared_secret is not None, key_check=True)
        c.raise_if_any()
        consumer = Consumer(uid=str(uuid.uuid4()), has_shared_secret=secret is not None, **fields)
        try:
            with self.store.transaction() as uow:
                exists = uow.session.exec(
                    select(Consumer.id).where(Consumer.key == consumer.key)
                ).first()
                if exists is not None:
                    raise self._taken(consumer.key)
                save_new(uow, consumer, secret, item=consumer_secret_item(consumer),
                         action="consumer.add", target_type="consumer", target=consumer.key)
        except IntegrityError:
            raise self._taken(consumer.key) from None
        return consumer

    @staticmethod
    def _missing(key: str) -> NotFoundError:
        return NotFoundError(f"No consumer with key {key!r}.",
                             hint="`tui-oauth consumers list` shows them.")

    def _locked(self, uow: UnitOfWork, key: str) -> Consumer:
        """Consumer ``key`` read and locked for a change in ``uow`` (NotFoundError)."""
        row: Consumer = locked(uow, Consumer, Consumer.key == key, lambda: self._missing(key))
        return row

    @staticmethod
    def _taken(key: str) -> ConflictError:
        return ConflictError(
            [FieldError("key", f"A consumer with key {key!r} already exists; keys are unique. "
                               "Edit that consumer, or remove it first.")]
        )

    def preview_from_url(self, base_url: str, *, timeout: float = 10.0,
                         allow_private: bool = False) -> ConsumerPreview:
        """Fetch ``{base}/plugins/servlet/oauth/consumer-info`` and say what was found.

        Only from public addresses unless ``allow_private`` (an intranet server)."""
        from tui_oauth.core.consumer_info_fetch import fetch_consumer_info  # imports requests

        fetched = fetch_consumer_info(base_url, timeout=timeout, allow_private=allow_private)
        with self.store.session() as s:
            existing = s.exec(select(Consumer).where(Consumer.key == fetched.doc.key)).first()
        return ConsumerPreview(fetched, existing)

    def add_from_preview(self, preview: ConsumerPreview, **overrides: Any) -> Consumer:
        """Save what :meth:`preview_from_url` fetched, with optional field overrides."""
        doc = preview.fetched.doc
        fields: dict[str, Any] = dict(
            key=doc.key, name=doc.name, description=doc.description,
            public_key=doc.public_key.base64_der, callback_url=doc.callback,
            signature_method=RSA_SHA1,
        )
        fields.update({k: v for k, v in overrides.items() if v is not UNSET})
        consumer = self.add(**fields)
        return consumer

    def edit(self, key: str, /, *, shared_secret: Any = UNSET,
             expected_updated_at: datetime | None = None, **changes: Any) -> Consumer:
        """Change the fields given, and only those; the key cannot change.

        ``shared_secret``: UNSET keeps it, None or "" removes it, a string replaces
        it.  The row is read, checked and written in one write transaction, so two
        edits of different fields both count.  ``expected_updated_at`` (what a form
        saw when it opened) refuses to save over a change made since: StaleError.
        """
        if "key" in changes:
            raise ValidationError(
                "The consumer key cannot change; add a new consumer with the new key and "
                "remove this one.", field="key",
            )
        given = editable_changes(changes, EDITABLE)
        with self.store.transaction() as uow:
            row = self._locked(uow, key)
            check_fresh(row, expected_updated_at, f"Consumer {key!r}")
            fields, secret = check_edit(row, given, shared_secret, EDITABLE,
                                        functools.partial(self._clean, key_check=False))
            save_edit(uow, row, {f: fields[f] for f in given}, secret,
                      item=consumer_secret_item(row), action="consumer.edit",
                      target_type="consumer", target=key)
            if secret.changes and row.previous_secret_until is not None:
                # A secret set or removed by hand ends any rotation's overlap.
                uow.delete_secret(previous_secret_item(row))
                row.previous_secret_until = None
                uow.session.add(row)
        return row

    def rotate_secret(self, key: str, *, secret: str | None = None,
                      overlap: timedelta = timedelta(0)) -> Rotation:
        """Give consumer ``key`` a new shared secret (``secret``, or a generated one),
        keeping the old one accepted for ``overlap`` (at most MAX_OVERLAP) so that the
        consumer can switch without an outage; the purge forgets the old one after it.
        Only a consumer that signs with a shared secret has one to rotate."""
        if overlap < timedelta(0) or overlap > MAX_OVERLAP:
            raise ValidationError(f"The overlap must be between 0 and {MAX_OVERLAP.days} days.",
                                  field="overlap")
        c = Checker()
        given = c.secret("shared_secret", secret, label="Shared secret") if secret else None
        c.raise_if_any()
        new = given or token_urlsafe(24)
        now = utcnow()
        with self.store.transaction() as uow:
            row = self._locked(uow, key)
            if not row.has_shared_secret:
                raise ValidationError(
                    f"Consumer {key!r} has no shared secret to rotate (it signs with "
                    f"{row.signature_method}).")
            old = self.store.secrets.get(consumer_secret_item(row))
            until = now + overlap if overlap and old else None
            if until is not None and old is not None:
                uow.set_secret(previous_secret_item(row), old)
            elif row.previous_secret_until is not None:
                uow.delete_secret(previous_secret_item(row))
            uow.set_secret(consumer_secret_item(row), new)
            row.previous_secret_until = until
            row.updated_at = now  # the providers' refresh reads it again
            uow.session.add(row)
            uow.audit("consumer.rotate_secret", "consumer", key,
                      detail="shared secret replaced" + (
                          f"; the old one is accepted until {until:%Y-%m-%d %H:%M} UTC"
                          if until else "; the old one no longer works"))
        return Rotation(key, new, given is None, until)

    def old_secrets_due(self, now: datetime | None = None) -> Sequence[str]:
        """Consumers whose rotated secret's overlap has ended (forget_old_secrets)."""
        with self.store.session() as s:
            return list(s.exec(select(Consumer.key).where(
                col(Consumer.previous_secret_until) <= (now or utcnow()))).all())

    def forget_old_secrets(self, now: datetime | None = None) -> int:
        """Delete the old secrets whose overlap has ended (the purge calls this);
        returns how many went."""
        now = now or utcnow()
        done = 0
        for key in self.old_secrets_due(now):
            with self.store.transaction() as uow:
                row = uow.session.exec(select(Consumer).where(
                    Consumer.key == key, col(Consumer.previous_secret_until) <= now)
                    .with_for_update()).first()
                if row is None:
                    continue
                uow.delete_secret(previous_secret_item(row))
                row.previous_secret_until = None
                uow.session.add(row)
                uow.audit("consumer.secret_overlap_end", "consumer", key,
                          detail="the old shared secret was deleted (its overlap ended)")
                done += 1
        return done

    def remove(self, key: str) -> int:
        """Remove a consumer with its tokens; returns how many tokens went with it."""
        with self.store.transaction() as uow:
            row = self._locked(uow, key)
            items = [consumer_secret_item(row)] if row.has_shared_secret else []
            if row.previous_secret_until is not None:
                items.append(previous_secret_item(row))
            return remove_with(uow, row, Token, col(Token.consumer_id), items=items,
                               action="consumer.remove", target_type="consumer", target=key,
                               what="token(s)")
