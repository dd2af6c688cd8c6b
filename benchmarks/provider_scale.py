"""The provider at 100,000 consumers: start time, and request latency while the
consumer refresh and a token purge run.

    .venv/bin/python benchmarks/provider_scale.py [--consumers 100000] [--tokens 200000]
        [--seconds 6] [--db postgresql+psycopg://...] [--trace]

Fills a fresh store (a temporary SQLite file, or the PostgreSQL database given with
--db, emptied first) with bulk SQL (RSA-SHA1 consumers, 2LO allowed, one public key
whose private half the client holds) and ``--tokens`` expired tokens, then starts the
provider in a child process as `serve` does (the app on uvicorn, one worker, the
default 1 s refresh) and prints:

- start: from spawning the child (Python start and imports included) to the first
  answered request, and to the first answered signed request;
- p50/p99 of signed HMAC-SHA1 2LO requests (one client, sequential; an RSA-SHA1
  client spends ~70 ms signing each) for ``--seconds`` quietly, then as long again
  while 2,000 consumers change and 20 are removed every second by another writer (so
  every refresh has rows to read and removals to find) and `tokens purge` removes the
  expired tokens from another process; the requests answered while the purge ran are
  also counted apart.

With ``--trace`` the server also prints where its event loop spent the time: every
statement run on the loop's thread (count, total, slowest, how many took over 2 ms),
the whole signed check as the loop ran it, and how late a 5 ms timer woke (the loop
blocked by something else).  It costs a little, so the figures to quote come from a
run without it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from tui_oauth.core.registry import services

ROOT = Path(__file__).resolve().parent.parent
HMAC_KEY, SECRET = "bench:hmac", "bench-shared-secret-0123456789"
#: Consumers the churn never touches (the client signs as app:0000007 once).
PROTECTED = 10
sys.path.insert(0, str(ROOT))


def key_pair() -> tuple[str, str]:
    """(private PEM for the client, base64 DER SPKI for the consumer)."""
    from benchmarks.bench_support import rsa_pair

    return rsa_pair()


def fill(db_url: str, n: int, spki: str, tokens: int) -> None:
    from tui_oauth.core.store import open_store

    if not db_url.startswith("postgresql"):
        from benchmarks.bench_support import insert_consumers

        path = db_url.removeprefix("sqlite:///")
        open_store(db_url, create=True).close()
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN")
        insert_consumers(conn, n, spki, two_lo_execute_as="svc")
        conn.executemany(
            "INSERT INTO tokens (token, consumer_id, type, state, issued_at, expires_at)"
            " VALUES (?, ?, 'access', 'active', '2026-01-01 00:00:00', '2026-01-02 00:00:00')",
            ((f"old-{i}", 1 + i % n) for i in range(tokens)))
        conn.execute("COMMIT")
        conn.close()
        return
    import uuid

    from sqlalchemy import text

    from tui_oauth.core.database import make_engine
    from tui_oauth.core.migrations import upgrade

    eng = make_engine(db_url)
    upgrade(eng)
    with eng.begin() as conn:  # start from an empty store
        for table in ("nonces", "tokens", "consumers"):
            conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 (fixed names)
        # A new in-memory keyring each run: forget the last run's data key.
        conn.execute(text("DELETE FROM store_meta WHERE key = 'provider.data_key_check'"))
    raw: Any = eng.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy("COPY consumers (uid, key, name, description, public_key,"
                      " has_shared_secret, signature_method, allow_plaintext,"
                      " three_lo_allowed, two_lo_allowed, two_lo_execute_as,"
                      " two_lo_impersonation, created_at, updated_at) FROM STDIN") as copy:
            for i in range(n):
                copy.write_row((str(uuid.uuid4()), f"app:{i:07d}", f"Application {i}",
                                "a consumer", spki, False, "RSA-SHA1", False, True, True,
                                "svc", False, "2026-01-01 00:00:00", "2026-01-01 00:00:00"))
        cur.execute("SELECT id FROM consumers ORDER BY id")
        ids = [r[0] for r in cur.fetchall()]
        with cur.copy("COPY tokens (token, consumer_id, type, state, issued_at, expires_at)"
                      " FROM STDIN") as copy:
            for i in range(tokens):
                copy.write_row((f"old-{i}", ids[i % n], "access", "active",
                                "2026-01-01 00:00:00", "2026-01-02 00:00:00"))
        raw.commit()
        cur.execute("ANALYZE consumers")
        cur.execute("ANALYZE tokens")
        raw.commit()
    finally:
        raw.close()
        eng.dispose()


class LoopTrace:
    """--trace: where the server's event loop spends its time (see the module doc)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.loop_thread = threading.get_ident()
        self.statements: dict[str, list[float]] = {}
        self.verify: list[float] = []
        self.lag: list[float] = []
        eng = engine.store.engine

        @event.listens_for(eng, "before_cursor_execute")
        def _before(conn: Any, _cur: Any, statement: str, *_: Any) -> None:
            conn.info["bench_t"] = time.perf_counter()

        @event.listens_for(eng, "after_cursor_execute")
        def _after(conn: Any, _cur: Any, statement: str, *_: Any) -> None:
            if threading.get_ident() == self.loop_thread:
                kind = " ".join(statement.split()[:3])[:40]
                self._statement(kind, time.perf_counter()
                                - conn.info.pop("bench_t", time.perf_counter()))

        for name in ("commit", "rollback"):
            self._time_method(eng.dialect, f"do_{name}",
                              partial(self._statement, name.upper() + " (driver)"))
        self._time_method(engine, "verify", self.verify.append)

    def _statement(self, kind: str, seconds: float) -> None:
        self.statements.setdefault(kind, []).append(seconds)

    def _time_method(self, obj: Any, name: str, record: Callable[[float], None]) -> None:
        """Wrap ``obj.name``: the seconds of each call made on the loop's thread go to
        ``record``."""
        inner = getattr(obj, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                if threading.get_ident() == self.loop_thread:
                    record(time.perf_counter() - t)

        setattr(obj, name, timed)

    async def watch_lag(self) -> None:
        import asyncio

        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.005)
            self.lag.append(time.perf_counter() - t - 0.005)

    def report(self) -> None:
        def line(label: str, xs: list[float]) -> str:
            xs = sorted(xs)
            if not xs:
                return f"  {label:<42} none"
            return (f"  {label:<42} {len(xs):6d}  total {sum(xs) * 1000:8.1f} ms"
                    f"  p99 {xs[int(len(xs) * 0.99)] * 1000:6.2f}  max {xs[-1] * 1000:6.1f}"
                    f"  >2ms {sum(x > 0.002 for x in xs):4d}")

        print("server trace (on the event loop's thread):")
        for kind, xs in sorted(self.statements.items(), key=lambda kv: -sum(kv[1])):
            print(line(kind, xs))
        print(line("whole signed check (engine.verify)", self.verify))
        print(line("timer wake-up late by (5 ms timer)", self.lag))
        sys.stdout.flush()


