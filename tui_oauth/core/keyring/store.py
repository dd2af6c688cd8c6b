"""The secret store: shared secrets and private keys in the OS keyring (never in the database).

One :class:`SecretStore` serves one database: its items live under the keyring
service name ``tui-oauth/<namespace>``, the item ("username" in keyring's terms)
being our own name such as ``consumer/7f3c.../shared-secret``.

Rules this module keeps:

* Weak backends are refused with a message naming the backend, the cause and the
  fix: keyring's ``fail`` and ``null`` backends, the ``keyrings.alt`` file and
  plaintext ones, ``keyrings.cryptfile`` (it asks for its password on the
  terminal and would break the full-screen console) and anything below keyring's
  recommended priority of 1.  A backend passed in explicitly is trusted as given.
* Every backend call runs on a daemon thread with a time limit: a hung
  gnome-keyring (for instance one started without a ``$HOME``) makes
  ``set_password`` block forever, and a daemon thread does not hold up
  interpreter exit the way a ``ThreadPoolExecutor`` worker would.
* A locked Secret Service collection is refused up front instead of letting
  keyring ask for an unlock prompt.
* Secret values are never logged, never put in an error message and never read
  to draw a list (:meth:`SecretStore.list_names` reads attributes only).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from contextlib import closing, suppress
from typing import Any, TypeVar, cast

import keyring
import keyring.backend
import keyring.core
import keyring.errors
from keyring.backends import chainer, fail, null

from tui_oauth.core.errors import SecretStoreError
from tui_oauth.core.keyring.dbus import DEFAULT_COLLECTION, THREAD_NAME, secret_service_provider
from tui_oauth.core.timelimit import call_with_time_limit

__all__ = ["SERVICE_PREFIX", "SecretStore", "validate_name"]

SERVICE_PREFIX = "tui-oauth/"
MAX_NAME_LENGTH = 200
_PROBE_NAME = "tui-oauth/probe"  # read in check(); never written
_SECRET_SERVICE_CLASS = "keyring.backends.SecretService.Keyring"  # noqa: S105 (a class)

T = TypeVar("T")

_PRIVATE_SESSION_HINT = (
    "install gnome-keyring and run tui-oauth again; it starts a private Secret Service "
    "session itself, or run inside `dbus-run-session`."
)
_CHOOSE_BACKEND_HINT = (
    "Use the Secret Service (gnome-keyring, KeePassXC) or the platform keyring "
    "instead: unset PYTHON_KEYRING_BACKEND or set it to "
    f"{_SECRET_SERVICE_CLASS}, and check keyring's config file "
    "(`keyring diagnose` shows where it is)."
)
_LOCKED_HINT = (
    "Unlock it and try again: in a desktop session unlock it with Seahorse "
    "(\"Passwords and Keys\") or log in again; if it is tui-oauth's private keyring "
    "session (over SSH, see `tui-oauth keyring status`), run a tui-oauth command that "
    "needs the keyring, such as `tui-oauth doctor`: it asks for the passphrase and unlocks it."
)


def validate_name(name: object, *, what: str = "secret name") -> str:
    """Check an item name (or namespace); raise ValueError for a programmer error."""
    if not isinstance(name, str):
        raise ValueError(f"{what} must be a str, not {type(name).__name__}")
    if not name:
        raise ValueError(f"{what} must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"{what} is {len(name)} characters long; at most {MAX_NAME_LENGTH}")
    if not name.isprintable() or any(c.isspace() for c in name):
        raise ValueError(f"{what} {name!r} must be printable and contain no whitespace")
    return name


def _class_path(obj: object) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_secret_service(backend: object) -> bool:
    return _class_path(backend) == _SECRET_SERVICE_CLASS


def _home_hint() -> str:
    home = os.environ.get("HOME")
    if not home:
        return "HOME is not set, and gnome-keyring-daemon hangs without it; set HOME."
    if not os.path.isdir(home):
        return (f"HOME ({home}) does not exist, and gnome-keyring-daemon hangs without it; "
                "create it or set HOME to an existing directory.")
    return (f"Check that HOME ({home}) exists and is writable, then restart gnome-keyring-daemon "
            "(tui-oauth's private keyring session: `tui-oauth keyring stop`, then run "
            "tui-oauth again).")


def _no_backend_error(found: str) -> SecretStoreError:
    """Explain why keyring ended up with its ``fail`` backend."""
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        cause = ("there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set), so the "
                 "Secret Service cannot be reached")
        if shutil.which("gnome-keyring-daemon") and shutil.which("dbus-daemon"):
            hint = ("Start tui-oauth from its command line, which starts a private Secret "
                    "Service session itself, or run it inside `dbus-run-session`.")
        else:
            hint = (f"Install gnome-keyring and dbus (apt install gnome-keyring dbus); then "
                    f"{_PRIVATE_SESSION_HINT}")
    else:
        cause = "no Secret Service answers on the D-Bus session bus"
        try:
            from keyring.backends import SecretService

            SecretService.Keyring.priority  # noqa: B018  (raises with the reason)
        except Exception as exc:
            cause = f"{cause} ({exc})"
        hint = ("Install gnome-keyring (apt install gnome-keyring) or enable the Secret "
                "Service integration of KeePassXC, then try again.")
    return SecretStoreError(
        f"No usable OS keyring: keyring fell back to {found} because {cause}.", hint=hint
    )


def _weakness(backend: keyring.backend.KeyringBackend) -> SecretStoreError | None:
    """Return the refusal for a weak backend, or None when it is acceptable."""
    path = _class_path(backend)
    if isinstance(backend, fail.Keyring):
        return _no_backend_error(path)
    if isinstance(backend, null.Keyring):
        return SecretStoreError(
            f"The keyring backend {path} stores nothing (keyring was disabled, for example "
            "with `keyring --disable`).",
            hint=_CHOOSE_BACKEND_HINT,
        )
    module = type(backend).__module__
    if module == "keyrings.alt" or module.startswith("keyrings.alt."):
        return SecretStoreError(
            f"The keyring backend {path} (from keyrings.alt) keeps secrets in a file that is "
            "not protected by the OS; tui-oauth refuses it.",
            hint=f"Uninstall keyrings.alt or choose another backend. {_CHOOSE_BACKEND_HINT}",
        )
    if module == "keyrings.cryptfile" or module.startswith("keyrings.cryptfile."):
        return SecretStoreError(
            f"The keyring backend {path} (from keyrings.cryptfile) asks for its password on "
            "the terminal, which breaks the full-screen console; tui-oauth refuses it.",
            hint=f"Uninstall keyrings.cryptfile or choose another backend. {_CHOOSE_BACKEND_HINT}",
        )
    try:
        priority = type(backend).priority
    except Exception:
        # keyring's own loaders (auto-detection, PYTHON_KEYRING_BACKEND, keyringrc.cfg)
        # evaluate priority first and never hand out a backend whose priority raises,
        # so such a backend was installed on purpose with keyring.set_keyring().
        return None
    if not keyring.core.recommended(backend):
        return SecretStoreError(
            f"The keyring backend {path} has priority {priority:g}, below keyring's "
            "recommended minimum of 1: it is not a secure store; tui-oauth refuses it.",
            hint=_CHOOSE_BACKEND_HINT,
        )
    return None


def _pick_backend(found: keyring.backend.KeyringBackend) -> keyring.backend.KeyringBackend:
    """Validate keyring's choice; unwrap the chainer to its strongest member.

    The chainer reads from every backend in its chain (falling back to, say, a
    plaintext file), so we talk to its first acceptable member directly.
    """
    if isinstance(found, chainer.ChainerBackend):
        chain: list[keyring.backend.KeyringBackend] = list(found.backends)
        refusals = []
        for member in chain:
            refusal = _weakness(member)
            if refusal is None:
                return member
            refusals.append(refusal)
        if not chain:
            raise _no_backend_error(_class_path(found) + " (with an empty chain)")
        names = ", ".join(_class_path(m) for m in chain)
        first = refusals[0]
        raise SecretStoreError(
            f"No acceptable backend in keyring's chain ({names}): {first.message}",
            hint=first.hint,
        )
    refusal = _weakness(found)
    if refusal is not None:
        raise refusal
    return found


def _secret_service_collection(backend: Any, connection: Any) -> Any:
    """The collection keyring's SecretService backend uses, without unlocking it."""
    import secretstorage

    path = getattr(backend, "preferred_collection", DEFAULT_COLLECTION)
    try:
        return secretstorage.Collection(connection, path)
    except secretstorage.exceptions.ItemNotFoundException as exc:
        raise SecretStoreError(
            f"The Secret Service has no collection at {path} (no login keyring yet).",
            hint=("Create and unlock one: `printf %s \"$PASS\" | gnome-keyring-daemon "
                  "--replace --unlock --components=secrets`, or run tui-oauth without a D-Bus "
                  "session bus so that it starts its own private keyring session."),
        ) from exc


