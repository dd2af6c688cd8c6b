"""Signed HMAC-SHA1 ``/rest/whoami`` throughput and latency, first undisturbed, then while
many slow connections (Slowloris) hold the server; loopback only, bounded in time and count.

    .venv/bin/python benchmarks/slowloris.py [--slow 1000] [--seconds 15] [--threads 4]
        [--header-timeout 10] [--max-connections 4096] [--nofile N] [--plain]

The server runs in a child process on 127.0.0.1 exactly as ``tui-oauth serve`` runs it
(tui_oauth.web.server: the hardened h11 protocol, the connection limit, the raised
open-files limit, the redacting and collapsing log), over a temporary SQLite store and an
in-memory keyring.  ``--plain`` runs it as serve did before (uvicorn's defaults), and
``--nofile N`` sets the child's open-files limit (soft and hard) to N, e.g. 1024, a
common default, to see what the attack does on such a host.

The attacker opens ``--slow`` connections, each sending a request line and one header,
then one more header line every ``--drip`` seconds, never the blank line that ends the
headers; a connection the server closes is opened again.  Meanwhile ``--threads``
clients send signed requests, each on a new keep-alive connection every
``--per-connection`` requests (real clients connect now and then).  Prints requests/s,
latency percentiles and failures for both phases, what became of the slow connections,
and how much the server logged.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import resource
import selectors
import socket
import statistics
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tui_oauth.core.registry import services

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

KEY, SECRET = "bench:hmac", "bench-shared-secret-0123456789"
HOST = "127.0.0.1"  # loopback only, never anything else
MAX_SLOW, MAX_SECONDS = 5000, 120.0


def _memory_keyring() -> Any:
    from benchmarks.bench_support import memory_keyring

    return memory_keyring()


def serve(db_url: str, sock: socket.socket, log_path: str, options: dict[str, Any]) -> None:
    """The child: the provider as `tui-oauth serve` runs it (or as it ran before)."""
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log_fd, 2)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    if options["nofile"]:
        n = options["nofile"]
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    import uvicorn

    from tui_oauth.core.provider.engine import ProviderEngine
    from tui_oauth.core.store import open_store
    from tui_oauth.web import server
    from tui_oauth.web.app import create_app

    store = open_store(db_url, secrets_backend=_memory_keyring())
    services(store).consumers.add(key=KEY, name="Bench", shared_secret=SECRET,
                        signature_method="HMAC-SHA1", two_lo_allowed=True,
                        two_lo_execute_as="bench-user")
    engine = ProviderEngine(store, f"http://{HOST}:{sock.getsockname()[1]}")
    app = create_app(engine)
    if options["plain"]:
        uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=False,
                                      proxy_headers=False, server_header=False)).run(
            sockets=[sock])
        return
    nofile = server.raise_nofile_limit()
    connections = server.connection_budget(options["max_connections"], nofile)
    repeats = server.configure_logging("info")
    logger = server.log
    logger.info("open-files limit %d: at most %d connections", nofile, connections)
    config = server.make_config(app, header_timeout=options["header_timeout"],
                                max_connections=connections, log_level="info")
    try:
        server.run(config, sockets=[sock])
    finally:
        repeats.flush()


# The attacker -------------------------------------------------------------------------


@dataclass
class Attack:
    """Runs in a process of its own (so it takes no GIL from the measuring clients)."""

    port: int
    target: int
    drip: float
    stop: Any  # multiprocessing.Event
    open_now: Any  # multiprocessing.Value("i")
    opened: int = 0
    closed_by_server: int = 0
    answered: dict[str, int] = field(default_factory=dict)
    connect_errors: int = 0

    def stats(self) -> dict[str, Any]:
        return {"opened": self.opened, "closed_by_server": self.closed_by_server,
                "answered": self.answered, "connect_errors": self.connect_errors}

    def run(self) -> None:
        sel = selectors.DefaultSelector()
        next_drip: dict[socket.socket, float] = {}
        schedule: deque[tuple[float, socket.socket]] = deque()  # due times, in order
        first = (f"GET /rest/ping HTTP/1.1\r\nHost: {HOST}\r\n").encode()

        def open_one() -> None:
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect((HOST, self.port))
            except BlockingIOError:
                pass
            except OSError:
                self.connect_errors += 1
                s.close()
                return
            sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, "connecting")
            self.opened += 1

        def drop(s: socket.socket) -> None:
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(s)
            next_drip.pop(s, None)
            s.close()

        while not self.stop.is_set():
            # Keep `target` connections open (a few hundred new ones per round at most).
            for _ in range(min(500, self.target - len(sel.get_map()))):
                open_one()
            self.open_now.value = len(next_drip)
            wait = min(0.05, max(0.0, schedule[0][0] - time.monotonic())) if schedule else 0.05
            for key, events in sel.select(timeout=wait):
                s: socket.socket = key.fileobj  # type: ignore[assignment]
                if key.data == "connecting" and events & selectors.EVENT_WRITE:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        self.connect_errors += 1
                        drop(s)
                        continue
                    try:
                        s.send(first)
                    except OSError:
                        self.closed_by_server += 1
                        drop(s)
                        continue
                    sel.modify(s, selectors.EVENT_READ, "slow")
                    next_drip[s] = time.monotonic() + self.drip
                    schedule.append((next_drip[s], s))
                elif events & selectors.EVENT_READ:
                    try:
                        data = s.recv(4096)
                    except OSError:
                        data = b""
                    if data:
                        status = data.split(b"\r\n", 1)[0].decode("latin-1")[9:12] or "?"
                        self.answered[status] = self.answered.get(status, 0) + 1
                    self.closed_by_server += 1
                    drop(s)
            now = time.monotonic()
            while schedule and schedule[0][0] <= now:
                due, s = schedule.popleft()
                if next_drip.get(s) != due:
                    continue  # closed since
                try:
                    s.send(b"X-Slow: 1\r\n")
                except OSError:
                    self.closed_by_server += 1
                    drop(s)
                    continue
                next_drip[s] = now + self.drip
                schedule.append((next_drip[s], s))
        for key in list(sel.get_map().values()):
            drop(key.fileobj)  # type: ignore[arg-type]
        sel.close()


def attack_main(port: int, target: int, drip: float, stop: Any, open_now: Any,
                results: Any) -> None:
    raise_own_limit(target + 256)
    attack = Attack(port, target, drip, stop, open_now)
    attack.run()
    results.put(attack.stats())


# The signed clients ---------------------------------------------------------------------


def measure(base: str, seconds: float, threads: int, per_connection: int) -> dict[str, Any]:
    import requests
    from requests_oauthlib import OAuth1

    from benchmarks.bench_support import timed_threads

    latencies: list[list[float]] = [[] for _ in range(threads)]
    failures: list[dict[str, int]] = [{} for _ in range(threads)]
    stop_at = time.monotonic() + seconds

    def worker(i: int) -> None:
        auth = OAuth1(KEY, client_secret=SECRET)
        while time.monotonic() < stop_at:
            with requests.Session() as http:
                http.trust_env = False
                for _ in range(per_connection):
                    if time.monotonic() >= stop_at:
                        break
                    t0 = time.perf_counter()
                    try:
                        r = http.get(base + "/rest/whoami", auth=auth, timeout=10)
                        ok = r.status_code == 200
                        why = str(r.status_code)
                    except requests.RequestException as exc:
                        ok, why = False, type(exc).__name__
                    if ok:
                        latencies[i].append(time.perf_counter() - t0)
                    else:
                        failures[i][why] = failures[i].get(why, 0) + 1
                        time.sleep(0.05)
                        break  # a new connection

    elapsed = timed_threads(worker, range(threads))
    lat = sorted(x for part in latencies for x in part)
    failed: dict[str, int] = {}
    for part in failures:
        for k, v in part.items():
            failed[k] = failed.get(k, 0) + v

    def pct(p: float) -> float:
        return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else float("nan")

    return {"ok": len(lat), "rps": round(len(lat) / elapsed, 1), "failed": failed,
            "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "max_ms": round(1000 * lat[-1], 1) if lat else float("nan"),
            "mean_ms": round(1000 * statistics.fmean(lat), 1) if lat else float("nan")}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), 0 when unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return 0.0


def raise_own_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < need:
        raise SystemExit(f"need {need} open files for the slow connections; "
                         f"the hard limit is {hard}")


def main() -> None:
    import requests

    from benchmarks.bench_support import server_socket, wait_for_ping

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=1000, help="slow connections (max 5000)")
    parser.add_argument("--seconds", type=float, default=15.0, help="each phase (max 120)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--per-connection", type=int, default=20,
                        help="signed requests per client connection")
    parser.add_argument("--drip", type=float, default=2.0,
                        help="seconds between a slow connection's header lines")
    parser.add_argument("--header-timeout", type=float, default=10.0)
    parser.add_argument("--max-connections", type=int, default=4096)
    parser.add_argument("--nofile", type=int, default=0,
                        help="the server's open-files limit, soft and hard (default: as is)")
    parser.add_argument("--plain", action="store_true",
                        help="run the server as before the fix (uvicorn's defaults)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    slow = max(1, min(args.slow, MAX_SLOW))
    seconds = max(1.0, min(args.seconds, MAX_SECONDS))
    raise_own_limit(slow + 256)

    tmp = tempfile.TemporaryDirectory()
    db_url = f"sqlite:///{tmp.name}/bench.db"
    log_path = os.path.join(tmp.name, "serve.log")
    sock, base = server_socket()  # on 127.0.0.1, HOST
    port = sock.getsockname()[1]
    options = {"plain": args.plain, "nofile": args.nofile, "header_timeout": args.header_timeout,
               "max_connections": args.max_connections}
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=serve, args=(db_url, sock, log_path, options), daemon=True)
    proc.start()
    stop, open_now, results = ctx.Event(), ctx.Value("i", 0), ctx.Queue()
    attacker = ctx.Process(target=attack_main,
                           args=(port, slow, args.drip, stop, open_now, results), daemon=True)
    try:
        wait_for_ping(base, timeout=60, alive=proc.is_alive)
        quiet = measure(base, seconds, args.threads, args.per_connection)
        rss_quiet = rss_mb(proc.pid or 0)
        log_before = os.path.getsize(log_path)
        attacker.start()
        ramp_until = time.monotonic() + 15
        while open_now.value < slow * 0.95 and time.monotonic() < ramp_until:
            time.sleep(0.1)
        held = open_now.value
        cpu0 = cpu_seconds(proc.pid or 0), cpu_seconds(attacker.pid or 0)
        under = measure(base, seconds, args.threads, args.per_connection)
        cpu1 = cpu_seconds(proc.pid or 0), cpu_seconds(attacker.pid or 0)
        held_end = open_now.value
        rss_attack = rss_mb(proc.pid or 0)
        stop.set()
        attack = results.get(timeout=30)
        attacker.join(10)
        time.sleep(0.5)
        alive = proc.is_alive()
        try:
            after = requests.get(base + "/rest/ping", timeout=5).status_code
        except requests.RequestException as exc:
            after = type(exc).__name__
        log_growth = os.path.getsize(log_path) - log_before
        result = {
            "server": "plain uvicorn (before)" if args.plain else "tui-oauth serve (hardened)",
            "nofile": args.nofile or resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            "header_timeout": args.header_timeout, "max_connections": args.max_connections,
            "slow_target": slow, "seconds": seconds, "threads": args.threads,
            "quiet": quiet, "under_attack": under,
            "slow_open_at_start": held, "slow_open_at_end": held_end,
            "slow_opened": attack["opened"], "slow_closed_by_server": attack["closed_by_server"],
            "slow_answers": attack["answered"], "slow_connect_errors": attack["connect_errors"],
            "server_cpu_s": round(cpu1[0] - cpu0[0], 1),
            "attacker_cpu_s": round(cpu1[1] - cpu0[1], 1),
            "server_rss_mb": [rss_quiet, rss_attack],
            "server_alive": alive, "ping_after": after, "log_bytes_during_attack": log_growth,
        }
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{result['server']}; loopback; {args.threads} client threads, "
                  f"{args.per_connection} requests per connection; {seconds:g} s per phase")
            for name, m in (("no attack", quiet), (f"{slow} slow connections", under)):
                print(f"  {name:>22}: {m['rps']:8.1f} signed req/s  p50 {m['p50_ms']} ms  "
                      f"p95 {m['p95_ms']} ms  p99 {m['p99_ms']} ms  max {m['max_ms']} ms  "
                      f"failed {m['failed'] or 0}")
            print(f"  slow connections held open: {held} at the start, {held_end} at the end; "
                  f"{attack['opened']} opened, {attack['closed_by_server']} closed by the "
                  f"server (answers {attack['answered'] or '-'}), "
                  f"{attack['connect_errors']} refused")
            print(f"  CPU during the attack phase: server {result['server_cpu_s']} s, "
                  f"attacker {result['attacker_cpu_s']} s (of {seconds:g} s); server memory "
                  f"{rss_quiet} MB before, {rss_attack} MB during")
            print(f"  server alive afterwards: {alive}, /rest/ping -> {after}; "
                  f"it logged {log_growth} bytes during the attack")
            with open(log_path, encoding="utf-8", errors="replace") as f:
                tail = f.read()[log_before:].splitlines()[-6:]
            for line in tail:
                print(f"    | {line[:160]}")
    finally:
        stop.set()
        for child in (attacker, proc):
            if child.is_alive():
                child.terminate()
        proc.terminate()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
        tmp.cleanup()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
