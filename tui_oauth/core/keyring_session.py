"""One private Secret Service per user when there is no D-Bus session bus.

On a server reached over SSH there is usually no session bus, so keyring falls
back to its ``fail`` backend.  :func:`ensure_secret_service` then uses a
private session of the user's own, like a desktop login session: a
``dbus-daemon`` and a ``gnome-keyring-daemon`` started on first need and reused
by every later invocation (the console, CLI commands, the provider server), so
that there is one daemon over the keyring file and no passphrase per command.

The session lives in a state directory (0700): ``$XDG_RUNTIME_DIR/tui-oauth``,
else ``~/.cache/tui-oauth/session``.  It holds the bus socket, the bus
configuration, the daemons' logs, a lock file and ``session.json`` (the bus
address and both daemons' pids).  The daemons run in a session of their own,
so they outlive the command that started them; ``tui-oauth keyring stop`` ends
them and ``tui-oauth keyring lock`` locks the keyring.

The passphrase (read from ``TUI_OAUTH_KEYRING_PASSPHRASE_FILE`` or asked on the
terminal) reaches gnome-keyring on its stdin, or over the private bus (an
encrypted Secret Service session) to unlock a running daemon; never in argv
or in an environment value.  The login keyring lives under
``$XDG_DATA_HOME/keyrings/`` (``~/.local/share/keyrings/``), encrypted with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import IO, Any

from tui_oauth.core.errors import SecretStoreError
from tui_oauth.core.secrets import call_with_time_limit

__all__ = [
    "ENV_PASSPHRASE_FILE",
    "PROMPT",
    "BusStatus",
    "SessionState",
    "default_user_bus",
    "ensure_secret_service",
    "lock_session",
    "needs_private_session",
    "read_passphrase",
    "read_state",
    "session_status",
    "state_dir",
    "stop_session",
]

ENV_PASSPHRASE_FILE = "TUI_OAUTH_KEYRING_PASSPHRASE_FILE"  # noqa: S105 (a variable name)
PROMPT = "Keyring passphrase for tui-oauth (creates the keyring on first use): "

#: How long starting a daemon, unlocking and each check may take.
UNLOCK_TIMEOUT = 15.0
#: How long to wait for another invocation that is starting the session (it may
#: be asking someone for the passphrase).
LOCK_TIMEOUT = 120.0
#: How long a daemon gets to exit on SIGTERM before SIGKILL.
STOP_TIMEOUT = 5.0
MAX_PASSPHRASE_BYTES = 16 * 1024

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

_SECRETS_BUS_NAME = "org.freedesktop.secrets"
_SECRETS_PATH = "/org/freedesktop/secrets"
_DEFAULT_COLLECTION = "/org/freedesktop/secrets/aliases/default"
_GNOME_KEYRING_INTERFACE = "org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface"

_PASSPHRASE_FILE_HINT = (
    f"Put the keyring passphrase in a file only you can read (chmod 600) and set "
    f"{ENV_PASSPHRASE_FILE} to its path, or run tui-oauth from a terminal so that it can ask."
)
_STOP_HINT = "Run `tui-oauth keyring stop`, then run tui-oauth again."

# No <servicedir>: nothing is activated on this bus.  With the standard session
# configuration a Secret Service call made while gnome-keyring is not (or not
# yet) on the bus would start another, unmanaged and locked, gnome-keyring.
_BUS_CONFIG_TEXT = """\
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- The private D-Bus session of tui-oauth (written by tui-oauth). -->
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


# ---------------------------------------------------------------- where things are


def default_user_bus(env: Mapping[str, str]) -> str:
    """Path of the per-user bus socket systemd provides (``/run/user/<uid>/bus``)."""
    runtime_dir = env.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return os.path.join(runtime_dir, "bus")