def _check_unlocked(backend: Any) -> None:
    import secretstorage

    with closing(secretstorage.dbus_init()) as connection:
        collection = _secret_service_collection(backend, connection)
        if collection.is_locked():
            try:
                label = collection.get_label()
            except Exception:
                label = collection.collection_path
            raise SecretStoreError(
                f"The Secret Service collection {label!r} is locked, and tui-oauth does not "
                "show unlock prompts.",
                hint=_LOCKED_HINT,
            )


def _describe(backend: keyring.backend.KeyringBackend) -> str:
    if _is_secret_service(backend):
        provider = secret_service_provider()
        return f"SecretService ({provider})" if provider else "SecretService"
    return _class_path(backend)


def _scrub(text: str, value: str | None) -> str:
    if value and value in text:
        return text.replace(value, "***")
    return text


def _map_error(exc: BaseException, doing: str, value: str | None = None) -> SecretStoreError:
    """Turn a backend exception into a SecretStoreError that never shows the value."""
    if isinstance(exc, SecretStoreError):
        return exc
    detail = _scrub(str(exc) or type(exc).__name__, value)
    kind = type(exc).__name__
    try:
        import secretstorage.exceptions as ss_exc
    except Exception:  # pragma: no cover - SecretStorage is a dependency
        ss_exc = None  # type: ignore[assignment]
    if isinstance(exc, keyring.errors.KeyringLocked) or (
        ss_exc is not None
        and isinstance(exc, ss_exc.LockedException | ss_exc.PromptDismissedException)
    ):
        return SecretStoreError(f"The keyring is locked ({detail}) while {doing}.",
                                hint=_LOCKED_HINT)
    if isinstance(exc, keyring.errors.NoKeyringError):
        return SecretStoreError(f"No usable OS keyring while {doing}: {detail}",
                                hint=_PRIVATE_SESSION_HINT)
    if ss_exc is not None and isinstance(exc, ss_exc.SecretServiceNotAvailableException):
        return SecretStoreError(
            f"The Secret Service is not available while {doing}: {detail}.",
            hint=_PRIVATE_SESSION_HINT,
        )
    if isinstance(exc, keyring.errors.KeyringError):
        return SecretStoreError(f"The keyring refused {doing}: {detail} ({kind}).",
                                hint="Check that the keyring is unlocked and working.")
    if isinstance(exc, OSError):
        return SecretStoreError(
            f"Lost the connection to the keyring while {doing}: {detail} ({kind}).",
            hint=_home_hint(),
        )
    return SecretStoreError(f"The keyring failed while {doing}: {detail} ({kind}).",
                            hint="Check that the keyring is unlocked and working.")


