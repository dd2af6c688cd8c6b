"""Starting and ending the private session's daemons: a dbus-daemon and a gnome-keyring.

They run in a session of their own (``start_new_session``), so they outlive the
command that started them.  A pid is ours only when ``/proc`` shows the right
program with this state directory in its arguments or environment, so a reused
pid is never signalled.  The passphrase reaches gnome-keyring on its stdin;
never in argv or in an environment value.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from tui_oauth.core.errors import SecretStoreError
from tui_oauth.core.keyring.dbus import (
    SECRETS_BUS_NAME,
    THREAD_NAME,
    UNLOCK_TIMEOUT,
    connect,
    secrets_owner,
)
from tui_oauth.core.keyring.state import (
    BUS_CONFIG,
    BUS_SOCKET,
    DBUS_LOG,
    KEYRING_LOG,
    SessionState,
    remove_state,
)
from tui_oauth.core.timelimit import call_with_time_limit

__all__ = ["STOP_HINT", "discard", "kill_strays", "start_bus", "start_keyring", "timed"]

#: How long a daemon gets to exit on SIGTERM before SIGKILL.
STOP_TIMEOUT = 5.0

STOP_HINT = "Run `tui-oauth keyring stop`, then run tui-oauth again."


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


T = TypeVar("T")


def timed(doing: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on the private session, within UNLOCK_TIMEOUT; SecretStoreError
    (saying what was being ``doing``, with the fix) when it fails or does not answer."""
    finished, result, error, _ = call_with_time_limit(fn, *args, timeout=UNLOCK_TIMEOUT,
                                                      name=THREAD_NAME)
    if not finished:
        raise SecretStoreError(
            f"The private keyring session did not answer within {UNLOCK_TIMEOUT:g} s while "
            f"{doing}.",
            hint=STOP_HINT,
        )
    if isinstance(error, SecretStoreError):
        raise error
    if error is not None:
        raise SecretStoreError(
            f"The private keyring session failed while {doing}: {error} "
            f"({type(error).__name__}).",
            hint=STOP_HINT,
        )
    return cast(T, result)  # finished without an error: what fn returned


def _wait_for_secrets(address: str, starter: subprocess.Popen[bytes] | None,
                      timeout: float) -> int:
    """Wait until gnome-keyring owns org.freedesktop.secrets; return its pid."""
    deadline = time.monotonic() + timeout
    connection = connect(address)
    with contextlib.closing(connection):
        while True:
            pid = secrets_owner(connection)
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
                    f"gnome-keyring-daemon did not take {SECRETS_BUS_NAME} on the private "
                    f"D-Bus session within {timeout:g} s.",
                    hint="Check the gnome-keyring installation, then run tui-oauth again.",
                )
            time.sleep(0.02)


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


def discard(path: str, state: SessionState | None, also: int | None = None) -> None:
    """End the session's daemons (gnome-keyring first) and remove its state."""
    if state is not None:
        for pid in {state.keyring_pid, also} - {None}:
            _kill(pid, "gnome-keyring-daemon", path)
        _kill(state.dbus_pid, "dbus-daemon", path)
    remove_state(path)


def kill_strays(path: str) -> None:
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


def start_bus(path: str, env: Mapping[str, str]) -> tuple[str, int]:
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


def start_keyring(path: str, address: str, env: Mapping[str, str], passphrase: str) -> int:
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
        return int(timed("waiting for gnome-keyring", _wait_for_secrets, address, starter,
                          UNLOCK_TIMEOUT - 1))
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()