def serve(db_url: str, sock: socket.socket, started: Any, trace: bool) -> None:
    import uvicorn

    from benchmarks.bench_support import memory_keyring
    from tui_oauth.core.provider.engine import ProviderEngine
    from tui_oauth.core.store import open_store
    from tui_oauth.web.app import create_app

    store = open_store(db_url, secrets_backend=memory_keyring())
    # One HMAC-SHA1 consumer for the latency runs (its secret in this process's keyring):
    # an RSA-SHA1 client spends ~70 ms signing each request, too slow to sample with.
    services(store).consumers.add(key=HMAC_KEY, name="Bench", shared_secret=SECRET,
                        signature_method="HMAC-SHA1", two_lo_allowed=True)
    t = time.perf_counter()
    engine = ProviderEngine(store, f"http://127.0.0.1:{sock.getsockname()[1]}")
    started.value = time.perf_counter() - t
    app = create_app(engine, purge_interval=10 ** 9)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    if not trace:
        server.run(sockets=[sock])
        return
    import asyncio
    import signal

    tracer = LoopTrace(engine)

    def report_and_exit(*_: Any) -> None:
        # uvicorn handles SIGTERM during serve() and raises it again once stopped.
        tracer.report()
        sys.exit(0)

    signal.signal(signal.SIGTERM, report_and_exit)

    async def main() -> None:
        watcher = asyncio.create_task(tracer.watch_lag())
        try:
            await server.serve(sockets=[sock])
        finally:
            watcher.cancel()

    asyncio.run(main())


def purge(db_url: str, times: Any, batch: int) -> None:
    """`tokens purge`, in a process of its own: (start, end, tokens) into ``times``."""
    from benchmarks.bench_support import memory_keyring
    from tui_oauth.core.store import open_store

    store = open_store(db_url, secrets_backend=memory_keyring())
    times[0] = time.perf_counter()
    times[2] = services(store).tokens.purge(batch=batch)
    times[1] = time.perf_counter()
    store.close()


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return (statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99)] * 1000,
            ordered[-1] * 1000)


