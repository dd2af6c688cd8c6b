"""What verification needs from each consumer, kept in memory.

The consumer *row* is read on every request (so an edit or a removal counts
from the next request), but its secrets are not: the parsed RSA public key and
the HMAC shared secret are cached per consumer uid and ``updated_at``.  They
are loaded from the keyring when the server starts (:meth:`refresh_all`), by
a periodic refresh, and, for a consumer added or changed since, on its first
request: the one keyring read a change costs.  An unknown key never reaches
the keyring (a missing item answers faster than a present one: a timing
oracle), it gets the dummy entry, with a dummy RSA key and a dummy secret
that cost the same to verify against.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import case, func, or_
from sqlmodel import Session, col, select

from tui_oauth.core.errors import SecretStoreError, TuiOAuthError
from tui_oauth.core.keys import describe
from tui_oauth.core.models import RSA_SHA1, Consumer
from tui_oauth.core.services.consumers import consumer_secret_item

if TYPE_CHECKING:
    from tui_oauth.core.store import Store

log = logging.getLogger(__name__)


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

    def accepts(self, method: str) -> bool:
        if method == "PLAINTEXT":
            return self.allow_plaintext and self.signature_method != RSA_SHA1
        return method == self.signature_method


@dataclass(frozen=True)
class _Secrets:
    updated_at: datetime | None
    rsa_key: Any
    secret: str
    #: The keyring could not be read (locked, hung): ``secret`` is the dummy, and
    #: the next refresh tries again whatever ``updated_at`` says.
    failed: str | None = None


#: store_meta key prefix under which each serving host reports the consumers whose
#: secrets it could not read (``tui-oauth doctor`` shows them).
STATUS_PREFIX = "provider.keyring_failures."


def status_key(host: str | None = None) -> str:
    host = host or socket.gethostname() or "localhost"
    return STATUS_PREFIX + host[: 64 - len(STATUS_PREFIX)]


@functools.cache
def _dummy_rsa_key() -> Any:
    """The RSA public key unknown consumers are checked against: made once per process
    (generating a 2048-bit key costs 50 to 500 ms; nothing about it is secret)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()


class ConsumerCache:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._by_uid: dict[str, _Secrets] = {}
        self._keys: dict[str, str] = {}  # uid -> consumer key, for messages
        self._reported: dict[str, str] | None = None  # failures last written to store_meta
        self.keyring_reads = 0  # for tests: what the request path cost
        dummy_rsa = _dummy_rsa_key()
        self.dummy_secret = secrets.token_urlsafe(32)
        self.dummy = ConsumerEntry(
            id=-1, key="", name="", uid="", updated_at=None, signature_method="",
            allow_plaintext=False, three_lo_allowed=False, two_lo_allowed=False,
            two_lo_execute_as=None, two_lo_impersonation=False, callback_url=None,
            rsa_key=dummy_rsa, secret=self.dummy_secret,
        )

    @property
    def size(self) -> int:
        return len(self._by_uid)

    def failures(self) -> dict[str, str]:
        """Consumer key -> why its shared secret could not be read (now)."""
        with self._lock:
            return {self._keys.get(uid, uid): f.failed for uid, f in self._by_uid.items()
                    if f.failed is not None}

    def _load(self, row: Consumer) -> _Secrets:
        rsa_key = self.dummy.rsa_key
        if row.public_key:
            try:
                rsa_key = describe(row.public_key).public_key()
            except TuiOAuthError:
                log.warning("consumer %r: its stored public key does not parse", row.key)
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
        self._keys[row.uid] = row.key
        return _Secrets(row.updated_at, rsa_key, secret, failed)

    def _secrets_for(self, row: Consumer) -> _Secrets:
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

    def refresh_all(self) -> int:
        """Load what changed since the last refresh, retry what failed, forget removed
        consumers.  Returns how many consumers were (re)loaded."""
        with self.store.session() as s:
            rows = list(s.exec(select(Consumer)).all())
        loaded = 0
        for row in rows:
            cached = self._by_uid.get(row.uid)
            if cached is None or cached.updated_at != row.updated_at or cached.failed:
                fresh = self._load(row)
                with self._lock:
                    self._by_uid[row.uid] = fresh
                loaded += 1
        alive = {r.uid for r in rows}
        with self._lock:
            for uid in list(self._by_uid):
                if uid not in alive:
                    del self._by_uid[uid]
                    self._keys.pop(uid, None)
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

    def lookup(self, session: Session, key: str) -> tuple[ConsumerEntry, bool]:
        """The consumer with ``key`` (read now from the database), or the dummy.

        An unknown key costs what a known one does: the same query returns, when
        no consumer has ``key``, another consumer's row (the one with the lowest
        id, the decoy), which is decoded and made into an entry as a found row
        is, then set aside (its secrets only from the cache: never a keyring
        read).  Decoding a row was most of what still made an unknown key ~8 %
        faster to refuse (benchmarks/provider_enumeration.py).
        """
        decoy = select(func.min(Consumer.id)).scalar_subquery()
        row = session.exec(
            select(Consumer)
            .where(or_(col(Consumer.key) == key, col(Consumer.id) == decoy))
            .order_by(case((col(Consumer.key) == key, 0), else_=1))
            .limit(1)).first()
        if row is None:  # no consumer at all
            return self.dummy, False
        known = row.key == key
        if known:
            found = self._secrets_for(row)
        else:
            cached = self._by_uid.get(row.uid)
            found = (cached if cached is not None and cached.updated_at == row.updated_at
                     else _Secrets(None, self.dummy.rsa_key, self.dummy_secret))
        entry = ConsumerEntry(
            id=row.id or 0, key=row.key, name=row.name, uid=row.uid, updated_at=row.updated_at,
            signature_method=row.signature_method, allow_plaintext=row.allow_plaintext,
            three_lo_allowed=row.three_lo_allowed, two_lo_allowed=row.two_lo_allowed,
            two_lo_execute_as=row.two_lo_execute_as,
            two_lo_impersonation=row.two_lo_impersonation, callback_url=row.callback_url,
            rsa_key=found.rsa_key, secret=found.secret,
        )
        return (entry, True) if known else (self.dummy, False)
