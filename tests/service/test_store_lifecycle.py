"""The store file itself: readers beside writers, a store that vanishes, the WAL.

Issue 7, items 4 to 6: a reader never waits for a writer; a store is created
only on purpose, and a process whose store was removed or replaced under it
stops with a clear error; the SQLite WAL stays bounded while purging.
"""

from __future__ import annotations

import contextlib
import http.client
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmarks.bench_support import fill_expired_tokens
from tests.cli_support import Cli
from tests.helpers import pem_spki, rsa_key
from tests.keyring_backends import MemoryKeyring
from tui_oauth.core.registry import services
from tui_oauth.core.store import open_store


@pytest.fixture
def writer_holding_the_lock(sqlite_url: str, memory_keyring: MemoryKeyring
                            ) -> Iterator[Path]:
    """A store with one consumer, and another connection in the middle of a write."""
    with open_store(sqlite_url, secrets_backend=memory_keyring) as store:
        services(store).consumers.add(key="k", name="K", public_key=pem_spki(rsa_key(0)))
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE consumers SET name = 'being written'")
    yield path
    conn.execute("ROLLBACK")
    conn.close()


def test_reading_never_waits_for_a_writer(writer_holding_the_lock: Path, sqlite_url: str,
                                          memory_keyring: MemoryKeyring) -> None:
    started = time.monotonic()
    with open_store(sqlite_url, secrets_backend=memory_keyring, read_only=True) as store:
        assert [c.key for c in services(store).consumers.list()] == ["k"]
        assert services(store).consumers.get("k").name == "K"  # the last committed value
        assert services(store).tokens.list().rows == []
        assert services(store).audit.list().entries
        services(store).doctor.expected_secrets()
    # Waiting on the lock would take the whole busy timeout (10 s) and then fail.
    assert time.monotonic() - started < 8


def test_read_only_cli_lists_beside_a_writer(writer_holding_the_lock: Path) -> None:
    cli = Cli(f"sqlite:///{writer_holding_the_lock}")
    out = cli("--read-only", "consumers", "list", "--json", timeout=8).json()
    assert [c["key"] for c in out] == ["k"]


# The WAL while purging under load (item 6) -------------------------------------

EXPIRED = 25_000


def _under_load(path: Path, store_: object, work: Callable[[], object]) -> tuple[int, object]:
    """Run ``work`` while readers overlap without pause (as a busy server's requests do)
    and a writer adds a nonce every few ms; returns the largest -wal size seen."""
    import threading

    from tui_oauth.core.models import Nonce

    stop = threading.Event()
    largest = [0]
    wal = Path(f"{path}-wal")

    def read_forever(offset: float) -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=10)
        time.sleep(offset)
        while not stop.is_set():
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM consumers").fetchone()
            time.sleep(0.004)  # a request's worth of work with the snapshot held
            conn.execute("COMMIT")
        conn.close()

    def write_nonces() -> None:
        i = 0
        while not stop.is_set():
            with store_.transaction() as uow:  # type: ignore[attr-defined]
                uow.session.add(Nonce(consumer_key="k", timestamp=int(time.time()),
                                      nonce=f"n{i}"))
            i += 1
            time.sleep(0.003)

    def sample() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                largest[0] = max(largest[0], wal.stat().st_size)
            time.sleep(0.002)

    threads = [threading.Thread(target=read_forever, args=(i * 0.0015,)) for i in range(3)]
    threads += [threading.Thread(target=write_nonces), threading.Thread(target=sample)]
    for t in threads:
        t.start()
    try:
        result = work()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    return largest[0], result


