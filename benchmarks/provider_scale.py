"""The provider at 100,000 consumers: start time, and request latency while the
consumer refresh and a token purge run.

    .venv/bin/python benchmarks/provider_scale.py [--consumers 100000] [--seconds 6]

Fills a fresh SQLite store with bulk SQL (RSA-SHA1 consumers, 2LO allowed, one
public key whose private half the client holds) and 200,000 expired tokens, then
starts the provider in a child process as `serve` does (the app on uvicorn, one
worker, the default 1 s refresh) and prints:

- start: from spawning the child (Python start and imports included) to the first
  answered request, and to the first answered signed request;
- p50/p99 of signed HMAC-SHA1 2LO requests (one client, sequential; an RSA-SHA1
  client spends ~70 ms signing each) for ``--seconds`` quietly, then as long again
  while 2,000 consumers change and 20 are removed every second (so every refresh
  has rows to read and removals to
  find) and `tokens purge` removes the 200,000 expired tokens from another process.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HMAC_KEY, SECRET = "bench:hmac", "bench-shared-secret-0123456789"
sys.path.insert(0, str(ROOT))


def key_pair() -> tuple[str, str]:
    """(private PEM for the client, base64 DER SPKI for the consumer)."""
    from benchmarks.bench_support import rsa_pair

    return rsa_pair()


def fill(path: Path, n: int, spki: str, tokens: int) -> None:
    from benchmarks.bench_support import insert_consumers
    from tui_oauth.core.store import open_store

    open_store(f"sqlite:///{path}", create=True).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    insert_consumers(conn, n, spki, two_lo_execute_as="svc")
    conn.executemany(
        "INSERT INTO tokens (token, consumer_id, type, state, issued_at, expires_at)"
        " VALUES (?, ?, 'access', 'active', '2026-01-01 00:00:00', '2026-01-02 00:00:00')",
        ((f"old-{i}", 1 + i % n) for i in range(tokens)))
    conn.execute("COMMIT")
    conn.close()


def serve(db_url: str, sock: socket.socket, started: Any) -> None:
    import uvicorn

    from benchmarks.bench_support import memory_keyring
    from tui_oauth.core.provider.engine import ProviderEngine
    from tui_oauth.core.store import open_store
    from tui_oauth.web.app import create_app

    store = open_store(db_url, secrets_backend=memory_keyring())
    # One HMAC-SHA1 consumer for the latency runs (its secret in this process's keyring):
    # an RSA-SHA1 client spends ~70 ms signing each request, too slow to sample with.
    store.consumers.add(key=HMAC_KEY, name="Bench", shared_secret=SECRET,
                        signature_method="HMAC-SHA1", two_lo_allowed=True)
    t = time.perf_counter()
    engine = ProviderEngine(store, f"http://127.0.0.1:{sock.getsockname()[1]}")
    started.value = time.perf_counter() - t
    app = create_app(engine, purge_interval=10 ** 9)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(
        sockets=[sock])


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return (statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99)] * 1000,
            ordered[-1] * 1000)


def main() -> None:
    import requests
    from requests_oauthlib import OAuth1

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consumers", type=int, default=100_000)
    parser.add_argument("--tokens", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="provider-scale-"))
    path = tmp / "scale.db"
    pem, spki = key_pair()
    t = time.perf_counter()
    fill(path, args.consumers, spki, args.tokens)
    print(f"filled {args.consumers:,} consumers and {args.tokens:,} expired tokens in "
          f"{time.perf_counter() - t:.1f} s")
    db_url = f"sqlite:///{path}"

    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    ctx = multiprocessing.get_context("spawn")
    engine_start = ctx.Value("d", -1.0)
    http = requests.Session()
    t0 = time.perf_counter()
    proc = ctx.Process(target=serve, args=(db_url, sock, engine_start), daemon=True)
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

        def measure(seconds: float) -> list[float]:
            samples: list[float] = []
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                samples.append(signed())
            return samples

        quiet = measure(args.seconds)

        stop = threading.Event()

        def churn() -> None:
            """2,000 consumers changed and 20 removed every second, by another writer."""
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            victim = args.consumers - 1
            while not stop.is_set():
                lo = random.randrange(2000, args.consumers - 4000)
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("UPDATE consumers SET updated_at = strftime('%Y-%m-%d %H:%M:%f',"
                             " 'now') WHERE id BETWEEN ? AND ?", (lo, lo + 1999))
                conn.execute("DELETE FROM consumers WHERE id > ? AND id <= ?",
                             (victim - 20, victim))
                conn.execute("COMMIT")
                victim -= 20
                stop.wait(1.0)
            conn.close()

        def purge() -> None:
            from benchmarks.bench_support import memory_keyring
            from tui_oauth.core.store import open_store

            store = open_store(db_url, secrets_backend=memory_keyring())
            t = time.perf_counter()
            n = store.tokens.purge()
            print(f"  (tokens purge: {n:,} tokens in {time.perf_counter() - t:.1f} s, "
                  "from another thread and connection)")
            store.close()

        threads = [threading.Thread(target=churn), threading.Thread(target=purge)]
        for th in threads:
            th.start()
        busy = measure(args.seconds)
        stop.set()
        for th in threads:
            th.join()
        for label, samples in (("quiet", quiet), ("refresh + churn + purge", busy)):
            p50, p99, worst = percentiles(samples)
            print(f"signed HMAC-SHA1 2LO, {label:<24} {len(samples):5d} requests: "
                  f"p50 {p50:5.2f} ms, p99 {p99:5.2f} ms, max {worst:6.1f} ms")
    finally:
        proc.terminate()
        proc.join(10)


if __name__ == "__main__":
    main()
