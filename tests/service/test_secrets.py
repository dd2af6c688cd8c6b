"""SecretStore: unit tests on in-memory backends, then the real Secret Service.

The ``secret_service`` tests run when TUI_OAUTH_TEST_SERVICES=1 (``make test``
runs pytest inside an unlocked gnome-keyring session); by hand they skip.  With
the variable set, a missing or different backend fails them.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import keyring.core
import keyring.errors
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null
from keyring.compat import properties
from keyring.testing.backend import BackendBasicTests

from tests.keyring_backends import FailingKeyring, MemoryKeyring
from tui_oauth.core.errors import SecretStoreError
from tui_oauth.core.keyring.store import SecretStore, validate_name

REPO = Path(__file__).resolve().parents[2]
SERVICES_REQUIRED = os.environ.get("TUI_OAUTH_TEST_SERVICES") == "1"
NAME = "consumer/7f3c0a9e/shared-secret"
VALUE = "s3cr3t-Vä1ue-never-shown"


@pytest.fixture
def mem() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
def store(mem: MemoryKeyring) -> SecretStore:
    return SecretStore("ns-a", backend=mem)


@pytest.fixture
def global_keyring() -> Iterator[None]:
    """Restore keyring's global backend (and its chainer limit) after the test."""
    import keyring.backend as kb

    previous, limit = keyring.core._keyring_backend, kb._limit
    try:
        yield
    finally:
        keyring.core._keyring_backend = previous
        kb._limit = limit


# ---------------------------------------------------------------- basic behaviour


def test_round_trip_overwrite_delete(store: SecretStore, mem: MemoryKeyring) -> None:
    assert store.get(NAME) is None
    store.set(NAME, VALUE)
    assert store.get(NAME) == VALUE
    assert mem.items == {("tui-oauth/ns-a", NAME): VALUE}
    store.set(NAME, "second")
    assert store.get(NAME) == "second"
    assert store.delete(NAME) is True
    assert store.get(NAME) is None
    assert store.delete(NAME) is False  # absent: no error


def test_service_name_and_backend_name(store: SecretStore) -> None:
    assert store.service_name == "tui-oauth/ns-a"
    assert store.backend_name == "tests.keyring_backends.MemoryKeyring"
    store.check()


def test_namespaces_never_see_each_other(mem: MemoryKeyring) -> None:
    a, b = SecretStore("db-a", backend=mem), SecretStore("db-b", backend=mem)
    a.set(NAME, "from-a")
    b.set("consumer/other/shared-secret", "from-b")
    assert b.get(NAME) is None
    assert b.delete(NAME) is False
    assert a.get(NAME) == "from-a"
    assert a.list_names() == [NAME]
    assert b.list_names() == ["consumer/other/shared-secret"]
    # A namespace that is a prefix of another one is still separate.
    c = SecretStore("db", backend=mem)
    assert c.list_names() == []


def test_list_names_does_not_read_secrets(store: SecretStore, mem: MemoryKeyring) -> None:
    names = [f"consumer/{i}/shared-secret" for i in range(5)]
    for n in reversed(names):
        store.set(n, f"value-{n}")
    mem.calls.clear()
    assert store.list_names() == sorted(names)
    assert mem.operations() == ["names"]


