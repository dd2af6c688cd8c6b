"""Recording refused requests (the refusal log) and consumers' clock offsets.

On the request path, :meth:`RefusalLog.record` builds one small tuple and appends it to
a bounded deque (past ``max_pending`` waiting records it drops the new one and counts
it); :meth:`RefusalLog.sample` appends a consumer's clock offset to its own short
deque.  :meth:`RefusalLog.flush`, which serve's housekeeping runs every second in a
thread (and once more on shutdown), writes what waits in one transaction: the
records, the median offsets of the consumers that had new samples
(``consumer_clock``), and then deletes the rows beyond the cap of each bucket it
touched.  A record's bucket is its consumer key when that names a configured
consumer, else "" (all unknown keys together), so a flood of junk keys is capped as
one consumer is.

Each flush also diagnoses up to :data:`MAX_DIAGNOSED` ``signature_invalid`` records
with the signature debugger and the keys the engine holds (``keys``: the consumer's
secrets or public key and the token's secret), and stores the verdict in
``refusals.finding`` (the mistake's code and words, or "none: ..."; never a secret),
so that the record's advice says what is true rather than what is likely.  That runs
in the flush's thread, never on the event loop; the rest wait undiagnosed (NULL).

Never a secret: the token is kept as a prefix, the signature only for
``signature_invalid`` with HMAC-SHA1 or RSA-SHA1 (with PLAINTEXT it *is* the secret).
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import delete, insert
from sqlmodel import col, select

from tui_oauth.core.models import HMAC_SHA1, RSA_SHA1, Consumer, ConsumerClock, Refusal
from tui_oauth.core.provider.problems import Challenge, Problem
from tui_oauth.core.timeutil import utcnow

if TYPE_CHECKING:
    from datetime import datetime

    from tui_oauth.core.store import Store

log = logging.getLogger(__name__)


def trim_buckets(conn: Any, buckets: Iterable[str], keep: int) -> int:
    """Delete the rows of each bucket beyond its newest ``keep`` (in the caller's
    transaction: a Session or a Connection); returns how many went."""
    total = 0
    for bucket in buckets:
        edge = conn.execute(select(col(Refusal.id)).where(Refusal.bucket == bucket)
                            .order_by(col(Refusal.id).desc()).offset(keep).limit(1)).first()
        if edge is not None:
            done = conn.execute(delete(Refusal).where(col(Refusal.bucket) == bucket,
                                                      col(Refusal.id) <= edge[0]))
            total += int(done.rowcount or 0)
    return total

MAX_PENDING = 10_000
#: Clock samples kept per consumer, and consumers followed at most between two flushes.
SAMPLES = 64
MAX_CLOCKS = 10_000
MAX_BASE_STRING = 16 * 1024
#: Base strings waiting at most (octets, about): past it a record waits without one.
MAX_PENDING_BYTES = 8 * 1024 * 1024
MAX_URL = 4096
#: signature_invalid records diagnosed at most per flush (the others: finding NULL).
MAX_DIAGNOSED = 50
SIGNED_METHODS = (HMAC_SHA1, RSA_SHA1)  # a signature that is not the secret itself


class Sent(NamedTuple):
    """What the engine parsed from a refused request (Problem.sent)."""

    consumer_key: str
    token: str
    signature_method: str
    timestamp: int | None
    base_string: str | None  # signature_invalid only
    signature: str | None  # signature_invalid with HMAC-SHA1 or RSA-SHA1 only


def sent_of(request: Any, cause: str) -> Sent:
    """The facts of a parsed request (rfc5849.parse_request) worth recording."""
    params: dict[str, str] = getattr(request, "oauth_params", None) or {}
    ts = params.get("oauth_timestamp") or ""
    timestamp = int(ts) if ts.isascii() and ts.isdigit() and len(ts) <= 18 else None
    method = params.get("oauth_signature_method") or ""
    base = signature = None
    if cause == "signature_invalid":
        bases = getattr(request, "tui_base_strings", ())
        base = bases[0][:MAX_BASE_STRING + 1] if bases else None  # +1: it was cut
        if method in SIGNED_METHODS:
            signature = params.get("oauth_signature")
    return Sent(params.get("oauth_consumer_key") or "", params.get("oauth_token") or "",
                method, timestamp, base, signature)


def token_prefix(token: str) -> str:
    return token if len(token) <= 8 else token[:8] + "\u2026"


class Keys(NamedTuple):
    """What the server checks a consumer's signature with (``RefusalLog(keys=...)``)."""

    secrets: tuple[str, ...]  # accepted now
    old_secrets: tuple[str, ...]  # a rotated one no longer accepted
    public_key: Any  # RSA, or None
    token_secret: str | None