class SecretStore:
    """Secrets of one database, kept in the OS keyring under ``tui-oauth/<namespace>``."""

    def __init__(
        self,
        namespace: str,
        backend: keyring.backend.KeyringBackend | None = None,
        timeout: float = 5.0,
    ) -> None:
        validate_name(namespace, what="namespace")
        if "/" in namespace:
            raise ValueError(f"namespace {namespace!r} must not contain '/'")
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        self.namespace = namespace
        self.timeout = float(timeout)
        self._explicit = backend
        self._backend: keyring.backend.KeyringBackend | None = None
        self._name: str | None = None
        self._candidate: str | None = None
        self._stuck: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- public API -----------------------------------------------------------------

    @property
    def service_name(self) -> str:
        return f"{SERVICE_PREFIX}{self.namespace}"

    @property
    def backend_name(self) -> str:
        """Human name of the backend, e.g. ``SecretService (gnome-keyring)``; never raises."""
        if self._name is None:
            with suppress(SecretStoreError):
                self._resolved()
        if self._name is not None:
            return self._name
        if self._candidate is not None:
            return f"{self._candidate} (refused)"
        return "unknown (the keyring did not answer)"

    def check(self) -> None:
        """Resolve and validate the backend, check the lock and do a cheap read.

        Raises SecretStoreError with the cause and the fix.
        """
        backend = self._resolved()
        if _is_secret_service(backend):
            self._timed("checking whether the keyring is unlocked", _check_unlocked, backend)
        self._timed(
            "reading a probe item",
            lambda: backend.get_password(self.service_name, _PROBE_NAME),
        )

    def get(self, name: str) -> str | None:
        validate_name(name)
        backend = self._resolved()
        value = self._timed(
            f"reading {name!r}", lambda: backend.get_password(self.service_name, name)
        )
        if value is not None and not isinstance(value, str):
            raise SecretStoreError(f"The keyring returned a {type(value).__name__} for {name!r}.")
        return value

    def set(self, name: str, value: str) -> None:
        validate_name(name)
        if not isinstance(value, str):
            raise TypeError(f"secret value must be a str, not {type(value).__name__}")
        backend = self._resolved()
        self._timed(
            f"storing {name!r}",
            lambda: backend.set_password(self.service_name, name, value),
            value=value,
        )

    def delete(self, name: str) -> bool:
        """Delete one item; False when it was absent."""
        validate_name(name)
        backend = self._resolved()
        try:
            self._timed(
                f"deleting {name!r}",
                lambda: backend.delete_password(self.service_name, name),
                passthrough=(keyring.errors.PasswordDeleteError,),
            )
        except keyring.errors.PasswordDeleteError as exc:
            # keyring uses PasswordDeleteError both for "no such item" and for a
            # failure; tell them apart by looking whether the item is still there.
            if self._still_present(backend, name):
                raise _map_error(exc, f"deleting {name!r}") from exc
            return False
        return True

    def list_names(self) -> list[str] | None:
        """Names stored under this namespace (secrets are not read), or None."""
        backend = self._resolved()
        if _is_secret_service(backend):
            return self._timed("listing names", self._secret_service_names, backend)
        names = getattr(backend, "names", None)
        if not callable(names):
            return None
        try:
            listed = self._timed(
                "listing names",
                lambda: list(names(self.service_name)),
                passthrough=(NotImplementedError,),
            )
        except NotImplementedError:
            return None
        return sorted(set(listed))

    def __repr__(self) -> str:
        backend = self._name or (
            _class_path(self._explicit) if self._explicit is not None else "unresolved"
        )
        return f"SecretStore(namespace={self.namespace!r}, backend={backend!r})"

    # -- internals ------------------------------------------------------------------

    def _still_present(self, backend: keyring.backend.KeyringBackend, name: str) -> bool:
        listed = self.list_names()
        if listed is not None:
            return name in listed
        doing = f"checking whether {name!r} was deleted"
        return self._timed(doing, lambda: backend.get_password(self.service_name, name)) \
            is not None

    def _secret_service_names(self, backend: Any) -> list[str]:
        import secretstorage

        scheme = backend.schemes[backend.scheme]
        with closing(secretstorage.dbus_init()) as connection:
            collection = _secret_service_collection(backend, connection)
            found = set()
            for item in collection.search_items({scheme["service"]: self.service_name}):
                username = item.get_attributes().get(scheme["username"])
                if username is not None:
                    found.add(username)
        return sorted(found)

    def _resolved(self) -> keyring.backend.KeyringBackend:
        if self._backend is not None:
            return self._backend
        with self._lock:
            if self._backend is None:
                backend, name = self._timed("looking for the OS keyring", self._resolve)
                self._name = name
                self._backend = backend
            return self._backend

    def _resolve(self) -> tuple[keyring.backend.KeyringBackend, str]:
        if self._explicit is not None:
            backend = self._explicit
            self._candidate = _class_path(backend)
        else:
            try:
                found = keyring.get_keyring()
            except Exception as exc:
                raise SecretStoreError(
                    f"The keyring backend configured for keyring cannot be used: {exc}",
                    hint=_CHOOSE_BACKEND_HINT,
                ) from exc
            self._candidate = _class_path(found)
            backend = _pick_backend(found)
            self._candidate = _class_path(backend)
        if _is_secret_service(backend):
            _check_unlocked(backend)
        return backend, _describe(backend)

    def _timed(
        self,
        doing: str,
        fn: Callable[..., T],
        *args: Any,
        value: str | None = None,
        passthrough: tuple[type[BaseException], ...] = (),
    ) -> T:
        """Run ``fn(*args)`` on a daemon thread; give up after ``self.timeout`` seconds."""
        stuck = self._stuck
        if stuck is not None:
            if stuck.is_alive():
                raise SecretStoreError(
                    f"The keyring has still not answered an earlier request (while {doing}).",
                    hint=_home_hint(),
                )
            self._stuck = None
        finished, result, error, worker = call_with_time_limit(
            fn, *args, timeout=self.timeout, name=THREAD_NAME)
        if not finished:
            self._stuck = worker
            raise SecretStoreError(
                f"The keyring did not answer within {self.timeout:g} s while {doing} "
                f"({self._name or self._candidate or 'backend not yet known'}).",
                hint=("gnome-keyring-daemon may be hung or waiting for a prompt. "
                      + _home_hint()),
            )
        if error is not None:
            exc = error
            if isinstance(exc, passthrough) or not isinstance(exc, Exception):
                raise exc
            mapped = _map_error(exc, doing, value)
            if mapped is exc:
                raise mapped
            # Keep the cause for debugging unless its text shows the secret.
            cause = None if value and value in str(exc) else exc
            raise mapped from cause
        # Finished without an error: ``result`` is what ``fn`` returned.
        return cast(T, result)