class _TestBackend(KeyringBackend):
    """A backend made for one test: keyring's resolution never picks it (its priority
    raises, so it is not viable), only a SecretStore it is handed to uses it."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring: no hints

    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError("test backend")


def test_list_names_none_when_backend_cannot_enumerate() -> None:
    class NoEnum(_TestBackend):
        def get_password(self, service: str, username: str) -> str | None:
            return None

        def set_password(self, service: str, username: str, password: str) -> None:
            pass

        def delete_password(self, service: str, username: str) -> None:
            raise keyring.errors.PasswordDeleteError("nothing")

    assert SecretStore("ns", backend=NoEnum()).list_names() is None
    # A wrapper whose inner backend cannot enumerate says so too.
    assert SecretStore("ns", backend=FailingKeyring(NoEnum(), fail_on=())).list_names() is None


@settings(max_examples=60, deadline=None)
@given(
    name=st.text(
        st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp")),
        min_size=1, max_size=200,
    ).filter(lambda s: s.isprintable() and not any(c.isspace() for c in s)),
    value=st.text(max_size=300),
)
def test_round_trip_property(name: str, value: str) -> None:
    mem = MemoryKeyring()
    s = SecretStore("prop", backend=mem)
    s.set(name, value)
    assert s.get(name) == value
    assert s.list_names() == [name]
    assert s.delete(name) is True
    assert s.list_names() == []


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "bad", ["", " ", "a b", "a\tb", "trailing\n", "nul\x00", "bell\x07", "x" * 201, "nbsp\u00a0x",
            None, 42, b"bytes"],
)
def test_bad_names_are_programmer_errors(store: SecretStore, mem: MemoryKeyring,
                                         bad: object) -> None:
    for call in (lambda: store.get(bad),  # type: ignore[arg-type]
                 lambda: store.set(bad, "v"),  # type: ignore[arg-type]
                 lambda: store.delete(bad)):  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            call()
    assert mem.calls == []  # rejected before touching the keyring


def test_good_names(store: SecretStore) -> None:
    for name in ["x", "x" * 200, "consumer/7f3c/rsa-private-key", "token/ä€/secret"]:
        assert validate_name(name) == name
        store.set(name, "v")
        assert store.get(name) == "v"


@pytest.mark.parametrize("bad", ["", "a b", "a/b", "x" * 201])
def test_bad_namespace(bad: str) -> None:
    with pytest.raises(ValueError):
        SecretStore(bad, backend=MemoryKeyring())


def test_value_must_be_str(store: SecretStore) -> None:
    with pytest.raises(TypeError):
        store.set(NAME, b"bytes")  # type: ignore[arg-type]


def test_repr_never_shows_secret(store: SecretStore) -> None:
    store.set(NAME, VALUE)
    assert VALUE not in repr(store)
    assert "ns-a" in repr(store)


def test_nothing_logged(store: SecretStore, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        store.set(NAME, VALUE)
        store.get(NAME)
        store.list_names()
        store.delete(NAME)
    assert VALUE not in caplog.text


# ---------------------------------------------------------------- failures and time limits


def _full_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def test_set_failure_never_shows_value() -> None:
    bad = FailingKeyring(MemoryKeyring(), fail_on={"set"}, echo_value=True)
    s = SecretStore("ns", backend=bad)
    with pytest.raises(SecretStoreError) as info:
        s.set(NAME, VALUE)
    err = info.value
    assert NAME in err.message and "storing" in err.message
    assert "PasswordSetError" in err.message
    assert VALUE not in _full_text(err)
    assert err.hint
    assert bad.failures == ["set"]


def test_set_failure_keeps_cause_when_it_is_harmless() -> None:
    s = SecretStore("ns", backend=FailingKeyring(fail_on={"set"}))
    with pytest.raises(SecretStoreError) as info:
        s.set(NAME, VALUE)
    assert isinstance(info.value.__cause__, keyring.errors.PasswordSetError)


def test_get_failure() -> None:
    s = SecretStore("ns", backend=FailingKeyring(fail_on={"get"}))
    with pytest.raises(SecretStoreError, match="reading"):
        s.get(NAME)
    with pytest.raises(SecretStoreError):
        s.check()  # the probe read fails too


def test_delete_failure_is_not_reported_as_absent() -> None:
    inner = MemoryKeyring()
    bad = FailingKeyring(inner, fail_on={"delete"})
    s = SecretStore("ns", backend=bad)
    s.set(NAME, VALUE)
    with pytest.raises(SecretStoreError, match="deleting"):
        s.delete(NAME)
    assert inner.items  # still there
    # Absent item with a failing delete: nothing to delete, so False.
    assert s.delete("consumer/none/shared-secret") is False


def test_delete_failure_when_presence_cannot_be_checked() -> None:
    bad = FailingKeyring(MemoryKeyring(), fail_on={"delete", "names", "get"})
    s = SecretStore("ns", backend=bad)
    with pytest.raises(SecretStoreError):
        s.delete(NAME)


def test_names_failure() -> None:
    s = SecretStore("ns", backend=FailingKeyring(fail_on={"names"}))
    with pytest.raises(SecretStoreError, match="listing"):
        s.list_names()


class _Raising(_TestBackend):
    error: BaseException = RuntimeError("x")

    def get_password(self, service: str, username: str) -> str | None:
        raise self.error

    set_password = delete_password = get_password  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (keyring.errors.KeyringLocked("Failed to unlock the collection!"), "locked"),
        (keyring.errors.NoKeyringError("no backend"), "No usable OS keyring"),
        (ConnectionRefusedError(111, "Connection refused"), "Lost the connection"),
        (keyring.errors.InitError("Failed to create the collection"), "refused"),
        (ValueError("odd"), "failed"),
    ],
)
def test_backend_errors_become_secret_store_errors(error: Exception, expected: str) -> None:
    backend = _Raising()
    backend.error = error
    s = SecretStore("ns", backend=backend)
    with pytest.raises(SecretStoreError, match=expected) as info:
        s.get(NAME)
    assert info.value.hint


def test_secretstorage_errors_are_mapped() -> None:
    import secretstorage.exceptions as ss

    backend = _Raising()
    backend.error = ss.SecretServiceNotAvailableException("Environment variable "
                                                           "DBUS_SESSION_BUS_ADDRESS is unset")
    with pytest.raises(SecretStoreError, match="Secret Service is not available"):
        SecretStore("ns", backend=backend).get(NAME)
    backend.error = ss.LockedException("Item is locked!")
    with pytest.raises(SecretStoreError, match="locked"):
        SecretStore("ns", backend=backend).get(NAME)


def test_hanging_backend_times_out() -> None:
    hung = FailingKeyring(MemoryKeyring(), fail_on={"set", "get"}, hang=True)
    s = SecretStore("ns", backend=hung, timeout=0.3)
    try:
        t0 = time.monotonic()
        with pytest.raises(SecretStoreError, match=r"did not answer within 0\.3 s") as info:
            s.set(NAME, VALUE)
        elapsed = time.monotonic() - t0
        assert 0.25 <= elapsed < 1.5
        assert VALUE not in _full_text(info.value)
        assert "HOME" in (info.value.hint or "")
        # While the first call is still stuck, later calls fail at once.
        t0 = time.monotonic()
        with pytest.raises(SecretStoreError, match="still not answered"):
            s.get(NAME)
        assert time.monotonic() - t0 < 0.1
    finally:
        hung.release()
    # Once the stuck call has ended, the store works again (this get fails normally).
    deadline = time.monotonic() + 2
    while s._stuck is not None and s._stuck.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(SecretStoreError, match="simulated failure reading"):
        s.get(NAME)


def test_hanging_resolution_times_out(global_keyring: None) -> None:
    hung = FailingKeyring(MemoryKeyring(), fail_on={"get"}, hang=True)
    keyring.set_keyring(hung)
    s = SecretStore("ns", timeout=0.3)
    try:
        t0 = time.monotonic()
        with pytest.raises(SecretStoreError, match="did not answer"):
            s.check()
        assert time.monotonic() - t0 < 1.5
    finally:
        hung.release()


def test_hung_keyring_does_not_hold_up_interpreter_exit() -> None:
    code = textwrap.dedent(
        f"""
        import time
        from tests.keyring_backends import FailingKeyring
        from tui_oauth.core.keyring.store import SecretStore
        s = SecretStore("ns", backend=FailingKeyring(fail_on={{"get"}}, hang=True), timeout=0.2)
        try:
            s.get({NAME!r})
        except Exception as e:
            print(type(e).__name__)
        """
    )
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SecretStoreError"
    assert time.monotonic() - t0 < 10


# ---------------------------------------------------------------- backend resolution


class _FakePlaintext(KeyringBackend):
    """Looks like keyrings.alt's PlaintextKeyring (priority 0.5)."""

    enabled = False

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring: no hints

    @properties.classproperty
    def priority(cls) -> float:
        if not cls.enabled:
            raise RuntimeError("disabled outside its test")
        return 0.5

    def get_password(self, service: str, username: str) -> str | None:
        raise AssertionError("a refused backend must never be used")

    set_password = delete_password = get_password  # type: ignore[assignment]


