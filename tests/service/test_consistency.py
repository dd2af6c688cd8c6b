"""Database and keyring stay consistent when either fails half-way.

Every case checks both sides afterwards: the rows of every table (and the audit
log) are exactly as before, and so are the keyring items of the store.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from tests.helpers import (
    HTTPS,
    add_held_tokens,
    add_tokens,
    db_state,
    keyring_items,
    pem_spki,
    rsa_key,
)
from tests.keyring_backends import FailingKeyring, MemoryKeyring
from tui_oauth.core.errors import ConflictError, SecretStoreError, StoreError
from tui_oauth.core.models import consumer_secret_item, private_key_item
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store, open_store

Action = Callable[[Store], Any]

ACTIONS: dict[str, Action] = {
    "consumer.add": lambda s: services(s).consumers.add(
        key="c2", name="C2", shared_secret="c2-new-secret", signature_method="HMAC-SHA1"),
    "consumer.edit": lambda s: services(s).consumers.edit("c1", name="renamed",
                                                          shared_secret="c1-new-secret"),
    "consumer.edit-drop-secret": lambda s: services(s).consumers.edit(
        "c1", shared_secret=None, signature_method="RSA-SHA1", public_key=pem_spki(rsa_key(0))),
    "consumer.remove": lambda s: services(s).consumers.remove("c1"),
    "provider.add": lambda s: services(s).providers.add(
        name="p2", consumer_key="k2", shared_secret="p2-new-secret", **HTTPS),
    "provider.edit": lambda s: services(s).providers.edit("p1", name="p1b",
                                                          shared_secret="p1-new-secret"),
    "provider.remove": lambda s: services(s).providers.remove("p1"),
    "info.rotate_key": lambda s: services(s).consumer_info.rotate_key(),
}
WRITES_SECRET = ["consumer.add", "consumer.edit", "provider.add", "provider.edit",
                 "info.rotate_key"]
DELETES_SECRET = ["consumer.edit-drop-secret", "consumer.remove", "provider.remove"]


def seed(store: Store) -> None:
    c = services(store).consumers.add(key="c1", name="C1", shared_secret="c1-secret",
                                      signature_method="HMAC-SHA1")
    add_tokens(store, c.id, request=1, access=2)  # type: ignore[arg-type]
    p = services(store).providers.add(name="p1", consumer_key="k1", shared_secret="p1-secret",
                                      **HTTPS)
    add_held_tokens(store, p.id, 2)  # type: ignore[arg-type]
    services(store).consumer_info.get()


@pytest.fixture
def flaky(db_url: str) -> Iterator[tuple[Store, FailingKeyring]]:
    """A seeded store whose keyring works until the test sets ``fail_on``."""
    keyring = FailingKeyring(MemoryKeyring(), fail_on=())
    store = open_store(db_url, secrets_backend=keyring, keyring_timeout=0.3)
    seed(store)
    yield store, keyring
    keyring.release()  # let any hung keyring thread end
    store.close()


def snapshot(store: Store, keyring: FailingKeyring) -> tuple[Any, dict[str, str]]:
    return db_state(store), keyring_items(store, keyring)


# --- the keyring fails -------------------------------------------------------------

@pytest.mark.parametrize(("fail_on", "action"), [
    *[({"set"}, a) for a in WRITES_SECRET],
    *[({"delete"}, a) for a in DELETES_SECRET],
])
def test_keyring_failure_changes_nothing(flaky: tuple[Store, FailingKeyring],
                                         fail_on: set[str], action: str) -> None:
    _fails_cleanly(flaky, fail_on, action)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_keyring_read_failure_changes_nothing(flaky: tuple[Store, FailingKeyring],
                                              action: str) -> None:
    """A failed read stops the action before it writes anything: the same on either
    engine (the writes' rollbacks above run on both)."""
    _fails_cleanly(flaky, {"get"}, action)


def _fails_cleanly(flaky: tuple[Store, FailingKeyring], fail_on: set[str],
                   action: str) -> None:
    store, keyring = flaky
    before = snapshot(store, keyring)
    keyring.fail_on = frozenset(fail_on)
    with pytest.raises(SecretStoreError):
        ACTIONS[action](store)
    assert keyring.failures, "the keyring was never asked"
    keyring.fail_on = frozenset()
    assert snapshot(store, keyring) == before
    assert services(store).doctor.run().ok


def test_consumer_info_creation_fails_cleanly(db_url: str) -> None:
    keyring = FailingKeyring(MemoryKeyring(), fail_on={"set"})
    with open_store(db_url, secrets_backend=keyring) as store:
        with pytest.raises(SecretStoreError):
            services(store).consumer_info.get()
        assert db_state(store)["consumer_info"] == []
        assert db_state(store)["audit_log"] == []
        assert keyring_items(store, keyring) == {}
        keyring.fail_on = frozenset()
        assert services(store).consumer_info.get().key.startswith("tui-oauth:")


def test_rotate_when_old_key_cannot_be_deleted(flaky: tuple[Store, FailingKeyring],
                                               caplog: pytest.LogCaptureFixture) -> None:
    """The rotation is refused; the new key's item cannot be undone either (same
    broken delete), so it is left as an orphan that doctor finds and removes."""
    store, keyring = flaky
    info = services(store).consumer_info.get()
    db_before, items_before = snapshot(store, keyring)
    keyring.fail_on = frozenset({"delete"})
    with pytest.raises(SecretStoreError) as err:
        services(store).consumer_info.rotate_key()
    assert any("doctor" in note for note in getattr(err.value, "__notes__", []))
    assert "keyring undo failed" in caplog.text
    keyring.fail_on = frozenset()
    assert db_state(store) == db_before
    items = keyring_items(store, keyring)
    assert items[private_key_item(info)] == items_before[private_key_item(info)]
    [orphan] = set(items) - set(items_before)
    assert services(store).doctor.run().secrets_without_row == [orphan]
    assert services(store).doctor.remove_orphan_secrets() == [orphan]
    assert keyring_items(store, keyring) == items_before


# --- the database fails at commit, after the keyring was written -----------------------

@contextmanager
def commit_fails_once(error: Exception) -> Iterator[list[int]]:
    session_cls = Session  # the store's sessions
    original = session_cls.commit
    calls: list[int] = []

    def commit(self: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise error
        original(self)

    session_cls.commit = commit  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        session_cls.commit = original  # type: ignore[method-assign]


def operational_error() -> OperationalError:
    return OperationalError("COMMIT", {}, Exception("disk I/O error"))


@pytest.mark.parametrize("action", list(ACTIONS))
def test_commit_failure_undoes_keyring_writes(flaky: tuple[Store, FailingKeyring],
                                              action: str) -> None:
    store, keyring = flaky
    before = snapshot(store, keyring)
    with commit_fails_once(operational_error()) as calls, pytest.raises(StoreError) as err:
        ACTIONS[action](store)
    assert calls, "commit was never reached"
    assert "disk I/O error" in str(err.value)
    ops = keyring.inner.operations()  # type: ignore[attr-defined]
    assert "set" in ops or "delete" in ops
    assert snapshot(store, keyring) == before
    assert services(store).doctor.run().ok


def test_concurrent_duplicate_at_commit_is_a_conflict(
        flaky: tuple[Store, FailingKeyring]) -> None:
    store, keyring = flaky
    before = snapshot(store, keyring)
    duplicate = IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed: consumers.key"))
    with commit_fails_once(duplicate), pytest.raises(ConflictError) as err:
        ACTIONS["consumer.add"](store)
    assert err.value.field == "key"
    assert snapshot(store, keyring) == before


# --- the keyring hangs ----------------------------------------------------------------

@pytest.mark.parametrize(("op", "action"), [
    *[("set", a) for a in WRITES_SECRET],
    *[("delete", a) for a in DELETES_SECRET],
    ("get", "consumer.add"),
])
def test_hanging_keyring_times_out_and_changes_nothing(
        flaky: tuple[Store, FailingKeyring], db_url: str, op: str, action: str) -> None:
    store, keyring = flaky
    before = snapshot(store, keyring)
    keyring.fail_on, keyring.hang = frozenset({op}), True
    started = time.monotonic()
    with pytest.raises(SecretStoreError, match="did not answer"):
        ACTIONS[action](store)
    assert time.monotonic() - started < 3
    assert snapshot(store, keyring) == before
    # Still hung: the next keyring call fails at once instead of piling up threads.
    started = time.monotonic()
    with pytest.raises(SecretStoreError, match="not answered"):
        ACTIONS[action](store)
    assert time.monotonic() - started < 1

    # No lock is left behind: another process (here a second store) can change the rows.
    with open_store(db_url, secrets_backend=keyring.inner, keyring_timeout=5) as other:
        services(other).consumers.edit("c1", description="still editable")
        services(other).providers.edit("p1", description="still editable")
    # Once the keyring answers (with an error), nothing was written late either.
    keyring.release()
    time.sleep(0.1)
    assert keyring_items(store, keyring) == before[1]


# --- two stores race ------------------------------------------------------------------

class SlowKeyring(MemoryKeyring):
    """Holds each write for a while, so a competing transaction overlaps ours."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = threading.Event()

    def set_password(self, service: str, username: str, password: str) -> None:
        self.writing.set()
        time.sleep(0.3)
        super().set_password(service, username, password)


def race(db_url: str, keyring: SlowKeyring, action: Callable[[Store], Any]) -> list[Any]:
    """Run ``action`` on two stores, the second starting once the first writes a secret."""
    results: list[Any] = [None, None]
    stores = [open_store(db_url, secrets_backend=keyring) for _ in range(2)]

    def run(i: int) -> None:
        try:
            results[i] = action(stores[i])
        except Exception as exc:
            results[i] = exc

    first = threading.Thread(target=run, args=(0,))
    first.start()
    assert keyring.writing.wait(10)
    second = threading.Thread(target=run, args=(1,))
    second.start()
    first.join(30)
    second.join(30)
    for s in stores:
        s.close()
    return results


def test_concurrent_duplicate_add(db_url: str) -> None:
    keyring = SlowKeyring()
    results = race(db_url, keyring, lambda s: services(s).consumers.add(
        key="dup", name="Dup", shared_secret=f"secret-{uuid.uuid4()}",
        signature_method="HMAC-SHA1"))
    winner, loser = results
    assert isinstance(loser, ConflictError) and loser.field == "key", loser
    with open_store(db_url, secrets_backend=keyring) as store:
        assert [c.key for c in services(store).consumers.list()] == ["dup"]
        assert services(store).consumers.get("dup").uid == winner.uid
        assert store.secrets.list_names() == [consumer_secret_item(winner)]
        assert services(store).doctor.run().ok
        assert len(services(store).audit.list().entries) == 1


def test_concurrent_consumer_info_creation(db_url: str) -> None:
    keyring = SlowKeyring()
    first, second = race(db_url, keyring, lambda s: services(s).consumer_info.get())
    assert not isinstance(second, Exception), second
    assert (first.key, first.public_key) == (second.key, second.public_key)
    with open_store(db_url, secrets_backend=keyring) as store:
        assert store.secrets.list_names() == [private_key_item(first)]
        assert [e.action for e in services(store).audit.list().entries] == ["consumer_info.create"]
