"""Throughput of signed HMAC-SHA1 ``/rest/whoami`` requests as server processes are
added: ``tui-oauth serve --workers N`` for N = 1, 2, 4 (one listening socket), and two
separate ``serve`` processes on one PostgreSQL store ("two hosts"), on loopback only.

    .venv/bin/python benchmarks/provider_scaleout.py [--db postgresql+psycopg://...]
        [--requests 4000] [--connections 16] [--rounds 3] [--workers 1,2,4] [--json]

Without --db the store is a temporary SQLite file and the two-host case is skipped; with
a PostgreSQL --db (its nonces and tokens are emptied first) SQLite is measured too.
Each server is the real ``python -m tui_oauth serve`` in a child process; the keyring
is a file in the temporary directory (``PYTHON_KEYRING_BACKEND``; the request path
never reads the keyring). The client signs every request (fresh nonces) before the
clock starts and sends the raw bytes over ``--connections`` keep-alive connections from
two client processes, so that signing and ``requests`` cost nothing during the run.
Prints requests/second per case, the factor against one process ("x one"), the gain
per added process ((x one - 1) / (N - 1): +1.00 would be perfect scaling, each process
adding as much as the first), how busy the machine's CPUs were during the runs (all
processes, PostgreSQL and the client included; near 100%: CPU-bound), and the CPU the
server processes spent per request.

The client shares the machine's cores with the servers: on 2 cores, more than two
server processes mostly compete with each other and with the client.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from keyring.backend import KeyringBackend

from tui_oauth.core.registry import services

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

KEY, SECRET = "bench:scaleout", "bench-scaleout-secret-0123456789"
KEYRING_FILE_ENV = "TUI_OAUTH_BENCH_KEYRING_FILE"



class FileKeyring(KeyringBackend):
    """A keyring in a JSON file named by $TUI_OAUTH_BENCH_KEYRING_FILE, shared by every
    server process of a run (PYTHON_KEYRING_BACKEND=benchmarks.provider_scaleout.FileKeyring).
    For benchmarks only: the secrets are in clear in a temporary directory."""

    priority = 1

    def _path(self) -> str:
        return os.environ[KEYRING_FILE_ENV]

    def _read(self) -> dict[str, str]:
        try:
            with open(self._path()) as f:
                return dict(json.load(f))
        except FileNotFoundError:
            return {}

    def _update(self, key: str, value: str | None) -> None:
        import fcntl

        with open(self._path() + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            items = self._read()
            if value is None:
                items.pop(key, None)
            else:
                items[key] = value
            tmp = f"{self._path()}.{os.getpid()}"
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                json.dump(items, f)
            os.replace(tmp, self._path())

    def get_password(self, service: str, username: str) -> str | None:
        return self._read().get(f"{service}\0{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        self._update(f"{service}\0{username}", password)

    def delete_password(self, service: str, username: str) -> None:
        self._update(f"{service}\0{username}", None)


# The servers -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(keyring_file: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TUI_OAUTH_DB", "DBUS_SESSION_BUS_ADDRESS")
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHON_KEYRING_BACKEND"] = "benchmarks.provider_scaleout.FileKeyring"
    env[KEYRING_FILE_ENV] = keyring_file
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def wait_up(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(base + "/rest/ping", timeout=2).ok:
                return
        time.sleep(0.1)
    raise SystemExit("the server did not start")


@contextlib.contextmanager
def servers(db_url: str, env: dict[str, str], workers: int, processes: int = 1) -> Any:
    """``processes`` separate ``serve`` commands (each with ``workers``); yields their
    base URLs.  What they print goes to a file, shown if something fails."""
    with tempfile.NamedTemporaryFile(mode="ab", suffix=".log") as log:
        procs: list[subprocess.Popen[bytes]] = []
        bases = []
        try:
            for _ in range(processes):
                port = free_port()
                base = f"http://127.0.0.1:{port}"
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "tui_oauth", "--db", db_url, "serve",
                     "--listen", f"127.0.0.1:{port}", "--log-level", "warning",
                     "--workers", str(workers)],
                    env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=ROOT))
                bases.append(base)
                wait_up(base, procs[-1])
                if workers > 1:  # every worker up, not only the first
                    deadline = time.monotonic() + 60
                    while b"workers serving" not in _read_all(log.name):
                        if time.monotonic() > deadline or procs[-1].poll() is not None:
                            raise SystemExit(_read_all(log.name).decode(errors="replace"))
                        time.sleep(0.1)
            yield bases, [p.pid for p in procs]
        except BaseException:
            sys.stderr.write(_read_all(log.name).decode(errors="replace"))
            raise
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _read_all(path: str) -> bytes:
    with open(path, "rb") as f:  # the servers append to it (O_APPEND): no shared offset
        return f.read()


def prepare_store(db_url: str, env: dict[str, str]) -> None:
    """An empty store (PostgreSQL: nonces, tokens and our consumer removed) with the
    benchmark's HMAC consumer."""
    os.environ.update({k: env[k] for k in ("PYTHON_KEYRING_BACKEND", KEYRING_FILE_ENV)})
    from tui_oauth.core.store import open_store

    if db_url.startswith("postgresql"):
        from sqlalchemy import text

        from tui_oauth.core.database import make_engine
        from tui_oauth.core.migrations import upgrade

        eng = make_engine(db_url)
        upgrade(eng)
        with eng.begin() as conn:
            conn.execute(text("DELETE FROM nonces"))
            conn.execute(text("DELETE FROM tokens"))
            conn.execute(text("DELETE FROM store_meta WHERE key = 'provider.data_key_check'"))
            conn.execute(text("DELETE FROM consumers WHERE key = :k"), {"k": KEY})
        eng.dispose()
    store = open_store(db_url, secrets_backend=FileKeyring(), create=True)
    services(store).consumers.add(key=KEY, name="Bench", shared_secret=SECRET,
                        signature_method="HMAC-SHA1")
    store.close()


