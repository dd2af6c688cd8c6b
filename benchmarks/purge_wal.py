"""The SQLite WAL while `tokens purge` runs under a serving provider (issue 7, item 6).

Fills a fresh SQLite store with N expired access tokens (default 1,000,000),
starts the provider on 127.0.0.1 (in-process uvicorn, as `serve` runs it), keeps
4 client threads sending signed HMAC-SHA1 /rest/whoami requests, and purges.
Prints the largest -wal size seen (sampled every 5 ms), the purge time, the
request rate during the purge, and the file sizes after.

    .venv/bin/python benchmarks/purge_wal.py [--tokens 1000000] [--no-checkpoint]

``--no-checkpoint`` turns off the checkpoints between purge batches, to show
what happened before (the WAL grew with every deleted page).  Loopback only,
bounded: the clients stop when the purge ends.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
import uvicorn
from requests_oauthlib import OAuth1

ROOT = str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, ROOT)

from benchmarks.bench_support import fill_expired_tokens, memory_keyring  # noqa: E402
from tui_oauth.core import store as store_mod  # noqa: E402
from tui_oauth.core.provider.engine import ProviderEngine  # noqa: E402
from tui_oauth.core.registry import services  # noqa: E402
from tui_oauth.core.store import open_store  # noqa: E402
from tui_oauth.web.app import create_app  # noqa: E402

KEY, SECRET = "bench", "bench-shared-secret"


def _no_checkpoints() -> None:
    store_mod.WAL_CHECKPOINT_AT = 1 << 62


# What `tui-oauth tokens purge` does, in a process of its own (no keyring needed).
PURGE = """
import os, sys
from tui_oauth.core import store as store_mod
from tui_oauth.core.registry import services
if os.environ.get("TUI_OAUTH_BENCH_NO_CHECKPOINT"):
    store_mod.WAL_CHECKPOINT_AT = 1 << 62
with store_mod.open_store(sys.argv[1], create=False) as s:
    print(services(s).tokens.purge())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--no-checkpoint", action="store_true")
    parser.add_argument("--in-process", action="store_true",
                        help="purge in this process instead of a separate one")
    args = parser.parse_args()
    if args.no_checkpoint:
        _no_checkpoints()

    tmp = Path(tempfile.mkdtemp(prefix="purge-wal-"))
    path = tmp / "store.db"
    store = open_store(f"sqlite:///{path}", secrets_backend=memory_keyring(), create=True)
    consumer = services(store).consumers.add(key=KEY, name="Bench", shared_secret=SECRET,
                                   signature_method="HMAC-SHA1", two_lo_allowed=True)
    t0 = time.perf_counter()
    fill_expired_tokens(path, consumer.id or 0, args.tokens)
    print(f"filled {args.tokens:,} expired tokens in {time.perf_counter() - t0:.1f} s; "
          f"database {path.stat().st_size / 1048576:.0f} MiB")

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Without it keep-alive requests wait on delayed ACKs (~40 ms each), as in
    # provider_throughput.py.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    app = create_app(ProviderEngine(store, base))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)

    stop = threading.Event()
    counts = [0] * args.clients
    errors = [0] * args.clients
    largest = [0]

    def client(i: int) -> None:
        session = requests.Session()
        auth = OAuth1(KEY, client_secret=SECRET)
        while not stop.is_set():
            r = session.get(base + "/rest/whoami", auth=auth, timeout=30)
            if r.status_code == 200:
                counts[i] += 1
            else:
                errors[i] += 1

    def sample() -> None:
        wal = Path(f"{path}-wal")
        while not stop.is_set():
            with contextlib.suppress(OSError):
                largest[0] = max(largest[0], wal.stat().st_size)
            time.sleep(0.005)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    threads.append(threading.Thread(target=sample))
    for t in threads:
        t.start()
    time.sleep(2.0)
    idle_rate = sum(counts) / 2.0
    before = sum(counts)
    t0 = time.perf_counter()
    if args.in_process:
        purged = services(store).tokens.purge()
    else:  # as an admin runs it: another process, beside the server
        env = dict(os.environ)
        if args.no_checkpoint:
            env["TUI_OAUTH_BENCH_NO_CHECKPOINT"] = "1"
        done = subprocess.run(
            [sys.executable, "-c", PURGE, f"sqlite:///{path}"], env=env, cwd=ROOT,
            capture_output=True, text=True, check=True, timeout=1800)
        purged = int(done.stdout.strip().splitlines()[-1])
    elapsed = time.perf_counter() - t0
    during = sum(counts) - before
    stop.set()
    for t in threads:
        t.join(60)
    server.should_exit = True
    wal_after = Path(f"{path}-wal").stat().st_size if Path(f"{path}-wal").exists() else 0
    print(f"purged {purged:,} tokens in {elapsed:.1f} s "
          f"({'no checkpoints' if args.no_checkpoint else 'checkpoint past 8 MiB'})")
    print(f"largest -wal seen: {largest[0] / 1048576:.1f} MiB; after: "
          f"{wal_after / 1048576:.1f} MiB; database {path.stat().st_size / 1048576:.0f} MiB")
    print(f"signed requests: {idle_rate:.0f}/s before the purge, {during / elapsed:.0f}/s "
          f"during it ({sum(errors)} refused or failed)")
    space = services(store).doctor.run()
    for check in space.checks:
        if check.name == "database size":
            print(f"doctor: {check.message}")
    store.close()


if __name__ == "__main__":
    main()
