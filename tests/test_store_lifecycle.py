"""The store file itself: readers beside writers, a store that vanishes, the WAL.

Issue 7, items 4 to 6: a reader never waits for a writer; a store is created
only on purpose, and a process whose store was removed or replaced under it
stops with a clear error; the SQLite WAL stays bounded while purging.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_support import Cli
from tests.helpers import pem_spki, rsa_key
from tests.keyring_backends import MemoryKeyring
from tui_oauth.core.store import open_store


@pytest.fixture
def writer_holding_the_lock(sqlite_url: str, memory_keyring: MemoryKeyring
                            ) -> Iterator[Path]:
    """A store with one consumer, and another connection in the middle of a write."""
    with open_store(sqlite_url, secrets_backend=memory_keyring) as store:
        store.consumers.add(key="k", name="K", public_key=pem_spki(rsa_key(0)))
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
        assert [c.key for c in store.consumers.list()] == ["k"]
        assert store.consumers.get("k").name == "K"  # the last committed value
        assert store.tokens.list().rows == []
        assert store.audit.list().entries
        store.doctor.expected_secrets()
    # Waiting on the lock would take the whole busy timeout (10 s) and then fail.
    assert time.monotonic() - started < 8


def test_read_only_cli_lists_beside_a_writer(writer_holding_the_lock: Path) -> None:
    cli = Cli(f"sqlite:///{writer_holding_the_lock}")
    out = cli("--read-only", "consumers", "list", "--json", timeout=8).json()
    assert [c["key"] for c in out] == ["k"]
