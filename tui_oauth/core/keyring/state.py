"""The private keyring session's directory and its files.

The directory (0700) is ``$XDG_RUNTIME_DIR/tui-oauth``, else
``~/.cache/tui-oauth/session``.  It holds the bus socket, the bus
configuration, the daemons' logs, a lock file (one invocation starts or stops
the session at a time) and ``session.json`` (the bus address and both
daemons' pids).  Nothing here starts a process or talks to a bus.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass

from tui_oauth.core.errors import SecretStoreError

__all__ = [
    "SessionState",
    "check_state_dir",
    "prepare_state_dir",
    "read_state",
    "remove_state",
    "session_lock",
    "state_dir",
    "write_state",
]

#: How long to wait for another invocation that is starting the session (it may
#: be asking someone for the passphrase).
LOCK_TIMEOUT = 120.0

STATE_FILE = "session.json"
LOCK_FILE = "lock"
BUS_SOCKET = "bus"
BUS_CONFIG = "bus.conf"
DBUS_LOG = "dbus-daemon.log"
KEYRING_LOG = "gnome-keyring.log"
#: gnome-keyring's control socket, under the state dir (its XDG_RUNTIME_DIR).
CONTROL_DIR = "keyring"
#: sun_path holds 108 bytes with the final NUL.
_MAX_SOCKET_PATH = 107


def state_dir(env: Mapping[str, str] | None = None) -> str:
    """The private session's directory: ``$XDG_RUNTIME_DIR/tui-oauth`` or the cache's."""
    env = os.environ if env is None else env
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if runtime_dir and os.path.isdir(runtime_dir):
        return os.path.join(runtime_dir, "tui-oauth")
    home = env.get("HOME") or os.path.expanduser("~")
    cache = env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(cache, "tui-oauth", "session")


def check_state_dir(path: str) -> None:
    """Refuse a state dir that is not a 0700 directory of ours."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise SecretStoreError(
            f"Cannot use the keyring session directory {path}: {exc.strerror or exc}.",
            hint="Check its parent directory's permissions, then run tui-oauth again.",
        ) from None
    if not stat.S_ISDIR(st.st_mode):
        raise SecretStoreError(
            f"The keyring session directory {path} is not a directory.",
            hint=f"Remove {path}, then run tui-oauth again.",
        )
    if st.st_uid != os.getuid():
        raise SecretStoreError(
            f"The keyring session directory {path} belongs to another user (uid {st.st_uid}).",
            hint=f"Remove {path}, or set XDG_RUNTIME_DIR to a directory of your own.",
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise SecretStoreError(
            f"The keyring session directory {path} is open to group or others "
            f"(mode {mode:04o}); tui-oauth keeps its keyring session there and refuses it.",
            hint=f"Run `chmod 700 {path}` (or remove it), then run tui-oauth again.",
        )


def prepare_state_dir(path: str) -> None:
    """Create the state dir (0700) if needed, then check it."""
    longest = os.path.join(path, CONTROL_DIR, "control")
    if len(os.fsencode(longest)) > _MAX_SOCKET_PATH:
        raise SecretStoreError(
            f"The keyring session directory {path} has too long a path for the Unix sockets "
            f"kept in it (at most {_MAX_SOCKET_PATH - len('/keyring/control')} bytes).",
            hint="Set XDG_RUNTIME_DIR to a short directory of your own (mode 0700), then run "
                 "tui-oauth again.",
        )
    if not os.path.lexists(path):
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, 0o700)
                os.chmod(path, 0o700)  # whatever the umask
        except OSError as exc:
            raise SecretStoreError(
                f"Cannot create the keyring session directory {path}: {exc.strerror or exc}.",
                hint="Check the permissions of its parent, or set XDG_RUNTIME_DIR to a "
                     "directory of your own.",
            ) from None
    check_state_dir(path)


@dataclass
class SessionState:
    """What ``session.json`` records about a running private session."""

    bus: str
    dbus_pid: int
    keyring_pid: int | None
    control: str | None = None
    started: float = 0.0


def read_state(path: str) -> SessionState | None:
    """The state recorded in the state dir ``path``; None when absent or unreadable."""
    try:
        with open(os.path.join(path, STATE_FILE), encoding="utf-8") as f:
            data = json.load(f)
        state = SessionState(
            bus=str(data["bus"]), dbus_pid=int(data["dbus_pid"]),
            keyring_pid=int(data["keyring_pid"]) if data.get("keyring_pid") else None,
            control=str(data["control"]) if data.get("control") else None,
            started=float(data.get("started") or 0.0),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not state.bus.startswith("unix:"):
        return None
    return state


def write_state(path: str, state: SessionState) -> None:
    final = os.path.join(path, STATE_FILE)
    tmp = f"{final}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(state), f)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove_state(path: str) -> None:
    for name in (STATE_FILE, BUS_SOCKET):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(path, name))
    shutil.rmtree(os.path.join(path, CONTROL_DIR), ignore_errors=True)


@contextlib.contextmanager
def session_lock(path: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the state dir's lock file (flock): one invocation starts or stops at a time."""
    fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SecretStoreError(
                        f"Another tui-oauth has been starting or stopping the keyring session "
                        f"for more than {timeout:g} s (lock file {path}/{LOCK_FILE}).",
                        hint="Finish or end that other tui-oauth, then run this again.",
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