def churn(db_url: str, stop: Any, per_second: int = 2000, removed: int = 20,
          batch: int = 100) -> None:
    """``per_second`` consumers changed and ``removed`` removed every second, by another
    writer (its own connection, as the CLI or the console would be), never touching
    the first PROTECTED ones nor removing more than half of them.  The changes are
    spread over the second in transactions of ``batch`` consumers (an admin's edits or
    an import, rather than one 2,000-row statement holding the write lock 10-30 ms).
    Works for any number of consumers."""
    from sqlalchemy import delete, select, update
    from sqlmodel import col

    from tui_oauth.core.database import make_engine
    from tui_oauth.core.models import Consumer
    from tui_oauth.core.timeutil import utcnow

    eng = make_engine(db_url)
    with eng.connect() as conn:
        ids = [i for (i,) in conn.execute(select(Consumer.id).where(
            col(Consumer.key).like("app:%")).order_by(col(Consumer.id)))][PROTECTED:]
    floor = len(ids) // 2
    rng = random.Random(1)
    steps = max(1, -(-per_second // max(1, batch)))
    while not stop.is_set():
        width = min(per_second, len(ids))
        lo = rng.randrange(len(ids) - width + 1) if ids else 0
        gone = ids[max(floor, len(ids) - removed):]
        for step in range(steps):
            part = ids[lo + step * batch:lo + min(width, (step + 1) * batch)]
            with eng.begin() as conn:
                if part:
                    conn.execute(update(Consumer).where(
                        col(Consumer.id).between(part[0], part[-1]))
                        .values(updated_at=utcnow()))
                if gone and step == 0:
                    conn.execute(delete(Consumer).where(col(Consumer.id).in_(gone)))
            if stop.wait(1.0 / steps):
                break
        del ids[len(ids) - len(gone):]
    eng.dispose()


def main() -> None:
    import requests
    from requests_oauthlib import OAuth1

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consumers", type=int, default=100_000)
    parser.add_argument("--tokens", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--db", help="a PostgreSQL URL (default: a temporary SQLite file); "
                        "its consumers, tokens and nonces are deleted first")
    parser.add_argument("--purge-batch", type=int, default=1000,
                        help="tokens deleted per purge transaction (`tokens purge`: 1000)")
    parser.add_argument("--trace", action="store_true",
                        help="the server prints where its event loop spent the time")
    args = parser.parse_args()
    if args.consumers < PROTECTED:
        parser.error(f"--consumers: at least {PROTECTED}")
    tmp = Path(tempfile.mkdtemp(prefix="provider-scale-"))
    db_url = args.db or f"sqlite:///{tmp / 'scale.db'}"
    pem, spki = key_pair()
    t = time.perf_counter()
    fill(db_url, args.consumers, spki, args.tokens)
    print(f"store: {db_url.split(':', 1)[0]}; filled {args.consumers:,} consumers and "
          f"{args.tokens:,} expired tokens in {time.perf_counter() - t:.1f} s")

    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    ctx = multiprocessing.get_context("spawn")
    engine_start = ctx.Value("d", -1.0)
    http = requests.Session()
    t0 = time.perf_counter()
    proc = ctx.Process(target=serve, args=(db_url, sock, engine_start, args.trace),
                       daemon=True)
    proc.start()
    try:
        while True:
            try:
                if http.get(base + "/rest/ping", timeout=2).ok:
                    break
            except requests.ConnectionError:
                if time.perf_counter() - t0 > 60:
                    raise
                time.sleep(0.005)
        first = time.perf_counter() - t0

        def signed(i: int | None = None) -> float:
            a = (OAuth1(HMAC_KEY, client_secret=SECRET) if i is None else
                 OAuth1(f"app:{i:07d}", signature_method="RSA-SHA1", rsa_key=pem))
            prepared = requests.Request("GET", base + "/rest/whoami", auth=a).prepare()
            s = time.perf_counter()
            r = http.send(prepared, timeout=30)
            elapsed = time.perf_counter() - s
            if r.status_code != 200:
                raise SystemExit(f"signed request refused: {r.status_code} {r.text[:200]}")
            return elapsed

        signed(7)
        first_signed = time.perf_counter() - t0
        print(f"start: first answered request {first:.2f} s after spawning the server "
              f"(ProviderEngine over {args.consumers:,} consumers: "
              f"{engine_start.value * 1000:.0f} ms), first signed request {first_signed:.2f} s")

        def measure(seconds: float) -> list[tuple[float, float]]:
            samples: list[tuple[float, float]] = []
            end = time.perf_counter() + seconds
            while (now := time.perf_counter()) < end:
                samples.append((now, signed()))
            return samples

        quiet = measure(args.seconds)

        # The churn and the purge run in processes of their own: as threads of this
        # client they would hold its interpreter lock while it times requests.
        stop = ctx.Event()
        writer = ctx.Process(target=churn, args=(db_url, stop), daemon=True)
        times = ctx.Array("d", [0.0, 0.0, -1.0])
        purger = ctx.Process(target=purge, args=(db_url, times, args.purge_batch),
                          daemon=True)
        writer.start()
        purger.start()
        busy = measure(args.seconds)
        stop.set()
        writer.join()
        purger.join()
        start, end, purged = times[:]  # perf_counter is system-wide (CLOCK_MONOTONIC)
        print(f"  (tokens purge: {int(purged):,} tokens in {end - start:.1f} s, "
              "from another process)")
        during = [s for s in busy if start <= s[0] <= end]
        for label, samples in (("quiet", quiet), ("refresh + churn + purge", busy),
                               ("  of which during the purge", during)):
            if not samples:
                continue
            p50, p99, worst = percentiles([s[1] for s in samples])
            print(f"signed HMAC-SHA1 2LO, {label:<28} {len(samples):5d} requests: "
                  f"p50 {p50:5.2f} ms, p99 {p99:5.2f} ms, max {worst:6.1f} ms")
    finally:
        proc.terminate()
        proc.join(10)


if __name__ == "__main__":
    main()
