"""Throughput of signed ``/rest/whoami`` requests (HMAC-SHA1 three-legged with an access
token, RSA-SHA1 two-legged) against the unprotected ``/rest/ping`` of the same server,
measured in one run, on loopback only.

    .venv/bin/python benchmarks/provider_throughput.py [--requests 2000] [--threads 4]
        [--db sqlite|postgresql+psycopg://...] [--methods hmac,rsa] [--profile FILE]

The server (``tui-oauth``'s Starlette app on uvicorn, one worker) runs in a child
process on 127.0.0.1 with a temporary SQLite store (or the --db given) and an
in-memory keyring; the client pre-signs every request (fresh nonces) before the
clock starts, then sends them over keep-alive connections from a few threads.
Prints requests/second for both and their ratio.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
from typing import Any

from tui_oauth.core.registry import services

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

KEY, SECRET = "bench:hmac", "bench-shared-secret-0123456789"
RSA_KEY = "bench:rsa"


def _rsa_pair() -> tuple[str, str]:
    """(private PEM for the client, base64 DER SPKI for the consumer)."""
    from benchmarks.bench_support import rsa_pair

    return rsa_pair()


def _memory_keyring() -> Any:
    from benchmarks.bench_support import memory_keyring

    return memory_keyring()


def serve(db_url: str, sock: socket.socket, ready: Any, spki: str,
          profile: str | None = None) -> None:
    import uvicorn

    from tui_oauth.core.provider.engine import ProviderEngine
    from tui_oauth.core.store import open_store
    from tui_oauth.web.app import create_app

    store = open_store(db_url, secrets_backend=_memory_keyring())
    services(store).consumers.add(key=KEY, name="Bench", shared_secret=SECRET,
                        signature_method="HMAC-SHA1")
    services(store).consumers.add(key=RSA_KEY, name="Bench RSA", public_key=spki,
                        signature_method="RSA-SHA1", two_lo_allowed=True)
    port = sock.getsockname()[1]
    engine = ProviderEngine(store, f"http://127.0.0.1:{port}")
    # An access token issued the normal way (request token, CLI approval, exchange) is
    # made by the client below; the server only needs to run.
    app = create_app(engine)
    ready.set()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    if profile is None:
        server.run(sockets=[sock])
        return
    import cProfile
    import signal

    def stop(*_: Any) -> None:
        server.should_exit = True

    signal.signal(signal.SIGTERM, stop)
    prof = cProfile.Profile()
    prof.enable()
    try:
        server.run(sockets=[sock])
    finally:
        prof.disable()
        prof.dump_stats(profile)


def get_access_token(base: str, store_url: str) -> dict[str, str]:
    from benchmarks.bench_support import access_token

    return access_token(base, store_url, _memory_keyring(), KEY, SECRET)


def run_batch(prepared: list[Any], threads: int, expect: int = 200) -> float:
    """Send ``prepared`` over ``threads`` keep-alive sessions; requests per second.
    Every answer must have status ``expect``."""
    import requests

    from benchmarks.bench_support import timed_threads

    chunks = [prepared[i::threads] for i in range(threads)]
    errors: list[str] = []

    def worker(chunk: list[Any]) -> None:
        with requests.Session() as http:
            for p in chunk:
                r = http.send(p, timeout=30)
                if r.status_code != expect:
                    errors.append(f"{r.status_code} {r.text[:120]}")

    elapsed = timed_threads(worker, chunks)
    if errors:
        raise SystemExit(f"{len(errors)} request(s) failed, e.g. {errors[0]}")
    return len(prepared) / elapsed


def main() -> None:
    import requests
    from requests_oauthlib import OAuth1

    from benchmarks.bench_support import server_socket, wait_for_ping

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per kind and round (max 20000)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", help="store URL (default: a temporary SQLite file)")
    parser.add_argument("--methods", default="hmac,rsa",
                        help="which signed kinds: hmac (3LO), rsa (2LO), comma-separated")
    parser.add_argument("--profile", metavar="FILE",
                        help="cProfile the server process into FILE (pstats)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    n = max(100, min(args.requests, 20000))
    tmp = tempfile.TemporaryDirectory()
    db_url = args.db or f"sqlite:///{tmp.name}/bench.db"
    if db_url.startswith("postgresql"):
        from sqlalchemy import text

        from tui_oauth.core.database import make_engine
        from tui_oauth.core.migrations import upgrade

        eng = make_engine(db_url)
        upgrade(eng)
        with eng.begin() as conn:  # start from an empty store
            conn.execute(text("DELETE FROM nonces"))
            # A new in-memory keyring each run: forget the last run's data key.
            conn.execute(text("DELETE FROM store_meta WHERE key = 'provider.data_key_check'"))
            conn.execute(text("DELETE FROM tokens"))
            conn.execute(text("DELETE FROM consumers WHERE key IN (:k, :r)"),
                     {"k": KEY, "r": RSA_KEY})
        eng.dispose()

    sock, base = server_socket()
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    pem, spki = _rsa_pair()
    proc = ctx.Process(target=serve, args=(db_url, sock, ready, spki, args.profile),
                       daemon=True)
    proc.start()
    try:
        ready.wait(60)
        wait_for_ping(base)
        token = get_access_token(base, db_url) if "hmac" in methods else {}
        rates: dict[str, list[float]] = {"plain": [], **{m: [] for m in methods}}
        for _ in range(args.rounds):
            batches: dict[str, list[Any]] = {
                "plain": [requests.Request("GET", base + "/rest/ping").prepare()
                          for _ in range(n)]}
            if "hmac" in methods:
                batches["hmac"] = [requests.Request("GET", base + "/rest/whoami", auth=OAuth1(
                    KEY, client_secret=SECRET, resource_owner_key=token["oauth_token"],
                    resource_owner_secret=token["oauth_token_secret"])).prepare()
                    for _ in range(n)]
            if "rsa" in methods:
                batches["rsa"] = [requests.Request("GET", base + "/rest/whoami", auth=OAuth1(
                    RSA_KEY, signature_method="RSA-SHA1", rsa_key=pem)).prepare()
                    for _ in range(n)]
            for kind, batch in batches.items():
                rates[kind].append(run_batch(batch, args.threads))
        median = {k: statistics.median(v) for k, v in rates.items()}
        plain_rps = median["plain"]
        result: dict[str, Any] = {
            "db": db_url.split(":", 1)[0], "requests_per_round": n, "rounds": args.rounds,
            "threads": args.threads, "unprotected_rps": round(plain_rps, 1)}
        for m in methods:
            result[f"signed_{m}_rps"] = round(median[m], 1)
            result[f"ratio_{m}"] = round(median[m] / plain_rps, 3)
        if args.json:
            print(json.dumps(result))
        else:
            print(f"store: {result['db']}; {n} requests x {args.rounds} rounds, "
                  f"{args.threads} client threads, loopback")
            print(f"unprotected /rest/ping:              {plain_rps:8.1f} req/s")
            labels = {"hmac": "signed HMAC-SHA1 3LO /rest/whoami:", "rsa":
                      "signed RSA-SHA1 2LO /rest/whoami: "}
            for m in methods:
                print(f"{labels[m]}   {median[m]:8.1f} req/s   ratio {median[m] / plain_rps:.3f}")
    finally:
        proc.terminate()
        proc.join(10)
        tmp.cleanup()


if __name__ == "__main__":
    main()