def needs_private_session(env: Mapping[str, str], *, user_bus: str | None = None) -> bool:
    """True when there is no session bus and no keyring configuration to respect."""
    if env.get("DBUS_SESSION_BUS_ADDRESS"):
        return False
    if env.get("PYTHON_KEYRING_BACKEND"):
        return False
    path = user_bus if user_bus is not None else default_user_bus(env)
    try:
        return not stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return True


def state_dir(env: Mapping[str, str] | None = None) -> str:
    """The private session's directory: ``$XDG_RUNTIME_DIR/tui-oauth`` or the cache's."""
    env = os.environ if env is None else env
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if runtime_dir and os.path.isdir(runtime_dir):
        return os.path.join(runtime_dir, "tui-oauth")
    home = env.get("HOME") or os.path.expanduser("~")
    cache = env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(cache, "tui-oauth", "session")


def _check_state_dir(path: str) -> None:
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


def _prepare_state_dir(path: str) -> None:
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
    _check_state_dir(path)


# ---------------------------------------------------------------- the state file


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


def _write_state(path: str, state: SessionState) -> None:
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


def _remove_state(path: str) -> None:
    for name in (STATE_FILE, BUS_SOCKET):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(path, name))
    shutil.rmtree(os.path.join(path, CONTROL_DIR), ignore_errors=True)