def test_purging_under_load_keeps_the_wal_small(sqlite_url: str, memory_keyring: MemoryKeyring,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from tui_oauth.core import store as store_mod

    monkeypatch.setattr(store_mod, "WAL_CHECKPOINT_AT", 1024 * 1024)  # 8 MiB, scaled down
    monkeypatch.setattr("tui_oauth.core.services.tokens.BATCH_PAUSE", 0.001)
    store = open_store(sqlite_url, secrets_backend=memory_keyring)
    path = store.path
    assert path is not None
    consumer = services(store).consumers.add(key="k", name="K", public_key=pem_spki(rsa_key(0)))
    fill_expired_tokens(path, consumer.id or 0, EXPIRED)
    db_size = path.stat().st_size
    largest, purged = _under_load(path, store, lambda: services(store).tokens.purge(batch=500))
    store.close()
    assert purged == EXPIRED
    # Without checkpoints between batches the WAL reaches about the size of all the
    # deleted pages (here ~ the database itself: 11 MiB); with them, one threshold
    # and a batch.
    assert largest < 3 * 1024 * 1024, (largest, db_size)  # the threshold + a batch


# A store removed or replaced under a running process (item 5) --------------------


def _remove_store_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def test_a_removed_store_stops_every_read_and_write(sqlite_url: str,
                                                    memory_keyring: MemoryKeyring) -> None:
    from tui_oauth.core.errors import StoreGoneError

    store = open_store(sqlite_url, secrets_backend=memory_keyring)
    services(store).consumers.add(key="k", name="K", public_key=pem_spki(rsa_key(0)))
    assert store.path is not None
    _remove_store_files(store.path)
    with pytest.raises(StoreGoneError, match="was removed after this process opened it"):
        services(store).consumers.list()
    with pytest.raises(StoreGoneError):
        services(store).consumers.edit("k", name="X")
    assert not store.path.exists()  # and nothing made a new file in its place
    store.close()


def test_a_replaced_store_is_noticed(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    from tui_oauth.core.errors import StoreGoneError

    first = open_store(f"sqlite:///{tmp_path / 'a.db'}", secrets_backend=memory_keyring)
    other = open_store(f"sqlite:///{tmp_path / 'b.db'}", secrets_backend=memory_keyring)
    other.close()
    (tmp_path / "b.db").replace(tmp_path / "a.db")
    with pytest.raises(StoreGoneError, match="was replaced by another file"):
        services(first).consumers.list()
    first.close()


def test_the_server_refuses_then_stops_when_its_store_is_removed(
        sqlite_url: str, memory_keyring: MemoryKeyring) -> None:
    import requests
    from oauthlib.oauth1 import Client

    from tests.provider_support import add_hmac_consumer, running_server

    store = open_store(sqlite_url, secrets_backend=memory_keyring)
    secret = add_hmac_consumer(store, "partner")
    stops: list[str] = []
    with running_server(store, refresh_interval=1, prune_interval=3600,
                        on_fatal=stops.append) as server:
        assert store.path is not None
        _remove_store_files(store.path)
        client = Client("partner", client_secret=secret, callback_uri="oob")
        _, headers, _ = client.sign(server.url("/plugins/servlet/oauth/request-token"), "POST")
        r = requests.post(server.connect_url("/plugins/servlet/oauth/request-token"),
                          headers=headers, timeout=10)
        assert r.status_code == 503 and "was removed" in r.text, r.text
        deadline = time.monotonic() + 10
        while not stops and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stops and "was removed after this process opened it" in stops[0]
        assert server.app.state.fatal == stops[0]
    store.close()


def test_serve_exits_with_an_error_when_its_store_is_replaced(cli: Cli, tmp_path: Path) -> None:
    """The whole program: `serve` stops with exit 1 and says why (no restart needed to
    notice; the check runs every second)."""
    import socket
    import subprocess
    import sys

    from tests.cli_support import REPO, new_sqlite_store

    cli("info", "show")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui_oauth", "--db", cli.db_url or "", "serve", "--listen",
         f"127.0.0.1:{port}"], cwd=REPO, env=cli.env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # serving (it listens a moment before)
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/rest/ping")
                if conn.getresponse().status == 200:
                    break
            time.sleep(0.1)
        path = Path((cli.db_url or "").removeprefix("sqlite:///"))
        new_sqlite_store(f"sqlite:///{tmp_path / 'other.db'}")
        (tmp_path / "other.db").replace(path)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    assert "was replaced by another file" in err and "The server stopped" in err
    assert "Traceback" not in err


def test_a_database_made_again_under_the_server_is_noticed(store: object) -> None:
    """PostgreSQL (and SQLite alike): the store id no longer matches -> StoreGoneError."""
    from sqlalchemy import text

    from tui_oauth.core.errors import StoreGoneError
    from tui_oauth.core.store import Store

    assert isinstance(store, Store)
    store.check_identity(deep=True)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE store_meta SET value = 'another' WHERE key = 'store_id'"))
    with pytest.raises(StoreGoneError, match="no longer the store this process opened"):
        store.check_identity(deep=True)


def test_doctor_says_how_much_is_free_and_db_vacuum_gives_it_back(cli: Cli) -> None:
    cli("consumers", "add", "--key", "k", "--name", "K", "--secret-stdin", input="s\n")
    path = Path((cli.db_url or "").removeprefix("sqlite:///"))
    consumer_id = cli.query("SELECT id FROM consumers WHERE key = 'k'")[0][0]
    fill_expired_tokens(path, consumer_id, 20_000)
    assert cli("tokens", "purge", "--json").json()["tokens"] == 20_000
    size = {c["name"]: c for c in cli("doctor", "--json").json()["checks"]}["database size"]
    free = float(size["message"].split(" of which ")[1].split(" MiB")[0])
    assert free > 1.0, size  # the purge freed pages inside the file
    before = path.stat().st_size
    out = cli("db", "vacuum").stdout
    assert out.startswith("Vacuumed sqlite:///") and " -> " in out
    assert path.stat().st_size < before / 2
    size = {c["name"]: c for c in cli("doctor", "--json").json()["checks"]}["database size"]
    assert " of which 0.0 MiB free" in size["message"]
    assert cli("--read-only", "db", "vacuum", rc=1).stderr.startswith("error: db vacuum")
