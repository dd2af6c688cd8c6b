"""What verification needs from each consumer, kept in memory.

The consumer *row* is read on every request (one Core select by key, no ORM
object), so an edit or a removal counts from the next request on every process,
whatever the refresh does.  Its secrets are not read per request: the HMAC
shared secret (a keyring read) is kept per consumer uid and ``updated_at``, and
the RSA public key is parsed when first needed and kept in a bounded LRU cache
(:data:`PARSED_KEYS`), so a server over 100,000 consumers starts without
parsing any key.  A consumer seen for the first time, or changed since, is
loaded on its request (the one keyring read a change costs).

The periodic refresh (:meth:`ConsumerCache.refresh`, every second in the server)
reads only what changed: the rows whose ``updated_at`` is at or after the last
refresh's mark (index ``ix_consumers_updated_at``) or whose id is new, and
loads those already cached ahead of their next request; it retries secrets
the keyring could not give; and when ``count(*)`` and ``max(id)`` show that rows
went (the store keeps no tombstones), it drops the cached consumers that are no
longer there.  None of this decides who is accepted (the per-request row does);
it keeps keyring reads off the request path and the memory bounded.

An unknown key never reaches the keyring (a missing item answers faster than a
present one: a timing oracle), it gets the dummy entry, with a dummy RSA key
and a dummy secret that cost the same to verify against.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import secrets
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.serialization import load_der_public_key
from sqlalchemy import and_, bindparam, case, func, or_, select
from sqlmodel import col

from tui_oauth.core.errors import SecretStoreError, TuiOAuthError
from tui_oauth.core.keys import describe
from tui_oauth.core.models import (
    RSA_SHA1,
    Consumer,
    Token,
    consumer_secret_item,
    previous_secret_item,
)

if TYPE_CHECKING:
    from tui_oauth.core.store import Store

log = logging.getLogger(__name__)

#: Parsed RSA public keys kept at most (an LRU); a key parses in about 50 us.
PARSED_KEYS = 4096
#: Consumers whose entries (the row as last seen, with its parsed key) are kept at
#: most (an LRU).
ENTRIES = PARSED_KEYS
#: A refresh re-reads the rows changed since its last mark minus this much, so a
#: row written with a clock a little behind (another host) is still seen.
CLOCK_SLACK = timedelta(seconds=10)
#: Cached uids checked per statement when looking for removed consumers.
REMOVED_BATCH = 500

#: What the request path reads of a consumer: one Core select, a plain row.
COLUMNS = (col(Consumer.id), col(Consumer.key), col(Consumer.name), col(Consumer.uid),
           col(Consumer.updated_at), col(Consumer.signature_method),
           col(Consumer.allow_plaintext), col(Consumer.three_lo_allowed),
           col(Consumer.two_lo_allowed), col(Consumer.two_lo_execute_as),
           col(Consumer.two_lo_impersonation), col(Consumer.callback_url),
           col(Consumer.public_key), col(Consumer.has_shared_secret),
           col(Consumer.previous_secret_until))
N_COLUMNS = len(COLUMNS)
#: A token's columns, as the request path reads them.
TOKEN_COLUMNS: tuple[Any, ...] = (
    col(Token.id), col(Token.token), col(Token.consumer_id), col(Token.type),
    col(Token.state), col(Token.user), col(Token.verifier), col(Token.session_handle),
    col(Token.expires_at), col(Token.authorization_expires_at), col(Token.last_used_at),
    col(Token.secret_enc))


def _by_key_or_decoy(stmt: Any) -> Any:
    """``stmt`` narrowed to the consumer with ``:key`` or, when there is none, the one
    with the lowest id (the decoy): the same query whether the key exists or not."""
    return (stmt.where(or_(col(Consumer.key) == bindparam("key"),
                           col(Consumer.id) == select(func.min(Consumer.id)).scalar_subquery()))
            .order_by(case((col(Consumer.key) == bindparam("key"), 0), else_=1))
            .limit(1))


@dataclass(frozen=True)
class ConsumerEntry:
    id: int  # -1 for the dummy
    key: str
    name: str
    uid: str
    updated_at: datetime | None
    signature_method: str
    allow_plaintext: bool
    three_lo_allowed: bool
    two_lo_allowed: bool
    two_lo_execute_as: str | None
    two_lo_impersonation: bool
    callback_url: str | None
    rsa_key: Any  # RSAPublicKey: the consumer's, or the dummy
    secret: str  # the shared secret, or the dummy
    #: A rotated secret's old value, accepted until ``previous_until`` (rotate-secret).
    previous_secret: str | None = None
    previous_until: datetime | None = None

    def shared_secrets(self, now: datetime) -> tuple[str, ...]:
        """The shared secrets a signature may use now: the current one, and the old
        one while its overlap lasts."""
        if (self.previous_secret is not None and self.previous_until is not None
                and now < self.previous_until):
            return (self.secret, self.previous_secret)
        return (self.secret,)

    def accepts(self, method: str) -> bool:
        if method == "PLAINTEXT":
            return self.allow_plaintext and self.signature_method != RSA_SHA1
        return method == self.signature_method


@dataclass(frozen=True)
class _Secrets:
    updated_at: datetime | None
    secret: str
    #: The keyring could not be read (locked, hung): ``secret`` is the dummy, and
    #: the next refresh tries again whatever ``updated_at`` says.
    failed: str | None = None
    previous: str | None = None  # a rotated secret's old value, during its overlap


#: store_meta key prefix under which each serving host reports the consumers whose
#: secrets it could not read (``tui-oauth doctor`` shows them).
STATUS_PREFIX = "provider.keyring_failures."


def status_key(host: str | None = None) -> str:
    host = host or socket.gethostname() or "localhost"
    return STATUS_PREFIX + host[: 64 - len(STATUS_PREFIX)]


#: The RSA public key unknown consumers are checked against (2048 bits, as real
#: ones): fixed, since nothing about it is secret, and parsing it costs ~50 us where
#: generating one cost 50 to 500 ms at every start.
DUMMY_SPKI = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA18+KB9116E2pZ8/zXfZcJd5RVQpGDMQ1xJ2T8d2d6HwZ"
    "wqUCBlj718bJAyMtv7FWN17k442tZcSq8NNS7XzhKMziNH242q8w75Z1xDSzjCYHAaSdAW6ko+KWCJh1UkeLBxX8"
    "P6J6uTA2c/0VXdjPV5m3IAS38D15AY/AyNOoBoU/cWCVu4hyfe6xdr4cYrmFlEuJlrKx5icAaxFYycanJ5QKHpLY"
    "w1bl4I08MO/KaKfZ9ai0vp2+3w3X6UiF/IgLz70TJtGdzjQyOoUyEOqjR5gkO8lFR2Xr/+Y3Mbvjr9BtIbWo6nZA"
    "dodmW+Iy8NIyQ5wbDt6/77PHXExL0IsyyQIDAQAB")


def _dummy_rsa_key() -> Any:
    return load_der_public_key(base64.b64decode(DUMMY_SPKI))


class _LRU:
    """A small thread-safe LRU map."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def pop(self, key: Any) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