def access_token(base: str, db_url: str) -> tuple[str, str]:
    from benchmarks.bench_support import access_token as dance

    answer = dance(base, db_url, FileKeyring(), KEY, SECRET)
    return answer["oauth_token"], answer["oauth_token_secret"]


# The client -------------------------------------------------------------------------


def signed_requests(bases: list[str], token: tuple[str, str], count: int) -> list[bytes]:
    """``count`` raw HTTP/1.1 requests, each signed with a fresh nonce, for ``bases`` in
    turn (request i for bases[i % len(bases)])."""
    from oauthlib.oauth1 import Client

    client = Client(KEY, client_secret=SECRET, resource_owner_key=token[0],
                    resource_owner_secret=token[1])
    out = []
    for i in range(count):
        base = bases[i % len(bases)]
        _, headers, _ = client.sign(base + "/rest/whoami", "GET")
        host = base.split("//", 1)[1]
        out.append((f"GET /rest/whoami HTTP/1.1\r\nHost: {host}\r\n"
                    f"Authorization: {headers['Authorization']}\r\n\r\n").encode())
    return out


def _read_response(sock: socket.socket, buf: bytearray) -> int:
    """Read one response off ``sock`` (``buf`` keeps what follows it); its status."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        rest += chunk
    buf[:] = rest[length:]
    return status


def client_process(jobs: list[tuple[tuple[str, int], list[bytes]]], start: Any,
                   out: Any) -> None:
    """Each job (address, requests) on its own keep-alive connection, in a thread."""
    errors: list[str] = []
    conns = []
    for address, _ in jobs:
        s = socket.create_connection(address, timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns.append(s)

    def run(sock: socket.socket, requests_: list[bytes]) -> None:
        buf = bytearray()
        for raw in requests_:
            sock.sendall(raw)
            status = _read_response(sock, buf)
            if status != 200:
                errors.append(str(status))

    threads = [threading.Thread(target=run, args=(c, j[1])) for c, j in zip(conns, jobs,
                                                                          strict=True)]
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((time.perf_counter() - t0, errors[:3], len(errors)))
    for c in conns:
        c.close()


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of every CPU since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        values = [float(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)
    return sum(values) - idle, sum(values)


def tree_cpu(pids: list[int]) -> float:
    """CPU seconds used so far by ``pids`` and their descendants (the servers)."""
    total, todo = 0.0, list(pids)
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (float(fields[11]) + float(fields[12])) / tick
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                todo.extend(int(c) for c in f.read().split())
    return total


def measure(bases: list[str], token: tuple[str, str], count: int, connections: int,
            clients: int = 2, pids: list[int] | None = None) -> tuple[float, float, float]:
    """(requests/s, the machine's CPU busy share during the run, server CPU ms/request)."""
    ctx = multiprocessing.get_context("fork")
    prepared = signed_requests(bases, token, count)
    # Connection c goes to bases[c % len(bases)] and gets every request meant for it.
    per_conn: list[list[bytes]] = [[] for _ in range(connections)]
    by_base: list[list[bytes]] = [prepared[i::len(bases)] for i in range(len(bases))]
    for b, reqs in enumerate(by_base):
        mine = [c for c in range(connections) if c % len(bases) == b]
        for i, raw in enumerate(reqs):
            per_conn[mine[i % len(mine)]].append(raw)
    addresses = []
    for c in range(connections):
        host, port = bases[c % len(bases)].split("//", 1)[1].rsplit(":", 1)
        addresses.append((host, int(port)))
    jobs = list(zip(addresses, per_conn, strict=True))
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=client_process, args=(jobs[i::clients], start, out))
             for i in range(clients)]
    for p in procs:
        p.start()
    time.sleep(0.5)  # every connection made (and accepted) before the clock starts
    busy0, total0 = cpu_times()
    server0 = tree_cpu(pids or [])
    t0 = time.perf_counter()
    start.set()
    results = [out.get(timeout=600) for _ in procs]
    elapsed = time.perf_counter() - t0
    busy1, total1 = cpu_times()
    server_ms = (tree_cpu(pids or []) - server0) * 1000 / count
    for p in procs:
        p.join(30)
    failed = sum(r[2] for r in results)
    if failed:
        raise SystemExit(f"{failed} request(s) failed, e.g. {[r[1] for r in results]}")
    return count / elapsed, (busy1 - busy0) / max(1.0, total1 - total0), server_ms


