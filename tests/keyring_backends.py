"""Keyring backends for tests.

Importing a KeyringBackend subclass makes it a candidate for keyring's
auto-selection, so every backend here has a ``priority`` that raises: keyring
never picks one by itself, only an explicit ``keyring.set_keyring(...)`` or
``SecretStore(..., backend=...)`` installs it.

Usage from other tests::

    from tests.keyring_backends import FailingKeyring, MemoryKeyring

    store = SecretStore("ns", backend=MemoryKeyring())
    broken = SecretStore("ns", backend=FailingKeyring(MemoryKeyring(), fail_on={"set"}))

or the ``installed_memory_keyring`` fixture below (import it into a test module or list
this module in ``pytest_plugins``), which installs a MemoryKeyring as keyring's
global backend for one test and restores the previous one afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

import keyring
import keyring.core
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.compat import properties

__all__ = ["OPERATIONS", "FailingKeyring", "MemoryKeyring", "installed_memory_keyring"]

#: Operations FailingKeyring can be told to fail.
OPERATIONS = frozenset({"get", "set", "delete", "names"})


class MemoryKeyring(KeyringBackend):
    """A dict-backed keyring that also enumerates names (``names(service)``).

    ``calls`` records ``(operation, service, username)`` for every call, so a
    test can assert that listing names never read a secret.
    """

    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError(
            "MemoryKeyring is a test backend; install it explicitly with keyring.set_keyring()"
        )

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring: no hints
        self.items: dict[tuple[str, str], str] = {}
        self.calls: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()

    def get_password(self, service: str, username: str) -> str | None:
        with self._lock:
            self.calls.append(("get", service, username))
            return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._lock:
            self.calls.append(("set", service, username))
            self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        with self._lock:
            self.calls.append(("delete", service, username))
            try:
                del self.items[(service, username)]
            except KeyError:
                raise keyring.errors.PasswordDeleteError("No such password!") from None

    def names(self, service: str) -> list[str]:
        with self._lock:
            self.calls.append(("names", service, None))
            return sorted(u for (s, u) in self.items if s == service)

    def operations(self) -> list[str]:
        """Just the operation names of ``calls``, e.g. ``["set", "names"]``."""
        return [op for op, _, _ in self.calls]


class FailingKeyring(KeyringBackend):
    """Wraps another backend and fails (or hangs) on chosen operations.

    ``fail_on`` is a subset of ``{"get", "set", "delete", "names"}``.  A failing
    set raises ``PasswordSetError``, delete ``PasswordDeleteError``, get
    ``KeyringError`` and names ``KeyringError``.  With ``hang=True`` those
    operations block instead until :meth:`release` is called (a test fixture
    should call it so stuck threads end).  With ``echo_value=True`` a failing
    set puts the password into its error message, like a careless backend, to
    check that callers never show it.
    """

    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError(
            "FailingKeyring is a test backend; install it explicitly with keyring.set_keyring()"
        )

    def __init__(
        self,
        inner: KeyringBackend | None = None,
        fail_on: Iterable[str] = ("get", "set", "delete"),
        hang: bool = False,
        echo_value: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring: no hints
        self.inner = inner if inner is not None else MemoryKeyring()
        self.fail_on = frozenset(fail_on)
        unknown = self.fail_on - OPERATIONS
        if unknown:
            raise ValueError(f"unknown operations {sorted(unknown)}; use {sorted(OPERATIONS)}")
        self.hang = hang
        self.echo_value = echo_value
        self.failures: list[str] = []
        self._released = threading.Event()

    def release(self) -> None:
        """Let hung calls return (they then fail as if hang were False)."""
        self._released.set()

    def _maybe_fail(self, op: str, error: Exception) -> None:
        if op not in self.fail_on:
            return
        self.failures.append(op)
        if self.hang:
            self._released.wait()
        raise error

    def get_password(self, service: str, username: str) -> str | None:
        self._maybe_fail("get", keyring.errors.KeyringError("simulated failure reading"))
        return self.inner.get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        detail = f" {password!r}" if self.echo_value else ""
        self._maybe_fail("set", keyring.errors.PasswordSetError(
            f"simulated failure storing{detail}"))
        self.inner.set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        self._maybe_fail("delete", keyring.errors.PasswordDeleteError(
            "simulated failure deleting"))
        self.inner.delete_password(service, username)

    def names(self, service: str) -> list[str]:
        self._maybe_fail("names", keyring.errors.KeyringError("simulated failure listing"))
        names = getattr(self.inner, "names", None)
        if names is None:
            raise NotImplementedError("the inner backend cannot enumerate names")
        return list(names(service))


@pytest.fixture
def installed_memory_keyring() -> Iterator[MemoryKeyring]:
    """Install a fresh MemoryKeyring as keyring's global backend for one test."""
    previous = keyring.core._keyring_backend
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.core._keyring_backend = previous