_FakePlaintext.__module__ = "keyrings.alt.file"
_FakePlaintext.__qualname__ = _FakePlaintext.__name__ = "PlaintextKeyring"


class _FakeCryptfile(_FakePlaintext):
    @properties.classproperty
    def priority(cls) -> float:
        if not cls.enabled:
            raise RuntimeError("disabled outside its test")
        return 2.5


_FakeCryptfile.__module__ = "keyrings.cryptfile.cryptfile"
_FakeCryptfile.__qualname__ = _FakeCryptfile.__name__ = "CryptFileKeyring"


class _LowPriority(_FakePlaintext):
    pass


_LowPriority.__module__ = __name__
_LowPriority.__qualname__ = _LowPriority.__name__ = "LowPriority"


class _StrongMemory(MemoryKeyring):
    enabled = False

    @properties.classproperty
    def priority(cls) -> float:
        if not cls.enabled:
            raise RuntimeError("disabled outside its test")
        return 5


@pytest.fixture
def fakes_enabled() -> Iterator[None]:
    _FakePlaintext.enabled = _StrongMemory.enabled = True
    try:
        yield
    finally:
        _FakePlaintext.enabled = _StrongMemory.enabled = False


def test_refuses_fail_backend_without_bus(global_keyring: None,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    keyring.set_keyring(fail.Keyring())
    s = SecretStore("ns")  # lazy: nothing happens yet
    with pytest.raises(SecretStoreError) as info:
        s.check()
    err = info.value
    assert "keyring.backends.fail.Keyring" in err.message
    assert "no D-Bus session bus" in err.message
    assert "dbus-run-session" in (err.hint or "")
    with pytest.raises(SecretStoreError):
        s.get(NAME)
    assert s.backend_name == "keyring.backends.fail.Keyring (refused)"


def test_refuses_fail_backend_with_a_bus_but_no_service(
    global_keyring: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/no-such-bus")
    keyring.set_keyring(fail.Keyring())
    with pytest.raises(SecretStoreError, match="no Secret Service answers") as info:
        SecretStore("ns").check()
    assert "gnome-keyring" in (info.value.hint or "")


def test_refuses_null_backend(global_keyring: None) -> None:
    keyring.set_keyring(null.Keyring())
    with pytest.raises(SecretStoreError, match=r"keyring\.backends\.null\.Keyring stores nothing"):
        SecretStore("ns").set(NAME, VALUE)


@pytest.mark.parametrize(
    ("cls", "expected"),
    [(_FakePlaintext, "keyrings.alt"), (_FakeCryptfile, "keyrings.cryptfile"),
     (_LowPriority, "priority 0.5")],
)
def test_refuses_weak_backends(global_keyring: None, fakes_enabled: None,
                               cls: type[KeyringBackend], expected: str) -> None:
    keyring.set_keyring(cls())
    with pytest.raises(SecretStoreError, match=expected) as info:
        SecretStore("ns").get(NAME)
    assert f"{cls.__module__}.{cls.__qualname__}" in info.value.message
    assert "PYTHON_KEYRING_BACKEND" in (info.value.hint or "")


@pytest.fixture
def chain() -> Iterator[Callable[[list[KeyringBackend]], None]]:
    """Set the members of keyring's ChainerBackend for one test.

    ``backends`` is a classproperty: monkeypatch would "restore" the list it
    computed, not the descriptor, so save and restore the descriptor itself.
    """
    descriptor = chainer.ChainerBackend.__dict__["backends"]

    def set_members(members: list[KeyringBackend]) -> None:
        type.__setattr__(chainer.ChainerBackend, "backends", members)

    try:
        yield set_members
    finally:
        type.__setattr__(chainer.ChainerBackend, "backends", descriptor)


def test_chainer_is_unwrapped_to_its_strong_member(
    global_keyring: None, fakes_enabled: None, chain: Callable[[list[KeyringBackend]], None]
) -> None:
    strong, weak = _StrongMemory(), _FakePlaintext()
    chain([strong, weak])
    keyring.set_keyring(chainer.ChainerBackend())
    s = SecretStore("ns")
    s.set(NAME, VALUE)  # _FakePlaintext would raise AssertionError if used
    assert s.get(NAME) == VALUE
    assert s.delete("consumer/absent/x") is False
    assert strong.items
    assert s.backend_name.endswith("_StrongMemory")


def test_chainer_of_weak_backends_is_refused(
    global_keyring: None, fakes_enabled: None, chain: Callable[[list[KeyringBackend]], None]
) -> None:
    chain([_FakePlaintext(), _LowPriority()])
    keyring.set_keyring(chainer.ChainerBackend())
    with pytest.raises(SecretStoreError, match="No acceptable backend in keyring's chain"):
        SecretStore("ns").check()


def test_test_backends_never_leak_into_detection(global_keyring: None) -> None:
    """After the tests above, keyring's own detection must not see any fake backend."""
    import keyring.backend as kb

    keyring.core._keyring_backend = None
    kb._limit = None
    assert isinstance(chainer.ChainerBackend.__dict__["backends"], properties.classproperty)
    for backend in [*kb.get_all_keyring(), *chainer.ChainerBackend.backends]:
        assert not type(backend).__module__.startswith(("tests.", "keyrings."))
    keyring.get_keyring()  # does not raise


def test_explicitly_installed_test_backend_is_trusted(global_keyring: None) -> None:
    mem = MemoryKeyring()
    keyring.set_keyring(mem)  # priority raises: only set_keyring can install it
    s = SecretStore("ns")
    s.set(NAME, VALUE)
    assert mem.items == {("tui-oauth/ns", NAME): VALUE}


def test_explicit_backend_argument_is_trusted_as_given() -> None:
    s = SecretStore("ns", backend=null.Keyring())
    s.check()
    assert s.get(NAME) is None


def test_backend_from_env_that_is_not_viable(global_keyring: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    keyring.core._keyring_backend = None
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.keyring_backends.MemoryKeyring")
    with pytest.raises(SecretStoreError, match="cannot be used"):
        SecretStore("ns").check()


def test_null_backend_from_env(global_keyring: None, monkeypatch: pytest.MonkeyPatch) -> None:
    keyring.core._keyring_backend = None
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    with pytest.raises(SecretStoreError, match="stores nothing"):
        SecretStore("ns").check()


def test_resolution_is_cached(global_keyring: None) -> None:
    mem = MemoryKeyring()
    keyring.set_keyring(mem)
    s = SecretStore("ns")
    s.set(NAME, "1")
    keyring.set_keyring(null.Keyring())  # later changes do not affect a resolved store
    assert s.get(NAME) == "1"


# ---------------------------------------------------------------- conformance


class TestMemoryKeyringConformance(BackendBasicTests):
    """keyring's own suite against the in-memory test backend."""

    def init_keyring(self) -> KeyringBackend:
        return MemoryKeyring()


# ---------------------------------------------------------------- the real Secret Service

@pytest.fixture
def real_store(global_keyring: None) -> Iterator[SecretStore]:
    """A store on keyring's own choice of backend, which must be the Secret Service."""
    keyring.core._keyring_backend = None  # detect afresh, as the app does
    s = SecretStore(f"test-{uuid.uuid4()}")
    s.check()
    if not s.backend_name.startswith("SecretService"):
        pytest.fail(f"expected the Secret Service under make test, got {s.backend_name}")
    yield s
    for name in s.list_names() or []:
        s.delete(name)
    assert s.list_names() == []


@pytest.mark.secret_service
@pytest.mark.skipif(not SERVICES_REQUIRED, reason="TUI_OAUTH_TEST_SERVICES is not set")
def test_real_round_trip(real_store: SecretStore) -> None:
    assert real_store.backend_name == "SecretService (gnome-keyring)"
    assert real_store.get(NAME) is None
    real_store.set(NAME, VALUE)
    assert real_store.get(NAME) == VALUE
    real_store.set(NAME, "second")
    assert real_store.get(NAME) == "second"
    assert real_store.list_names() == [NAME]  # replaced, not duplicated
    assert real_store.delete(NAME) is True
    assert real_store.get(NAME) is None
    assert real_store.delete(NAME) is False


@pytest.mark.secret_service
@pytest.mark.skipif(not SERVICES_REQUIRED, reason="TUI_OAUTH_TEST_SERVICES is not set")
def test_real_list_names_reads_no_secret(real_store: SecretStore,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import secretstorage.item

    names = [f"consumer/{i}/shared-secret" for i in range(3)]
    for n in names:
        real_store.set(n, f"v-{n}")

    def no_reading(self: object, *args: object) -> bytes:
        raise AssertionError("list_names read a secret")

    monkeypatch.setattr(secretstorage.item.Item, "get_secret", no_reading)
    assert real_store.list_names() == sorted(names)


@pytest.mark.secret_service
@pytest.mark.skipif(not SERVICES_REQUIRED, reason="TUI_OAUTH_TEST_SERVICES is not set")
def test_real_namespaces_are_isolated(real_store: SecretStore) -> None:
    other = SecretStore(f"test-{uuid.uuid4()}")
    try:
        real_store.set(NAME, "mine")
        assert other.get(NAME) is None
        assert other.list_names() == []
        assert other.delete(NAME) is False
        other.set(NAME, "theirs")
        assert real_store.get(NAME) == "mine"
        assert other.get(NAME) == "theirs"
        assert real_store.list_names() == [NAME]
    finally:
        other.delete(NAME)


@pytest.mark.secret_service
@pytest.mark.skipif(not SERVICES_REQUIRED, reason="TUI_OAUTH_TEST_SERVICES is not set")
class TestSecretServiceConformance(BackendBasicTests):
    """keyring's own conformance suite against the real Secret Service backend."""

    def init_keyring(self) -> KeyringBackend:
        from keyring.backends import SecretService

        backend = SecretService.Keyring()
        # Check here so that a missing service fails (under make test) instead of
        # skipping: the class-level skipif only applies without the variable.
        SecretStore("conformance", backend=backend).check()
        return backend
