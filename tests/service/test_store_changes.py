"""The store's change marker (tui_oauth.core.changes), on SQLite and PostgreSQL: a write
by anyone is seen within 2 s, reads (the watcher's own included) are not changes."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session

from tests.helpers import add_tokens, pem_spki, rsa_key
from tests.keyring_backends import MemoryKeyring
from tui_oauth.core.changes import ChangeWatcher
from tui_oauth.core.errors import StoreGoneError
from tui_oauth.core.models import Nonce
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store, open_store

WITHIN = 2.0  # seconds: the console must refresh within this of a change elsewhere


def seen_within(watcher: ChangeWatcher, timeout: float = WITHIN) -> float | None:
    """Seconds until ``poll()`` first says changed, or None if it did not within ``timeout``."""
    t0 = time.monotonic()
    while True:
        if watcher.poll():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(0.02)


def settle(watcher: ChangeWatcher, *writers: Store) -> None:
    """Let the late echo of writes already seen go by.  PostgreSQL: besides its NOTIFY
    (at once), a write reaches the fallback counters (pg_stat_user_tables) when its
    backend flushes its statistics, at the latest as it exits, before it leaves
    pg_stat_activity: end the writers' connections and wait until they have gone.
    SQLite: nothing comes late."""
    for w in writers:
        w.engine.dispose()
    if writers[0].dialect == "postgresql":
        import psycopg

        conninfo = writers[0].engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            deadline = time.monotonic() + WITHIN
            while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname ="
                               " current_database() AND application_name = 'tui-oauth'"
                               ).fetchone() != (0,) and time.monotonic() < deadline:
                time.sleep(0.01)
    watcher.poll()


@pytest.fixture
def watcher(store: Store) -> Iterator[ChangeWatcher]:
    w = store.watch_changes()
    yield w
    w.close()


@pytest.fixture
def other(db_url: str, memory_keyring: MemoryKeyring, store: Store) -> Iterator[Store]:
    """A second store on the same database: another process, as far as the watcher knows."""
    s = open_store(db_url, secrets_backend=memory_keyring)
    yield s
    s.close()


def test_write_by_another_store_is_seen(store: Store, watcher: ChangeWatcher,
                                        other: Store) -> None:
    assert watcher.poll() is False
    services(other).consumers.add(key="jira:1", name="JIRA", public_key=pem_spki(rsa_key(0)))
    elapsed = seen_within(watcher)
    assert elapsed is not None, "a consumer added by another store was not seen within 2 s"
    settle(watcher, other, store)
    assert watcher.poll() is False  # nothing written since


def test_revoking_tokens_elsewhere_is_seen(store: Store, watcher: ChangeWatcher,
                                          other: Store) -> None:
    consumer = services(store).consumers.add(key="jira:1", name="JIRA",
                                             public_key=pem_spki(rsa_key(0)))
    assert consumer.id is not None
    add_tokens(store, consumer.id, access=2)
    assert seen_within(watcher) is not None  # our own pool's writes count too
    token = services(other).tokens.list(consumer_key="jira:1").rows[0]
    assert watcher.poll() is False
    services(other).tokens.revoke(token.token)
    assert seen_within(watcher) is not None, "a token revoked elsewhere was not seen within 2 s"


def test_reads_are_not_changes(store: Store, watcher: ChangeWatcher, other: Store) -> None:
    services(other).consumers.add(key="jira:1", name="JIRA", public_key=pem_spki(rsa_key(0)))
    assert seen_within(watcher) is not None
    settle(watcher, other, store)
    # Reads through both stores, and the watcher's own polls, over more than a
    # statistics flush interval (PostgreSQL): still no change.
    deadline = time.monotonic() + 0.6
    while time.monotonic() < deadline:
        assert services(store).consumers.list()
        assert services(other).consumers.count() == 1
        with other.session() as s:
            s.execute(text("SELECT count(*) FROM tokens")).scalar()
        assert watcher.poll() is False
        time.sleep(0.05)


def test_read_only_store_watches(db_url: str, memory_keyring: MemoryKeyring,
                                 other: Store) -> None:
    with open_store(db_url, secrets_backend=memory_keyring, read_only=True) as ro:
        w = ro.watch_changes()
        try:
            assert w.poll() is False
            services(other).providers.add(name="Confluence", consumer_key="tui-oauth",
                                          request_token_url="https://sp.example.com/oauth/request_token",
                                          authorization_url="https://sp.example.com/oauth/authorize",
                                          access_token_url="https://sp.example.com/oauth/access_token",
                                          shared_secret="s3cret")
            assert seen_within(w) is not None
        finally:
            w.close()


def test_sqlite_file_replaced_is_reported(sqlite_store: Store, tmp_path: Path) -> None:
    w = sqlite_store.watch_changes()
    try:
        assert w.poll() is False
        path = sqlite_store.path
        assert path is not None
        copy = tmp_path / "copy.db"
        shutil.copyfile(path, copy)
        os.replace(copy, path)  # same name, another file: data_version alone would miss it
        with pytest.raises(StoreGoneError):
            w.poll()
    finally:
        w.close()


def test_sqlite_watcher_does_not_create_a_removed_file(sqlite_store: Store) -> None:
    path = sqlite_store.path
    assert path is not None
    path.unlink()
    with pytest.raises(StoreGoneError):
        sqlite_store.watch_changes()
    assert not path.exists()


def test_nonces_alone_are_not_changes(store: Store, watcher: ChangeWatcher) -> None:
    """The provider writes a nonce per request; nothing shows them, so no reload."""
    with Session(store.engine) as s:
        for i in range(3):
            s.add(Nonce(consumer_key="jira:1", timestamp=1_700_000_000 + i, nonce=f"n{i}"))
            s.commit()
    if store.dialect == "sqlite":  # data_version counts every commit to the file
        assert watcher.poll() is True
        return
    settle(watcher, store)  # its statistics flushed: the fallback counters would show it too
    assert watcher.poll() is False


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_writer_without_notify_is_seen(db_url: str, store: Store,
                                                  watcher: ChangeWatcher) -> None:
    """psql or an older tui-oauth sends no NOTIFY: the row counters catch its write once
    its statistics are flushed (within 10 s, or when it disconnects as here)."""
    assert store.dialect == "postgresql"
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(db_url).set(drivername="postgresql").render_as_string(
        hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("UPDATE store_meta SET value = value WHERE key = 'store_id'")
    assert seen_within(watcher) is not None
