"""Scale-out: ``serve --workers N`` (one socket, N processes) and several ``serve``
processes on one PostgreSQL store ("hosts"), all correct together, over real HTTP on
127.0.0.1 with oauthlib (requests-oauthlib's signer) as the client.

- a nonce used on one process is refused by every other (the unique index on nonces);
- a token revoked (the CLI, the service) or renewed away (through one process), or a
  consumer removed, is refused by every process on the next request;
- a consumer's changed shared secret applies on every process within the refresh
  interval (the target is 2 s; waited for here at most CHANGE_WAIT seconds);
- the supervisor starts a worker again when it dies, stops all on SIGTERM, and exits 1
  when they cannot start.

Each server is the real ``python -m tui_oauth serve`` in a subprocess with the real
Secret Service.  With ``--workers`` the kernel gives each new connection to one worker;
the test finds which one from /proc (the worker whose descriptors hold the server side of
the connection) and keeps a keep-alive connection open on each.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import sqlalchemy as sa
from oauthlib.oauth1 import Client
from requests_oauthlib import OAuth1Session

from tests.cli_support import REPO, Cli, base_env, delete_store_secrets
from tests.provider_support import OAUTH, SessionHandleClient
from tui_oauth.core.database import make_engine
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store, open_store

KEY = "scale:partner"
SECRET = "scale-shared-secret-0001"
NEW_SECRET = "scale-shared-secret-0002"
#: The most a change of a consumer's secret may take to reach every process (the
#: consumer cache's refresh; the target is 2 s), with room for a loaded machine.
CHANGE_WAIT = 5.0
START_WAIT = 60.0

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="finds a connection's worker in /proc")


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    base: str  # where we connect: http://127.0.0.1:PORT
    port: int
    proc: subprocess.Popen[str]
    lines: list[str]  # what it printed so far (stdout and stderr)

    def said(self) -> str:
        return "".join(self.lines)


@contextmanager
def serve(db_url: str, *args: str, public_url: str | None = None) -> Iterator[Served]:
    """``tui-oauth serve ARGS`` on a free port, once it answers (with --workers: once
    the supervisor says every worker is serving)."""
    port = free_port()
    cmd = [sys.executable, "-m", "tui_oauth", "--db", db_url, "serve", "--listen",
           f"127.0.0.1:{port}", "--log-level", "warning", *args]
    if public_url:
        cmd += ["--public-url", public_url]
    proc = subprocess.Popen(cmd, cwd=REPO, env=base_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    served = Served(f"http://127.0.0.1:{port}", port, proc, lines)
    try:
        def up() -> bool:
            assert proc.poll() is None, served.said()
            if "--workers" in args and "workers serving" not in served.said():
                return False
            with suppress(requests.RequestException):
                return requests.get(served.base + "/rest/ping", timeout=2).ok
            return False

        assert wait_for(up, START_WAIT), f"serve did not start:\n{served.said()}"
        yield served
    finally:
        stop(proc)
        reader.join(10)


def stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def owner_of(conn: http.client.HTTPConnection, server_port: int, pids: list[int]) -> int | None:
    """The pid among ``pids`` holding the server side of ``conn`` (after a response)."""
    assert conn.sock is not None
    client_port = conn.sock.getsockname()[1]
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(FileNotFoundError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, remote = fields[1], fields[2]
                if (int(local.rsplit(":", 1)[1], 16) == server_port
                        and int(remote.rsplit(":", 1)[1], 16) == client_port):
                    inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        with suppress(FileNotFoundError, PermissionError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                        return pid
    return None


class Node:
    """A keep-alive connection to one server process; requests signed for ``public``."""

    def __init__(self, name: str, base: str, public: str) -> None:
        self.name = name
        self.public = public
        host, port = base.split("//", 1)[1].rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=10)

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: str | None = None) -> tuple[int, str]:
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        return r.status, r.read().decode()

    def sign(self, token: dict[str, str] | None, *, secret: str = SECRET,
             path: str = "/rest/whoami") -> dict[str, str]:
        client = Client(KEY, client_secret=secret,
                        resource_owner_key=token and token["oauth_token"],
                        resource_owner_secret=token and token["oauth_token_secret"])
        _, headers, _ = client.sign(self.public + path, "GET")
        return dict(headers)

    def whoami(self, token: dict[str, str] | None, *, secret: str = SECRET,
               headers: dict[str, str] | None = None) -> tuple[int, str]:
        return self.request("GET", "/rest/whoami",
                            headers or self.sign(token, secret=secret))

    def close(self) -> None:
        self.conn.close()


def problem(answer: tuple[int, str]) -> str | None:
    values = parse_qs(answer[1]).get("oauth_problem")
    return values[0] if values else None


def refused(answer: tuple[int, str], expected: str) -> bool:
    return answer[0] == 401 and problem(answer) == expected


def access_token(base: str, public: str, store: Store, user: str = "alice") -> dict[str, str]:
    """The three legs: request token (from ``base``), approval through the service,
    access token."""
    with requests.Session() as http_:
        http_.trust_env = False
        s = OAuth1Session(KEY, client_secret=SECRET, callback_uri="oob")
        r = http_.send(retarget(s, "POST", public, base, OAUTH + "/request-token"), timeout=10)
        assert r.status_code == 200, r.text
        rt = {k: v[0] for k, v in parse_qs(r.text).items()}
        verifier = services(store).tokens.authorize(rt["oauth_token"], user).verifier
        s2 = OAuth1Session(KEY, client_secret=SECRET, resource_owner_key=rt["oauth_token"],
                           resource_owner_secret=rt["oauth_token_secret"], verifier=verifier)
        r = http_.send(retarget(s2, "POST", public, base, OAUTH + "/access-token"), timeout=10)
        assert r.status_code == 200, r.text
        return {k: v[0] for k, v in parse_qs(r.text).items()}


def retarget(session: OAuth1Session, method: str, public: str, base: str,
             path: str) -> requests.PreparedRequest:
    """A request signed for ``public + path``, sent to ``base`` (a balancer's job)."""
    prepared = requests.Request(method, public + path, auth=session.auth).prepare()
    prepared.url = base + path
    return prepared


@pytest.fixture
def partner(db_url: str, keyring_backend: Any) -> Iterator[Store]:
    """The store (SQLite or PostgreSQL) with the HMAC consumer, secrets in the real
    Secret Service (the servers are other processes)."""
    store = open_store(db_url, secrets_backend=keyring_backend)
    services(store).consumers.add(key=KEY, name="Partner", shared_secret=SECRET,
                                  signature_method="HMAC-SHA1")
    try:
        yield store
    finally:
        store.close()
        delete_store_secrets(db_url, keyring_backend)


def one_node_per_worker(served: Served, count: int) -> list[Node]:
    """Keep-alive connections until one is held by each of ``count`` workers."""
    assert wait_for(lambda: len(children(served.proc.pid)) == count, START_WAIT)
    workers = children(served.proc.pid)
    found: dict[int, Node] = {}
    spare: list[Node] = []
    for i in range(60):
        node = Node(f"connection {i}", served.base, served.base)
        assert node.request("GET", "/rest/ping")[0] == 200
        pid = owner_of(node.conn, served.port, workers)
        if pid is not None and pid not in found:
            node.name = f"worker {pid}"
            found[pid] = node
            if len(found) == count:
                break
        else:
            spare.append(node)
    for node in spare:
        node.close()
    assert len(found) == count, f"60 connections reached only workers {sorted(found)}"
    return list(found.values())


def check_together(nodes: list[Node], store: Store, token: dict[str, str],
                   spent: dict[str, str], revoke: Callable[[str], object]) -> None:
    """What every process must agree on, checked on each of ``nodes``: ``token`` is
    revoked by ``revoke``, ``spent`` renewed away through the first node."""
    first = nodes[0]

    # A nonce used on one process is refused on every other.
    for used_on in nodes:
        headers = used_on.sign(token)
        assert used_on.whoami(token, headers=headers)[0] == 200
        for other in nodes:
            answer = other.whoami(token, headers=headers)
            assert refused(answer, "nonce_used"), (used_on.name, other.name, answer)

    # A token revoked (CLI or service) is refused by every process on the next request.
    revoke(token["oauth_token"])
    for node in nodes:
        answer = node.whoami(token)
        assert refused(answer, "token_revoked"), (node.name, answer)

    # A token renewed away through one process is refused by the others.
    renewal = SessionHandleClient(KEY, client_secret=SECRET,
                                  resource_owner_key=spent["oauth_token"],
                                  resource_owner_secret=spent["oauth_token_secret"])
    renewal.session_handle = spent["oauth_session_handle"]
    _, headers, _ = renewal.sign(first.public + OAUTH + "/access-token", "POST")
    status, text = first.request("POST", OAUTH + "/access-token", dict(headers), body="")
    assert status == 200, text
    renewed = {k: v[0] for k, v in parse_qs(text).items()}
    for node in nodes:
        assert refused(node.whoami(spent), "token_used"), node.name
        assert node.whoami(renewed)[0] == 200, node.name

    # A changed shared secret applies on every process within the refresh interval.
    services(store).consumers.edit(KEY, shared_secret=NEW_SECRET)
    for node in nodes:
        assert wait_for(lambda n=node: n.whoami(renewed, secret=NEW_SECRET)[0] == 200,  # type: ignore[misc]
                        CHANGE_WAIT), f"{node.name} still refuses the new secret"
        assert refused(node.whoami(renewed, secret=SECRET), "signature_invalid"), node.name

    # A consumer removed is refused by every process on the next request.
    services(store).consumers.remove(KEY)
    for node in nodes:
        answer = node.whoami(renewed, secret=NEW_SECRET)
        assert refused(answer, "consumer_key_unknown"), (node.name, answer)


def test_workers_of_one_serve_agree_on_nonces_tokens_and_consumers(
        partner: Store, db_url: str) -> None:
    with serve(db_url, "--workers", "2") as served:
        nodes = one_node_per_worker(served, 2)
        try:
            check_together(nodes, partner,
                           access_token(served.base, served.base, partner),
                           access_token(served.base, served.base, partner, "bob"),
                           revoke=services(partner).tokens.revoke)
        finally:
            for node in nodes:
                node.close()
        assert sorted(children(served.proc.pid)) == sorted(
            int(n.name.split()[1]) for n in nodes), "a worker was started again"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_hosts_on_one_postgresql_store_agree(partner: Store, db_url: str) -> None:
    """Two separate ``serve`` processes (as on two hosts behind a balancer) with the one
    public URL the clients sign for."""
    public = "https://oauth.example.com/jira"
    with serve(db_url, public_url=public) as one, serve(db_url, public_url=public) as two:
        nodes = [Node("host one", one.base, public), Node("host two", two.base, public)]
        try:
            cli = Cli(db_url, init=False)
            check_together(nodes, partner, access_token(one.base, public, partner),
                           access_token(two.base, public, partner, "bob"),
                           revoke=lambda token: cli("tokens", "revoke", "--yes", "--", token))
        finally:
            for node in nodes:
                node.close()


def test_the_nonce_table_has_its_unique_index(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        inspector = sa.inspect(engine)
        unique: list[tuple[Any, ...]] = [
            tuple(u["column_names"]) for u in inspector.get_unique_constraints("nonces")]
        unique += [tuple(i["column_names"]) for i in inspector.get_indexes("nonces")
                   if i.get("unique")]
        assert ("consumer_key", "token", "timestamp", "nonce") in unique, unique
        if db_url.startswith("sqlite"):  # several processes on one file: WAL, busy timeout
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) >= 1000
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_worker_that_dies_is_started_again_and_sigterm_stops_all(
        partner: Store, db_url: str) -> None:
    with serve(db_url, "--workers", "2") as served:
        assert wait_for(lambda: len(children(served.proc.pid)) == 2, START_WAIT)
        first = children(served.proc.pid)
        os.kill(first[0], signal.SIGKILL)
        again = wait_for(lambda: len(children(served.proc.pid)) == 2
                         and first[0] not in children(served.proc.pid)
                         and served.said().count("workers serving") == 1
                         and served.said().endswith("serving again.\n"), 30)
        assert again, (children(served.proc.pid), first, served.said())
        now = children(served.proc.pid)
        assert requests.get(served.base + "/rest/ping", timeout=5).ok
        assert stop(served.proc) == 0, served.said()
        for pid in now:
            assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), f"worker {pid} left"
        time.sleep(0.2)
        said = served.said()
        assert "was killed by SIGKILL; starting it again" in said, said
        assert "stopping 2 workers (SIGTERM)" in said and "Traceback" not in said, said


def _is_zombie(pid: int) -> bool:
    with suppress(FileNotFoundError), open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    return True


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_workers_that_cannot_start_make_serve_exit_1(partner: Store, db_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "tui_oauth", "--db", db_url, "serve", "--workers", "2",
             "--listen", f"127.0.0.1:{port}"],
            cwd=REPO, env=base_env(), stdin=subprocess.DEVNULL, capture_output=True,
            text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stderr == (f"error: --listen 127.0.0.1:{port}: the address is already in use "
                           "(another server, or another `tui-oauth serve`, listens there); "
                           "stop it or choose another port with --listen.\n"), done.stderr