class ConsumerCache:
    def __init__(self, store: Store, *, parsed_keys: int = PARSED_KEYS,
                 entries: int = ENTRIES) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._by_uid: dict[str, _Secrets] = {}  # shared secrets (small): every consumer seen
        self._keys: dict[str, str] = {}  # uid -> consumer key, for messages
        self._rsa = _LRU(parsed_keys)  # uid -> (public_key text, parsed key)
        self._entries = _LRU(entries)  # uid -> (row, ConsumerEntry)
        self._reported: dict[str, str] | None = None  # failures last written to store_meta
        self._mark: datetime | None = None  # max(updated_at) at the last refresh
        self._count_max: tuple[int, int] = (0, 0)  # count(*), max(id) at the last refresh
        self.keyring_reads = 0  # for tests: what the request path cost
        self.key_parses = 0  # for tests: public keys parsed
        self.dummy_secret = secrets.token_urlsafe(32)
        self.dummy = ConsumerEntry(
            id=-1, key="", name="", uid="", updated_at=None, signature_method="",
            allow_plaintext=False, three_lo_allowed=False, two_lo_allowed=False,
            two_lo_execute_as=None, two_lo_impersonation=False, callback_url=None,
            rsa_key=_dummy_rsa_key(), secret=self.dummy_secret,
        )
        self._dummy_secrets = _Secrets(None, self.dummy_secret)
        self._lookup = _by_key_or_decoy(select(*COLUMNS))
        # With a token: the token's columns (when it is the consumer's) in the same row,
        # one statement (one round trip on PostgreSQL) instead of two.
        self._lookup_with_token = _by_key_or_decoy(
            select(*COLUMNS, *(c.label("t_" + c.key) for c in TOKEN_COLUMNS))
            .select_from(Consumer)
            .outerjoin(Token, and_(col(Token.token) == bindparam("token"),
                                   col(Token.consumer_id) == col(Consumer.id))))

    @property
    def size(self) -> int:
        """Consumers whose secrets are loaded (they are loaded when first needed)."""
        return len(self._by_uid)

    @property
    def parsed_keys(self) -> int:
        return len(self._rsa)

    def failures(self) -> dict[str, str]:
        """Consumer key -> why its shared secret could not be read (now)."""
        with self._lock:
            return {self._keys.get(uid, uid): f.failed for uid, f in self._by_uid.items()
                    if f.failed is not None}

    # Loading -----------------------------------------------------------------------

    def _load(self, row: Any) -> _Secrets:
        """Read ``row``'s shared secret from the keyring (when it has one)."""
        secret = self.dummy_secret
        failed: str | None = None
        previous = self._by_uid.get(row.uid)
        if row.has_shared_secret:
            self.keyring_reads += 1
            try:
                value = self.store.secrets.get(consumer_secret_item(row))
            except SecretStoreError as exc:
                value, failed = None, exc.message
                if previous is None or previous.failed is None:  # say it once, in words
                    log.error("consumer %r: cannot read its shared secret from the keyring "
                              "(%s); its HMAC-SHA1 and PLAINTEXT requests are refused until "
                              "it can be read. Retrying at every refresh.", row.key, exc.message)
            else:
                if previous is not None and previous.failed is not None:
                    log.warning("consumer %r: its shared secret can be read again", row.key)
                if value is None:
                    log.warning("consumer %r: its shared secret is missing from the keyring "
                                "(`tui-oauth doctor`)", row.key)
            if value is not None:
                secret = value
        old: str | None = None
        if row.has_shared_secret and row.previous_secret_until is not None and failed is None:
            try:
                old = self.store.secrets.get(previous_secret_item(row))
            except SecretStoreError as exc:  # the new secret still works
                log.warning("consumer %r: cannot read its previous shared secret (%s); only "
                            "the new one is accepted", row.key, exc.message)
        self._keys[row.uid] = row.key
        return _Secrets(row.updated_at, secret, failed, old)

    def _secrets_for(self, row: Any) -> _Secrets:
        cached = self._by_uid.get(row.uid)
        if cached is not None and cached.updated_at == row.updated_at:
            # A failed read is retried by the refresh, never on the request path
            # (a locked keyring answers slowly, if at all).
            return cached
        with self._lock:
            cached = self._by_uid.get(row.uid)
            if cached is None or cached.updated_at != row.updated_at:
                cached = self._load(row)
                self._by_uid[row.uid] = cached
        return cached

    def _rsa_for(self, row: Any) -> Any:
        """``row``'s parsed public key (parsed when first needed, then from the LRU)."""
        if not row.public_key:
            return self.dummy.rsa_key
        cached = self._rsa.get(row.uid)
        if cached is not None and cached[0] == row.public_key:
            return cached[1]
        self.key_parses += 1
        try:
            parsed = describe(row.public_key).public_key()
        except TuiOAuthError:
            log.warning("consumer %r: its stored public key does not parse", row.key)
            parsed = self.dummy.rsa_key
        self._rsa.put(row.uid, (row.public_key, parsed))
        return parsed

    def _entry(self, row: Any, found: _Secrets) -> ConsumerEntry:
        seen = tuple(row[:N_COLUMNS])
        cached = self._entries.get(row.uid)
        if (cached is not None and cached[0] == seen and cached[1].secret == found.secret
                and cached[1].previous_secret == found.previous):
            entry: ConsumerEntry = cached[1]
            return entry
        entry = ConsumerEntry(
            id=row.id or 0, key=row.key, name=row.name, uid=row.uid, updated_at=row.updated_at,
            signature_method=row.signature_method, allow_plaintext=row.allow_plaintext,
            three_lo_allowed=row.three_lo_allowed, two_lo_allowed=row.two_lo_allowed,
            two_lo_execute_as=row.two_lo_execute_as,
            two_lo_impersonation=row.two_lo_impersonation, callback_url=row.callback_url,
            rsa_key=self._rsa_for(row), secret=found.secret, previous_secret=found.previous,
            previous_until=row.previous_secret_until,
        )
        self._entries.put(row.uid, (seen, entry))
        return entry

    def _forget(self, uid: str) -> None:
        with self._lock:
            self._by_uid.pop(uid, None)
            self._keys.pop(uid, None)
        self._rsa.pop(uid)
        self._entries.pop(uid)

    # The refresh -------------------------------------------------------------------

    def refresh_all(self) -> int:
        """Kept for callers and tests: :meth:`refresh`."""
        return self.refresh()

    def refresh(self) -> int:
        """Reload the cached consumers changed since the last refresh, retry what failed,
        forget removed consumers; reads only what changed (plus a count).  Returns how
        many consumers were (re)loaded."""
        with self.store.session() as s:
            conn = s.connection()
            count, max_id = conn.execute(
                select(func.count(), func.coalesce(func.max(Consumer.id), 0))
                .select_from(Consumer)).one()
            last_count, last_max = self._count_max
            mark = self._mark
            if mark is None:  # the first refresh (at start): load nothing, note the mark
                top = conn.execute(select(func.max(Consumer.updated_at))).scalar()
                changed: list[Any] = []
            else:
                changed = list(conn.execute(
                    select(*COLUMNS).where(or_(col(Consumer.updated_at) >= mark - CLOCK_SLACK,
                                               col(Consumer.id) > last_max))).all())
                top = max([mark, *(r.updated_at for r in changed if r.updated_at)])
            failed = [uid for uid, f in list(self._by_uid.items()) if f.failed is not None]
            seen = {r.uid for r in changed}
            retry = [uid for uid in failed if uid not in seen]
            for i in range(0, len(retry), REMOVED_BATCH):
                changed.extend(conn.execute(select(*COLUMNS).where(
                    col(Consumer.uid).in_(retry[i:i + REMOVED_BATCH]))).all())
            # Rows went when the count grew less than the rows added since (new ids).
            added = sum(1 for r in changed if r.id > last_max) if mark is not None else 0
            removed_some = mark is not None and count < last_count + added
            gone: set[str] = set()
            if removed_some:
                cached = list(self._by_uid)
                alive: set[str] = set()
                for i in range(0, len(cached), REMOVED_BATCH):
                    alive.update(conn.execute(select(col(Consumer.uid)).where(
                        col(Consumer.uid).in_(cached[i:i + REMOVED_BATCH]))).scalars())
                gone = set(cached) - alive
        loaded = 0
        for row in changed:
            cached_secret = self._by_uid.get(row.uid)
            if cached_secret is None:
                continue  # never used here: loaded on its first request
            if cached_secret.updated_at != row.updated_at or cached_secret.failed:
                fresh = self._load(row)
                with self._lock:
                    self._by_uid[row.uid] = fresh
                loaded += 1
        for uid in gone:
            self._forget(uid)
        self._mark = top if top is not None else mark
        self._count_max = (int(count), int(max_id or 0))
        self.report_failures()
        return loaded

    def report_failures(self) -> None:
        """Write this host's unreadable secrets to store_meta when they change, so that
        `tui-oauth doctor` (on any host) can say so.  Never raises."""
        now = self.failures()
        if now == self._reported or self.store.read_only:
            return
        from tui_oauth.core.models import StoreMeta
        from tui_oauth.core.timeutil import utcnow

        key = status_key()
        try:
            with self.store.transaction() as uow:
                row = uow.session.get(StoreMeta, key)
                if not now:
                    if row is not None:
                        uow.session.delete(row)
                else:
                    since = utcnow().isoformat(timespec="seconds")
                    if row is not None:  # still failing: keep when it began
                        with contextlib.suppress(ValueError, AttributeError, TypeError):
                            since = str(json.loads(row.value)["since"])
                    value = json.dumps({"since": since,
                                        "consumers": sorted(now)[:20], "count": len(now),
                                        "error": next(iter(now.values()))[:200]})
                    if len(value) > 1024:  # store_meta.value's size: keep what fits
                        value = json.dumps({"since": since, "consumers": [],
                                            "count": len(now), "error": ""})
                    if row is None:
                        row = StoreMeta(key=key, value=value)
                    else:
                        row.value = value
                    uow.session.add(row)
        except TuiOAuthError as exc:
            log.warning("could not record the keyring failures for doctor: %s", exc)
            return
        self._reported = now

    def lookup_with_token(self, conn: Any, key: str, token: str, kind: str
                          ) -> tuple[ConsumerEntry, bool, Any]:
        """:meth:`lookup`, and the token ``token`` of ``kind`` when it is that consumer's
        (a plain object with the token's columns), else None; one statement."""
        row = conn.execute(self._lookup_with_token, {"key": key, "token": token}).first()
        if row is None:
            return self.dummy, False, None
        entry, known = self._entry_of(row, key)
        found = None
        if known and row.t_id is not None and row.t_type == kind and row.t_secret_enc is not None:
            found = SimpleNamespace(**{c.key: getattr(row, "t_" + c.key)
                                       for c in TOKEN_COLUMNS})
        return entry, known, found

    def lookup(self, conn: Any, key: str) -> tuple[ConsumerEntry, bool]:
        """The consumer with ``key`` (read now from the database), or the dummy.

        ``conn`` is a Connection or a Session.  An unknown key costs what a known one
        does: the same query returns, when no consumer has ``key``, another consumer's
        row (the one with the lowest id, the decoy), which is made into an entry as a
        found row is, then set aside (its secrets only from the cache: never a keyring
        read nor a key parse).
        """
        row = conn.execute(self._lookup, {"key": key}).first()
        if row is None:  # no consumer at all
            return self.dummy, False
        return self._entry_of(row, key)

    def _entry_of(self, row: Any, key: str) -> tuple[ConsumerEntry, bool]:
        if row.key == key:
            return self._entry(row, self._secrets_for(row)), True
        cached = self._by_uid.get(row.uid)
        found = (cached if cached is not None and cached.updated_at == row.updated_at
                 else self._dummy_secrets)
        self._decoy_entry(row, found)
        return self.dummy, False

    def _decoy_entry(self, row: Any, found: _Secrets) -> ConsumerEntry:
        """The work :meth:`_entry` does for a found row, for the decoy: never parses."""
        seen = tuple(row[:N_COLUMNS])
        cached = self._entries.get(row.uid)
        if cached is not None and cached[0] == seen and cached[1].secret == found.secret:
            entry: ConsumerEntry = cached[1]
            return entry
        parsed = self._rsa.get(row.uid)
        return ConsumerEntry(
            id=row.id or 0, key=row.key, name=row.name, uid=row.uid, updated_at=row.updated_at,
            signature_method=row.signature_method, allow_plaintext=row.allow_plaintext,
            three_lo_allowed=row.three_lo_allowed, two_lo_allowed=row.two_lo_allowed,
            two_lo_execute_as=row.two_lo_execute_as,
            two_lo_impersonation=row.two_lo_impersonation, callback_url=row.callback_url,
            rsa_key=parsed[1] if parsed is not None else self.dummy.rsa_key,
            secret=found.secret,
        )