#: (consumer key, token or "") -> the consumer's keys, or None (unknown consumer).
KeysFor = Callable[[str, str], "Keys | None"]


class _Record(NamedTuple):
    at: datetime
    now: int
    problem: Problem
    method: str
    url: str
    seen_url: str
    client_addr: str
    listen_url: str = ""


class RefusalLog:
    """The server's recorder (one per ProviderEngine)."""

    def __init__(self, store: Store, *, enabled: bool = True, keep: int = 200,
                 max_pending: int = MAX_PENDING, keys: KeysFor | None = None,
                 max_diagnosed: int = MAX_DIAGNOSED) -> None:
        self.store = store
        self.keys = keys
        self.max_diagnosed = max_diagnosed
        self.enabled = enabled
        self.keep = keep
        self.max_pending = max_pending
        self._pending: deque[_Record] = deque()
        self._samples: dict[str, deque[int]] = {}
        self._dirty: set[str] = set()
        self._flush_lock = threading.Lock()
        self._pending_bytes = 0
        self.dropped = 0  # records not kept: max_pending were waiting
        self.written = 0  # records written, since the start

    # The request path -----------------------------------------------------------

    def record(self, problem: Problem, *, method: str, url: str, seen_url: str,
               client_addr: str, listen_url: str = "") -> None:
        """Queue a refusal (the web layer, with what the engine attached to ``problem``).
        ``listen_url``: scheme://host:port/path of the address the server listens on."""
        if not self.enabled:
            return
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            return
        sent: Sent | None = problem.sent
        if sent is not None and sent.base_string is not None:
            if self._pending_bytes + len(sent.base_string) > MAX_PENDING_BYTES:
                problem.sent = sent._replace(base_string=None)
            else:
                self._pending_bytes += len(sent.base_string)
        self._pending.append(_Record(utcnow(), int(time.time()), problem, method, url,
                                     seen_url, client_addr, listen_url))

    def sample(self, consumer_key: str, timestamp: int, now: int | None = None) -> None:
        """A consumer's timestamp, for its clock offset (accepted and refused requests)."""
        if not self.enabled or not consumer_key:
            return
        samples = self._samples.get(consumer_key)
        if samples is None:
            if len(self._samples) >= MAX_CLOCKS:
                return
            samples = self._samples.setdefault(consumer_key, deque(maxlen=SAMPLES))
        samples.append(timestamp - (int(time.time()) if now is None else now))
        self._dirty.add(consumer_key)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def has_work(self) -> bool:
        """Records or clock samples wait for :meth:`flush`."""
        return bool(self._pending or self._dirty)

    # Housekeeping ---------------------------------------------------------------

    def flush(self) -> int:
        """Write what waits, in one transaction; returns the records written.  Runs in a
        thread (serve's housekeeping, every second), one flush at a time."""
        with self._flush_lock:
            return self._flush()

    def _flush(self) -> int:
        records: list[_Record] = []
        while self._pending and len(records) < self.max_pending:
            records.append(self._pending.popleft())
        dirty, self._dirty = self._dirty, set()
        if not records and not dirty:
            return 0
        rows = [self._row(r) for r in records]
        self._diagnose(rows, records)
        drained = sum(len(row["base_string"] or "") for row in rows)
        self._pending_bytes = max(0, self._pending_bytes - drained)
        for row, r in zip(rows, records, strict=True):
            ts = row["timestamp"]
            if ts is not None and row["consumer_key"]:
                self.sample(row["consumer_key"], ts, r.now)
                dirty.add(row["consumer_key"])
                self._dirty.discard(row["consumer_key"])
        keys = {row["consumer_key"] for row in rows if row["consumer_key"]} | dirty
        try:
            with self.store.engine.begin() as conn:
                known = self._known(conn, keys)
                for row in rows:
                    row["bucket"] = row["consumer_key"] if row["consumer_key"] in known else ""
                if rows:
                    conn.execute(insert(Refusal), rows)
                    trim_buckets(conn, sorted({row["bucket"] for row in rows}), self.keep)
                self._write_clocks(conn, [k for k in dirty if k in known])
        except Exception:
            self._dirty |= dirty  # the samples stay; the records are lost (said once)
            raise
        for key in dirty - known:  # an unknown key's samples: not followed
            self._samples.pop(key, None)
        self.written += len(rows)
        return len(rows)

    def _row(self, r: _Record) -> dict[str, Any]:
        problem = r.problem
        sent: Sent | None = problem.sent
        if sent is None:
            sent = Sent("", "", "", None, None, None)
        base = sent.base_string
        truncated = base is not None and len(base) > MAX_BASE_STRING
        if base is not None and truncated:
            base = base[:MAX_BASE_STRING]
        return {
            "at": r.at, "bucket": "", "consumer_key": sent.consumer_key[:255],
            "token_prefix": token_prefix(sent.token), "problem": problem.cause[:64],
            "answered": ("no_oauth" if isinstance(problem, Challenge) else problem.problem),
            "method": r.method[:16], "url": r.url[:MAX_URL], "seen_url": r.seen_url[:MAX_URL],
            "client_addr": r.client_addr[:255], "signature_method": sent.signature_method[:32],
            "timestamp": sent.timestamp,
            "offset": None if sent.timestamp is None else sent.timestamp - r.now,
            "base_string": base, "truncated": truncated, "signature": sent.signature,
            "detail": problem.advice[:512] if problem.advice else None,
            "listen_url": r.listen_url[:MAX_URL], "finding": None,
        }

    def _diagnose(self, rows: list[dict[str, Any]], records: list[_Record]) -> None:
        """Run the debugger on (at most ``max_diagnosed``) signature_invalid rows with the
        server's keys; each gets its ``finding``.  Errors leave a row undiagnosed."""
        if self.keys is None or self.max_diagnosed <= 0:
            return
        done = 0
        for row, r in zip(rows, records, strict=True):
            if done >= self.max_diagnosed:
                return
            if (row["problem"] != "signature_invalid" or not row["base_string"]
                    or row["truncated"] or not row["signature"] or not row["consumer_key"]):
                continue
            done += 1
            try:
                row["finding"] = self._finding(row, r.problem.sent.token)
            except Exception as exc:  # a record, not a reason to lose the flush
                log.debug("refusal not diagnosed: %s", exc)

    def _finding(self, row: dict[str, Any], token: str) -> str | None:
        from tui_oauth.core.provider import debugger

        assert self.keys is not None
        keys = self.keys(row["consumer_key"], token)
        if keys is None:
            return None
        request = debugger.recorded(
            base_string=row["base_string"], signature=row["signature"],
            seen_url=row["seen_url"], url=row["url"], listen_url=row["listen_url"])
        report = request.check(secrets=keys.secrets, old_secrets=keys.old_secrets,
                               public_key=keys.public_key, token_secret=keys.token_secret)
        if report.matches:  # refused before the signature (oauth_body_hash, ...)
            return None
        return debugger.finding(report)

    @staticmethod
    def _known(conn: Any, keys: set[str]) -> set[str]:
        """Which of ``keys`` name a configured consumer."""
        found: set[str] = set()
        ordered = sorted(keys)
        for i in range(0, len(ordered), 500):
            found.update(conn.execute(select(col(Consumer.key)).where(
                col(Consumer.key).in_(ordered[i:i + 500]))).scalars())
        return found

    def _write_clocks(self, conn: Any, keys: list[str]) -> None:
        if not keys:
            return
        from sqlalchemy.dialects import postgresql, sqlite

        dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
        now = utcnow()
        values = []
        for key in sorted(keys):
            samples = list(self._samples.get(key, ()))
            if samples:
                values.append({"consumer_key": key, "samples": len(samples),
                               "median_offset": int(statistics.median_low(samples)),
                               "updated_at": now})
        if not values:
            return
        stmt = dialect.insert(ConsumerClock).values(values)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["consumer_key"],
            set_={"median_offset": stmt.excluded.median_offset,
                  "samples": stmt.excluded.samples, "updated_at": stmt.excluded.updated_at}))