def run_case(label: str, db_url: str, env: dict[str, str], workers: int, processes: int,
             args: argparse.Namespace) -> dict[str, Any]:
    with servers(db_url, env, workers, processes) as (bases, pids):
        token = access_token(bases[0], db_url)
        measure(bases, token, min(500, args.requests), args.connections)  # warm up
        runs = [measure(bases, token, args.requests, args.connections, pids=pids)
                for _ in range(args.rounds)]
    rates = [r[0] for r in runs]
    rate = statistics.median(rates)
    busy = statistics.median(r[1] for r in runs)
    server_ms = statistics.median(r[2] for r in runs)
    print(f"  {label:<38} {rate:8.1f} req/s  (rounds: "
          f"{', '.join(f'{r:.0f}' for r in rates)}); CPUs {busy:.0%} busy; servers "
          f"{server_ms:.2f} CPU ms/request", flush=True)
    return {"case": label, "processes": workers * processes, "rps": round(rate, 1),
            "rounds": [round(r, 1) for r in rates], "cpu_busy": round(busy, 3),
            "server_cpu_ms_per_request": round(server_ms, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="a PostgreSQL store URL (SQLite is always measured)")
    parser.add_argument("--requests", type=int, default=4000,
                        help="signed requests per round (100 to 50000)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.requests = max(100, min(args.requests, 50000))
    workers = [int(w) for w in args.workers.split(",")]
    stores = [("sqlite", None)]
    if args.db:
        if not args.db.startswith("postgresql"):
            raise SystemExit("--db: a postgresql+psycopg:// URL (SQLite is always measured)")
        stores.append(("postgresql", args.db))
    print(f"{os.cpu_count()} CPU(s); {args.requests} signed HMAC-SHA1 requests x "
          f"{args.rounds} rounds (median) over {args.connections} keep-alive connections "
          "from 2 client processes, loopback", flush=True)
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in stores:
            db_url = url or f"sqlite:///{tmp}/bench.db"
            env = server_env(os.path.join(tmp, f"keyring-{name}.json"))
            prepare_store(db_url, env)
            print(f"{name}:", flush=True)
            rows = [run_case(f"serve --workers {w}", db_url, env, w, 1, args) for w in workers]
            if name == "postgresql":
                rows.append(run_case("two serve processes, one store", db_url, env, 1, 2,
                                     args))
            one = rows[0]["rps"]
            for row in rows:
                n = row["processes"]
                row["vs_one"] = round(row["rps"] / one, 2)
                # What each process beyond the first adds, as a share of one process.
                row["gain_per_added"] = (round((row["vs_one"] - 1) / (n - 1), 2)
                                         if n > 1 else None)
            results[name] = rows
    print()
    print(f"{'store':<11} {'case':<34} {'procs':>5} {'req/s':>9} {'x one':>6} "
          f"{'gain per added process':>23} {'CPUs busy':>10} {'server CPU ms/req':>18}")
    for name, rows in results.items():
        for row in rows:
            per = "" if row["gain_per_added"] is None else f"{row['gain_per_added']:+.2f}"
            print(f"{name:<11} {row['case']:<34} {row['processes']:>5} {row['rps']:>9.1f} "
                  f"{row['vs_one']:>6.2f} {per:>23} {row['cpu_busy']:>10.0%} "
                  f"{row['server_cpu_ms_per_request']:>18.2f}")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
