"""What the refusal log costs: recording one refusal (on the request path: what the
engine keeps of the parsed request, and the queue), writing them (serve's flush, once a
second, in a thread), and the throughput of signed requests with the log on and off.

    .venv/bin/python benchmarks/refusal_log.py [--records 20000] [--requests 2000]
        [--rounds 3] [--threads 4] [--db sqlite|postgresql+psycopg://...]

1. In-process, on a temporary SQLite store (or --db): ``sent_of`` + ``RefusalLog.record``
   for a signature_invalid refusal (with its base string) and for an unknown key, in
   µs per refusal; then ``flush`` of 1,000 waiting records, in ms per flush and µs
   per record; and an accepted request's clock sample (``RefusalLog.sample``).
2. Over loopback (provider_throughput's machinery: the server in a child process, the
   client pre-signs every request): accepted HMAC-SHA1 3LO ``/rest/whoami`` and
   refused ones (a wrong secret: signature_invalid, each recorded), from two servers
   up at once, ``refusal_log`` on and off, batches interleaved, in requests/second
   (medians; with --db, one server after the other).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.bench_support import server_socket, wait_for_ping  # noqa: E402
from benchmarks.provider_throughput import (  # noqa: E402
    KEY,
    SECRET,
    _memory_keyring,
    get_access_token,
    run_batch,
)
from tui_oauth.core.registry import services  # noqa: E402


def record_cost(db_url: str, records: int) -> dict[str, float]:
    from oauthlib.oauth1 import Client

    from tui_oauth.core.provider.problems import Problem
    from tui_oauth.core.provider.refusals import RefusalLog, sent_of
    from tui_oauth.core.provider.rfc5849 import parse_request
    from tui_oauth.core.store import open_store

    store = open_store(db_url, secrets_backend=_memory_keyring())
    services(store).consumers.add(key=KEY, name="Bench", shared_secret=SECRET,
                        signature_method="HMAC-SHA1")
    url = "https://jira.example.com/rest/api/2/issue/ABC-123?expand=names"
    results: dict[str, float] = {}
    for label, key, cause in (("signature_invalid", KEY, "signature_invalid"),
                              ("consumer_key_unknown", "junk-key", "consumer_key_unknown")):
        _u, headers, _b = Client(key, client_secret="wrong").sign(url)  # noqa: S106
        request = parse_request(url, "GET", b"", headers)
        log = RefusalLog(store)
        recording = flushing = 0.0
        flushes: list[float] = []
        for _ in range(max(1, records // 1000)):  # 1,000 a second: a busy server
            problems = [Problem(cause) for _ in range(1000)]
            start = time.perf_counter()
            for problem in problems:
                problem.sent = sent_of(request, problem.cause)
                log.record(problem, method="GET", url=url.split("?")[0],
                           seen_url="http://127.0.0.1:8080/rest/api/2/issue/ABC-123",
                           client_addr="127.0.0.1")
            recording += time.perf_counter() - start
            start = time.perf_counter()
            log.flush()
            flushes.append(time.perf_counter() - start)
            flushing += flushes[-1]
        results[f"record_us_{label}"] = recording / log.written * 1e6
        results[f"flush_ms_{label}"] = statistics.median(flushes) * 1e3
        results[f"flush_us_per_record_{label}"] = flushing / log.written * 1e6
    log = RefusalLog(store)
    now = int(time.time())
    start = time.perf_counter()
    for i in range(records):
        log.sample(KEY, now - (i & 7))
    results["sample_us"] = (time.perf_counter() - start) / records * 1e6
    start = time.perf_counter()
    log.flush()
    results["clock_flush_ms"] = (time.perf_counter() - start) * 1e3
    store.close()
    return results


def serve(db_url: str, sock: socket.socket, ready: Any, log_on: bool) -> None:
    import uvicorn

    from tui_oauth.core.provider.engine import ProviderEngine
    from tui_oauth.core.provider.settings import set_setting
    from tui_oauth.core.store import open_store
    from tui_oauth.web.app import create_app

    store = open_store(db_url, secrets_backend=_memory_keyring())
    services(store).consumers.add(key=KEY, name="Bench", shared_secret=SECRET,
                        signature_method="HMAC-SHA1")
    set_setting(store, "refusal_log", "on" if log_on else "off")
    port = sock.getsockname()[1]
    app = create_app(ProviderEngine(store, f"http://127.0.0.1:{port}"))
    ready.set()
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(
        sockets=[sock])


def start_server(db_url: str, log_on: bool) -> tuple[str, Any]:
    sock, base = server_socket()
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=serve, args=(db_url, sock, ready, log_on), daemon=True)
    proc.start()
    ready.wait(60)
    wait_for_ping(base)
    return base, proc


def throughput(db_urls: dict[bool, str], n: int, rounds: int, threads: int
               ) -> dict[bool, dict[str, float]]:
    """Both servers (log on, log off) up at once, their batches interleaved round by
    round, so that a busy machine slows both alike; medians."""
    import requests
    from requests_oauthlib import OAuth1

    servers = {on: start_server(url, on) for on, url in db_urls.items()}
    try:
        tokens = {on: get_access_token(base, db_urls[on]) for on, (base, _p) in servers.items()}
        rates: dict[bool, dict[str, list[float]]] = {
            on: {"accepted": [], "refused": []} for on in servers}
        for _ in range(rounds):
            for kind, secret in (("accepted", SECRET), ("refused", "wrong")):
                for on, (base, _proc) in servers.items():
                    token = tokens[on]
                    batch = [requests.Request("GET", base + "/rest/whoami", auth=OAuth1(
                        KEY, client_secret=secret, resource_owner_key=token["oauth_token"],
                        resource_owner_secret=token["oauth_token_secret"])).prepare()
                        for _ in range(n)]
                    rates[on][kind].append(run_batch(batch, threads, expect=(
                        200 if kind == "accepted" else 401)))
        return {on: {k: statistics.median(v) for k, v in r.items()} for on, r in rates.items()}
    finally:
        for _base, proc in servers.values():
            proc.terminate()
            proc.join(10)


def fresh_db(args: argparse.Namespace, tmp: str, name: str) -> str:
    if not args.db:
        return f"sqlite:///{tmp}/{name}.db"
    from sqlalchemy import text

    from tui_oauth.core.database import make_engine
    from tui_oauth.core.migrations import upgrade

    eng = make_engine(args.db)
    upgrade(eng)
    with eng.begin() as conn:  # start from an empty store
        for table in ("nonces", "tokens", "refusals", "consumer_clock"):
            conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608
        conn.execute(text("DELETE FROM store_meta WHERE key = 'provider.data_key_check'"))
        conn.execute(text("DELETE FROM consumers WHERE key = :k"), {"k": KEY})
    eng.dispose()
    return str(args.db)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=2000, help="per kind and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--db", help="store URL (default: temporary SQLite files)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cost = record_cost(fresh_db(args, tmp, "record"), max(1000, args.records))
        if args.db:  # one database: one server at a time
            rates = {on: throughput({on: fresh_db(args, tmp, "serve")}, args.requests,
                                    args.rounds, args.threads)[on] for on in (True, False)}
        else:
            rates = throughput({on: fresh_db(args, tmp, f"serve-{on}") for on in (True, False)},
                               args.requests, args.rounds, args.threads)
    db = (args.db or "sqlite").split(":", 1)[0]
    print(f"store: {db}; loopback; {args.requests} requests x {args.rounds} rounds, "
          f"{args.threads} client threads")
    for label in ("signature_invalid", "consumer_key_unknown"):
        print(f"record a refusal ({label}):{'':<{22 - len(label)}}"
              f"{cost[f'record_us_{label}']:6.2f} µs   flush of 1,000: "
              f"{cost[f'flush_ms_{label}']:6.1f} ms "
              f"({cost[f'flush_us_per_record_{label}']:.1f} µs per record)")
    print(f"an accepted request's clock sample:       {cost['sample_us']:6.2f} µs   "
          f"its flush (one consumer): {cost['clock_flush_ms']:.1f} ms")
    for kind in ("accepted", "refused"):
        on, off = rates[True][kind], rates[False][kind]
        print(f"signed HMAC-SHA1 3LO, {kind:<8}: log on {on:8.1f} req/s, off {off:8.1f} "
              f"req/s, on/off {on / off:.3f}")


if __name__ == "__main__":
    main()