@contextlib.contextmanager
def _session_lock(path: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
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


# ---------------------------------------------------------------- talking to the bus


@dataclass
class BusStatus:
    """What a private bus says: does it answer, who owns the Secret Service, locked?"""

    answers: bool
    keyring_pid: int | None = None
    locked: bool | None = None  # None: no Secret Service or no default collection
    error: str | None = None


def _connect(address: str) -> Any:
    from jeepney.io.blocking import open_dbus_connection

    return open_dbus_connection(bus=address, auth_timeout=2.0)


def _call(connection: Any, message: Any, timeout: float = 5.0) -> tuple[Any, ...]:
    from jeepney.wrappers import unwrap_msg

    return tuple(unwrap_msg(connection.send_and_get_reply(message, timeout=timeout)))


def _secrets_owner(connection: Any) -> int | None:
    from jeepney.bus_messages import message_bus

    if not _call(connection, message_bus.NameHasOwner(_SECRETS_BUS_NAME))[0]:
        return None
    return int(_call(connection, message_bus.GetConnectionUnixProcessID(_SECRETS_BUS_NAME))[0])


def _default_collection_locked(connection: Any) -> bool | None:
    import secretstorage

    try:
        collection = secretstorage.Collection(connection, _DEFAULT_COLLECTION)
    except secretstorage.exceptions.ItemNotFoundException:
        return None
    return bool(collection.is_locked())


def _probe(address: str) -> BusStatus:
    try:
        connection = _connect(address)
    except Exception as exc:  # refused, no socket, auth failed or timed out
        return BusStatus(False, error=f"{exc} ({type(exc).__name__})")
    with contextlib.closing(connection):
        pid = _secrets_owner(connection)
        if pid is None:
            return BusStatus(True)
        return BusStatus(True, pid, _default_collection_locked(connection))


def probe_bus(address: str, timeout: float = UNLOCK_TIMEOUT) -> BusStatus:
    """Ask the bus at ``address`` about its Secret Service, within ``timeout``."""
    finished, result, error, _ = call_with_time_limit(_probe, address, timeout=timeout)
    if not finished:
        return BusStatus(False, error=f"no answer within {timeout:g} s")
    if error is not None:
        return BusStatus(True, error=f"{error} ({type(error).__name__})")
    assert isinstance(result, BusStatus)
    return result


def _wait_for_secrets(address: str, starter: subprocess.Popen[bytes] | None,
                      timeout: float) -> int:
    """Wait until gnome-keyring owns org.freedesktop.secrets; return its pid."""
    deadline = time.monotonic() + timeout
    connection = _connect(address)
    with contextlib.closing(connection):
        while True:
            pid = _secrets_owner(connection)
            if pid is not None:
                return pid
            if starter is not None and starter.poll() not in (None, 0):
                raise SecretStoreError(
                    f"gnome-keyring-daemon --unlock failed with status {starter.returncode}.",
                    hint="See the log in the keyring session directory; check the "
                         "gnome-keyring installation and HOME, then run tui-oauth again.",
                )
            if time.monotonic() > deadline:
                raise SecretStoreError(
                    f"gnome-keyring-daemon did not take {_SECRETS_BUS_NAME} on the private "
                    f"D-Bus session within {timeout:g} s.",
                    hint="Check the gnome-keyring installation, then run tui-oauth again.",
                )
            time.sleep(0.02)


def _unlock_with_passphrase(address: str, passphrase: str) -> bool:
    """Unlock the running daemon's login keyring in place; True when it is unlocked.

    ``gnome-keyring-daemon --unlock`` does not unlock a daemon already on the
    bus (it starts a second one that stays off the bus), and ``--replace``
    leaves the running one locked as well; gnome-keyring's own D-Bus method
    does it, with the passphrase sent in an encrypted Secret Service session.
    """
    from jeepney import DBusAddress, new_method_call
    from secretstorage.util import format_secret, open_session

    connection = _connect(address)
    with contextlib.closing(connection):
        service = DBusAddress(_SECRETS_PATH, bus_name=_SECRETS_BUS_NAME,
                              interface="org.freedesktop.Secret.Service")
        path = _call(connection, new_method_call(service, "ReadAlias", "s", ("default",)))[0]
        if not path or path == "/":
            return False
        session = open_session(connection)
        secret = format_secret(session, passphrase.encode("utf-8"), "text/plain")
        internal = DBusAddress(_SECRETS_PATH, bus_name=_SECRETS_BUS_NAME,
                               interface=_GNOME_KEYRING_INTERFACE)
        # An error reply ("The password was invalid") leaves it locked; checked below.
        connection.send_and_get_reply(
            new_method_call(internal, "UnlockWithMasterPassword", "o(oayays)", (path, secret)),
            timeout=UNLOCK_TIMEOUT,
        )
        return _default_collection_locked(connection) is False


def _lock(address: str) -> bool:
    import secretstorage

    connection = _connect(address)
    with contextlib.closing(connection):
        collection = secretstorage.Collection(connection, _DEFAULT_COLLECTION)
        collection.lock()
        return bool(collection.is_locked())


def _timed(doing: str, fn: Any, *args: Any) -> Any:
    finished, result, error, _ = call_with_time_limit(fn, *args, timeout=UNLOCK_TIMEOUT)
    if not finished:
        raise SecretStoreError(
            f"The private keyring session did not answer within {UNLOCK_TIMEOUT:g} s while "
            f"{doing}.",
            hint=_STOP_HINT,
        )
    if isinstance(error, SecretStoreError):
        raise error
    if error is not None:
        raise SecretStoreError(
            f"The private keyring session failed while {doing}: {error} "
            f"({type(error).__name__}).",
            hint=_STOP_HINT,
        )
    return result


# ---------------------------------------------------------------- the daemons


def _is_ours(pid: int | None, program: str, path: str) -> bool:
    """Is ``pid`` a live ``program`` of the session in ``path`` (not a reused pid)?"""
    if not pid or pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        if os.path.basename(argv[0]).decode(errors="replace") != program:
            return False
        if program == "dbus-daemon":
            return os.fsencode(f"--config-file={os.path.join(path, BUS_CONFIG)}") in argv
        with open(f"/proc/{pid}/environ", "rb") as f:
            return os.fsencode(f"XDG_RUNTIME_DIR={path}") in f.read().split(b"\0")
    except (OSError, IndexError):
        return False


def _kill(pid: int | None, program: str, path: str) -> None:
    """SIGTERM (then SIGKILL) a daemon of this session; wait until it is gone."""
    if not _is_ours(pid, program, path):
        return
    assert pid is not None
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _is_ours(pid, program, path):
                return
            time.sleep(0.02)


def _discard(path: str, state: SessionState | None, also: int | None = None) -> None:
    """End the session's daemons (gnome-keyring first) and remove its state."""
    if state is not None:
        for pid in {state.keyring_pid, also} - {None}:
            _kill(pid, "gnome-keyring-daemon", path)
        _kill(state.dbus_pid, "dbus-daemon", path)
    _remove_state(path)


def _kill_strays(path: str) -> None:
    """End daemons of this state dir that no state file names (a start cut short)."""
    found: list[tuple[int, str]] = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                for program in ("gnome-keyring-daemon", "dbus-daemon"):
                    if _is_ours(int(entry), program, path):
                        found.append((int(entry), program))
    for pid, program in sorted(found, key=lambda p: p[1] != "gnome-keyring-daemon"):
        _kill(pid, program, path)


def _daemon_env(env: Mapping[str, str], path: str) -> dict[str, str]:
    daemon_env = {k: v for k, v in env.items()
                  if k not in ("DBUS_SESSION_BUS_ADDRESS", "GNOME_KEYRING_CONTROL",
                               "DBUS_STARTER_ADDRESS", "DBUS_STARTER_BUS_TYPE")
                  and not k.startswith("TUI_OAUTH_")}
    # gnome-keyring's control socket goes to <state dir>/keyring.
    daemon_env["XDG_RUNTIME_DIR"] = path
    return daemon_env


def _start_bus(path: str, env: Mapping[str, str]) -> tuple[str, int]:
    socket_path = os.path.join(path, BUS_SOCKET)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
    config = os.path.join(path, BUS_CONFIG)
    with open(config, "w", encoding="utf-8") as f:
        f.write(_BUS_CONFIG_TEXT.format(socket=socket_path))
    # stderr to a log: as root, dbus-daemon warns "Failed to set fd limit".
    with open(os.path.join(path, DBUS_LOG), "ab") as log:
        try:
            done = subprocess.run(
                ["dbus-daemon", f"--config-file={config}", "--fork", "--nopidfile",
                 "--print-address=1", "--print-pid=1"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                env=_daemon_env(env, path), cwd="/", start_new_session=True,
                timeout=UNLOCK_TIMEOUT, check=False,
            )
        except subprocess.TimeoutExpired:
            raise SecretStoreError(
                f"dbus-daemon did not start within {UNLOCK_TIMEOUT:g} s.",
                hint=f"See {os.path.join(path, DBUS_LOG)}, then run tui-oauth again.",
            ) from None
        except OSError as exc:
            raise SecretStoreError(f"Could not start dbus-daemon: {exc}.",
                                   hint="Install dbus (apt install dbus).") from None
    lines = done.stdout.decode(errors="replace").split()
    if done.returncode != 0 or len(lines) < 2 or not lines[1].isdigit():
        raise SecretStoreError(
            f"dbus-daemon failed to start (status {done.returncode}).",
            hint=f"See {os.path.join(path, DBUS_LOG)}, then run tui-oauth again.",
        )
    return lines[0], int(lines[1])


def _start_keyring(path: str, address: str, env: Mapping[str, str], passphrase: str) -> int:
    """Start gnome-keyring on the private bus, unlocking (or creating) the login keyring."""
    daemon_env = _daemon_env(env, path)
    daemon_env["DBUS_SESSION_BUS_ADDRESS"] = address
    with open(os.path.join(path, KEYRING_LOG), "ab") as log:
        try:
            starter = subprocess.Popen(
                ["gnome-keyring-daemon", "--unlock", "--components=secrets"],
                stdin=subprocess.PIPE, stdout=log, stderr=log, env=daemon_env, cwd="/",
                start_new_session=True,
            )
        except OSError as exc:
            raise SecretStoreError(
                f"Could not start gnome-keyring-daemon: {exc}.",
                hint="Install gnome-keyring (apt install gnome-keyring).",
            ) from None
    try:
        try:
            starter.communicate(passphrase.encode("utf-8"), timeout=UNLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise SecretStoreError(
                f"gnome-keyring-daemon --unlock did not finish within {UNLOCK_TIMEOUT:g} s.",
                hint=f"Check that HOME ({env.get('HOME')}) is writable, then run tui-oauth "
                     "again.",
            ) from None
        return int(_timed("waiting for gnome-keyring", _wait_for_secrets, address, starter,
                          UNLOCK_TIMEOUT - 1))
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()


def _wrong_passphrase(env: Mapping[str, str]) -> SecretStoreError:
    data_home = env.get("XDG_DATA_HOME") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".local", "share")
    keyring_file = os.path.join(data_home, "keyrings", "login.keyring")
    return SecretStoreError(
        "The keyring passphrase is wrong: the login keyring stayed locked.",
        hint=(f"Use the passphrase the keyring was created with. To start over, move "
              f"{keyring_file} away (the secrets in it are then lost)."),
    )


def _start_session(path: str, env: Mapping[str, str], passphrase: str) -> SessionState:
    """Start dbus-daemon and gnome-keyring; on any failure leave nothing running."""
    address, dbus_pid = _start_bus(path, env)
    state = SessionState(bus=address, dbus_pid=dbus_pid, keyring_pid=None, started=time.time())
    try:
        state.keyring_pid = _start_keyring(path, address, env, passphrase)
        _check_unlocked_after_start(path, state, env)
        control = os.path.join(path, CONTROL_DIR)
        state.control = control if os.path.isdir(control) else None
        _write_state(path, state)
    except BaseException:
        _discard(path, state, _owner_pid(address))
        raise
    return state


def _owner_pid(address: str) -> int | None:
    status = probe_bus(address, timeout=3.0)
    return status.keyring_pid


def _check_unlocked_after_start(path: str, state: SessionState, env: Mapping[str, str]) -> None:
    status = probe_bus(state.bus)
    if status.error is not None:
        raise SecretStoreError(
            f"The private keyring session does not work: {status.error}.",
            hint="Check the gnome-keyring installation, then run tui-oauth again.",
        )
    if status.locked is None:
        raise SecretStoreError(
            "gnome-keyring did not create or open the login keyring.",
            hint=f"Check that {env.get('HOME')}/.local/share/keyrings is writable, then run "
                 "tui-oauth again.",
        )
    if status.locked:
        raise _wrong_passphrase(env)


# ---------------------------------------------------------------- the passphrase


def _warn(message: str) -> None:
    print(f"tui-oauth: warning: {message}", file=sys.stderr)


def read_passphrase(env: Mapping[str, str], stdin_is_tty: bool, *,
                    why: str | None = None) -> str:
    """The keyring passphrase: from the file named by the env, else asked on the TTY."""
    path = env.get(ENV_PASSPHRASE_FILE)
    if path:
        try:
            with open(path, "rb") as f:
                mode = os.fstat(f.fileno()).st_mode
                raw = f.read(MAX_PASSPHRASE_BYTES + 3)
        except OSError as exc:
            raise SecretStoreError(
                f"Cannot read the keyring passphrase file {path} ({ENV_PASSPHRASE_FILE}): "
                f"{exc.strerror or exc}.",
                hint=f"Check the path and its permissions, or unset {ENV_PASSPHRASE_FILE}.",
            ) from None
        if mode & 0o077:
            _warn(f"the keyring passphrase file {path} is accessible by group or others "
                  f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}`.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretStoreError(
                f"The keyring passphrase file {path} is not UTF-8 text.",
                hint="Write the passphrase as UTF-8 text.",
            ) from None
        if text.endswith("\r\n"):
            text = text[:-2]
        elif text.endswith("\n"):
            text = text[:-1]
        if not text:
            raise SecretStoreError(
                f"The keyring passphrase file {path} is empty.",
                hint="Write the passphrase into it (one line), or unset "
                     f"{ENV_PASSPHRASE_FILE} to be asked for it.",
            )
        _check_length(text)
        return text
    if not stdin_is_tty:
        why = why or ("There is no D-Bus session bus, so tui-oauth starts its own keyring "
                      "session")
        raise SecretStoreError(
            f"{why}, and it needs the keyring passphrase, but it cannot ask for it: stdin "
            "is not a terminal.",
            hint=_PASSPHRASE_FILE_HINT,
        )
    try:
        text = getpass.getpass(PROMPT)
    except EOFError:
        raise SecretStoreError("No keyring passphrase was entered.",
                               hint=_PASSPHRASE_FILE_HINT) from None
    if not text:
        raise SecretStoreError(
            "The keyring passphrase must not be empty (an empty one would leave the "
            "keyring unencrypted).",
            hint="Enter a passphrase, or set " + ENV_PASSPHRASE_FILE + ".",
        )
    _check_length(text)
    return text


def _check_length(text: str) -> None:
    if len(text.encode("utf-8")) > MAX_PASSPHRASE_BYTES:
        raise SecretStoreError(
            f"The keyring passphrase is longer than {MAX_PASSPHRASE_BYTES} bytes.",
            hint="Use a shorter passphrase.",
        )


def _check_home(env: Mapping[str, str]) -> None:
    home = env.get("HOME")
    if not home:
        raise SecretStoreError(
            "HOME is not set; gnome-keyring needs it for the keyring files and hangs "
            "without it.",
            hint="Set HOME to your home directory and run tui-oauth again.",
        )
    if not os.path.isdir(home):
        raise SecretStoreError(
            f"HOME ({home}) does not exist; gnome-keyring needs it for the keyring files "
            "and hangs without it.",
            hint="Create it or set HOME to an existing directory, then run tui-oauth again.",
        )


def _isatty(stream: IO[Any] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


# ---------------------------------------------------------------- the entry point


def _use(state: SessionState) -> None:
    """Point this process (keyring, SecretStorage, jeepney) at the private session."""
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = state.bus
    if state.control:
        os.environ["GNOME_KEYRING_CONTROL"] = state.control


def ensure_secret_service(argv: list[str] | None = None, *,
                          stdin_is_tty: bool | None = None) -> None:
    """Make sure a Secret Service is reachable, starting the private session if needed.

    With a session bus (or PYTHON_KEYRING_BACKEND) this changes nothing.  Else
    it joins the user's private session (no passphrase while its keyring is
    unlocked), unlocks it, or starts it, and points this process at it.
    ``argv`` is accepted for compatibility and not used.  Raises
    SecretStoreError with the cause and the fix.
    """
    del argv
    env = os.environ
    if env.get("DBUS_SESSION_BUS_ADDRESS") or env.get("PYTHON_KEYRING_BACKEND"):
        return
    if not needs_private_session(env):
        # systemd's per-user bus exists, but jeepney (used by SecretStorage) only
        # looks at DBUS_SESSION_BUS_ADDRESS; point it at the socket as libdbus would.
        env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={default_user_bus(env)}"
        return
    if not (shutil.which("gnome-keyring-daemon") and shutil.which("dbus-daemon")):
        return  # SecretStore.check() explains what to install
    _check_home(env)
    path = state_dir(env)
    _prepare_state_dir(path)
    state = read_state(path)
    if state is not None:  # the common case: a running, unlocked session; no lock needed
        status = probe_bus(state.bus)
        if status.answers and status.keyring_pid is not None and status.locked is False:
            _use(state)
            return
    if stdin_is_tty is None:
        stdin_is_tty = _isatty(sys.stdin)
    with _session_lock(path):
        state = _join_or_start(path, env, stdin_is_tty)
    _use(state)


def _join_or_start(path: str, env: Mapping[str, str], stdin_is_tty: bool) -> SessionState:
    """Under the lock: reuse, repair, unlock or start the private session."""
    state = read_state(path)
    if state is not None:
        status = probe_bus(state.bus)
        if not status.answers:  # stale: the daemons are gone (or hung)
            _discard(path, state)
            state = None
        elif status.error is not None:
            raise SecretStoreError(
                f"The private keyring session at {state.bus} does not work: {status.error}.",
                hint=_STOP_HINT,
            )
    if state is None:
        passphrase = read_passphrase(env, stdin_is_tty)
        _kill_strays(path)
        _remove_state(path)
        return _start_session(path, env, passphrase)

    if status.keyring_pid is None:  # gnome-keyring is gone but the bus is there
        passphrase = read_passphrase(
            env, stdin_is_tty, why="The private keyring session has lost its gnome-keyring, "
                                   "so tui-oauth starts it again")
        try:
            state.keyring_pid = _start_keyring(path, state.bus, env, passphrase)
            _check_unlocked_after_start(path, state, env)
        except BaseException:
            _discard(path, state, _owner_pid(state.bus))
            raise
        _write_state(path, state)
        return state
    if status.locked is None:
        raise SecretStoreError(
            "The private keyring session has no login keyring (was its file removed?).",
            hint=_STOP_HINT,
        )
    if status.locked:
        passphrase = read_passphrase(
            env, stdin_is_tty, why="The keyring of the private keyring session is locked")
        if not _timed("unlocking the login keyring", _unlock_with_passphrase, state.bus,
                      passphrase):
            raise _wrong_passphrase(env)
    if state.keyring_pid != status.keyring_pid:
        state.keyring_pid = status.keyring_pid
        _write_state(path, state)
    return state


# ---------------------------------------------------------------- keyring status / lock / stop


def session_status(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Facts about the private session (and the bus in use); starts nothing."""
    env = os.environ if env is None else env
    path = state_dir(env)
    state = read_state(path) if os.path.isdir(path) else None
    status = probe_bus(state.bus) if state is not None else None
    running = bool(status and status.answers)
    if env.get("PYTHON_KEYRING_BACKEND"):
        bus_source = "none (PYTHON_KEYRING_BACKEND is set)"
    elif running and state is not None and env.get("DBUS_SESSION_BUS_ADDRESS") == state.bus:
        bus_source = "private session"
    elif env.get("DBUS_SESSION_BUS_ADDRESS"):
        bus_source = "environment"
    elif not needs_private_session(env):
        bus_source = "user bus"
    elif running:
        bus_source = "private session"
    else:
        bus_source = "none"
    return {
        "state_dir": path,
        "running": running,
        "bus": state.bus if state is not None else None,
        "dbus_daemon_pid": state.dbus_pid if state is not None else None,
        "gnome_keyring_pid": (status.keyring_pid if status and status.keyring_pid
                              else state.keyring_pid if state is not None else None),
        "keyring_running": bool(status and status.keyring_pid),
        "locked": status.locked if status is not None and status.answers else None,
        "stale": state is not None and not running,
        "started": state.started if state is not None and state.started else None,
        "session_bus": bus_source,
        "uses_private_session": bus_source == "private session",
    }


def lock_session(env: Mapping[str, str] | None = None) -> SessionState | None:
    """Lock the private session's login keyring; None when no session is running."""
    env = os.environ if env is None else env
    path = state_dir(env)
    state = read_state(path) if os.path.isdir(path) else None
    if state is None:
        return None
    status = probe_bus(state.bus)
    if not status.answers or status.keyring_pid is None or status.locked is None:
        return None
    if not _timed("locking the login keyring", _lock, state.bus):
        raise SecretStoreError("The login keyring of the private session did not lock.",
                               hint=_STOP_HINT)
    return state


def stop_session(env: Mapping[str, str] | None = None) -> SessionState | None:
    """Stop the private session's daemons and remove its state; None when none was there."""
    env = os.environ if env is None else env
    path = state_dir(env)
    if not os.path.isdir(path):
        return None
    _check_state_dir(path)
    with _session_lock(path):
        state = read_state(path)
        if state is None:
            _remove_state(path)
            return None
        status = probe_bus(state.bus, timeout=3.0)
        _discard(path, state, status.keyring_pid)
        _kill_strays(path)
    return state
