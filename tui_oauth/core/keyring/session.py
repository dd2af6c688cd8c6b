"""One private Secret Service per user when there is no D-Bus session bus.

On a server reached over SSH there is usually no session bus, so keyring falls
back to its ``fail`` backend.  :func:`ensure_secret_service` then uses a
private session of the user's own, like a desktop login session: a
``dbus-daemon`` and a ``gnome-keyring-daemon`` started on first need and reused
by every later invocation (the console, CLI commands, the provider server), so
that there is one daemon over the keyring file and no passphrase per command.

Its directory and files are in :mod:`.state`, its daemons in :mod:`.daemons`,
the bus calls in :mod:`.dbus`.  ``tui-oauth keyring stop`` ends the session
(:func:`stop_session`) and ``tui-oauth keyring lock`` locks the keyring
(:func:`lock_session`).

The passphrase (read from ``TUI_OAUTH_KEYRING_PASSPHRASE_FILE`` or asked on the
terminal) reaches gnome-keyring on its stdin, or over the private bus (an
encrypted Secret Service session) to unlock a running daemon; never in argv
or in an environment value.  The login keyring lives under
``$XDG_DATA_HOME/keyrings/`` (``~/.local/share/keyrings/``), encrypted with it.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Mapping
from typing import Any

from tui_oauth.core.errors import SecretStoreError
from tui_oauth.core.keyring.daemons import (
    STOP_HINT,
    discard,
    kill_strays,
    start_bus,
    start_keyring,
    timed,
)
from tui_oauth.core.keyring.dbus import lock_default_collection, probe_bus, unlock_with_passphrase
from tui_oauth.core.keyring.passphrase import AskPassphrase, Warn, read_passphrase
from tui_oauth.core.keyring.state import (
    CONTROL_DIR,
    SessionState,
    check_state_dir,
    prepare_state_dir,
    read_state,
    remove_state,
    session_lock,
    state_dir,
    write_state,
)

__all__ = [
    "default_user_bus",
    "ensure_secret_service",
    "lock_session",
    "needs_private_session",
    "session_status",
    "stop_session",
]


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
    address, dbus_pid = start_bus(path, env)
    state = SessionState(bus=address, dbus_pid=dbus_pid, keyring_pid=None, started=time.time())
    try:
        state.keyring_pid = start_keyring(path, address, env, passphrase)
        _check_unlocked_after_start(path, state, env)
        control = os.path.join(path, CONTROL_DIR)
        state.control = control if os.path.isdir(control) else None
        write_state(path, state)
    except BaseException:
        discard(path, state, _owner_pid(address))
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


def _use(state: SessionState) -> None:
    """Point this process (keyring, SecretStorage, jeepney) at the private session."""
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = state.bus
    if state.control:
        os.environ["GNOME_KEYRING_CONTROL"] = state.control


def ensure_secret_service(ask_passphrase: AskPassphrase | None = None,
                          warn: Warn | None = None) -> None:
    """Make sure a Secret Service is reachable, starting the private session if needed.

    With a session bus (or PYTHON_KEYRING_BACKEND) this changes nothing.  Else
    it joins the user's private session (no passphrase while its keyring is
    unlocked), unlocks it, or starts it, and points this process at it.
    The passphrase, when one is needed, comes from the file named by
    TUI_OAUTH_KEYRING_PASSPHRASE_FILE or from ``ask_passphrase(prompt)`` (None:
    there is no terminal to ask on); ``warn`` hears of a passphrase file open to
    others.  Raises SecretStoreError with the cause and the fix.
    """
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
    prepare_state_dir(path)
    state = read_state(path)
    if state is not None:  # the common case: a running, unlocked session; no lock needed
        status = probe_bus(state.bus)
        if status.answers and status.keyring_pid is not None and status.locked is False:
            _use(state)
            return
    with session_lock(path):
        state = _join_or_start(path, env, ask_passphrase, warn)
    _use(state)


def _join_or_start(path: str, env: Mapping[str, str], ask: AskPassphrase | None,
                   warn: Warn | None) -> SessionState:
    """Under the lock: reuse, repair, unlock or start the private session."""
    state = read_state(path)
    if state is not None:
        status = probe_bus(state.bus)
        if not status.answers:  # stale: the daemons are gone (or hung)
            discard(path, state)
            state = None
        elif status.error is not None:
            raise SecretStoreError(
                f"The private keyring session at {state.bus} does not work: {status.error}.",
                hint=STOP_HINT,
            )
    if state is None:
        passphrase = read_passphrase(env, ask, warn=warn)
        kill_strays(path)
        remove_state(path)
        return _start_session(path, env, passphrase)

    if status.keyring_pid is None:  # gnome-keyring is gone but the bus is there
        passphrase = read_passphrase(
            env, ask, warn=warn, why="The private keyring session has lost its "
                                     "gnome-keyring, so tui-oauth starts it again")
        try:
            state.keyring_pid = start_keyring(path, state.bus, env, passphrase)
            _check_unlocked_after_start(path, state, env)
        except BaseException:
            discard(path, state, _owner_pid(state.bus))
            raise
        write_state(path, state)
        return state
    if status.locked is None:
        raise SecretStoreError(
            "The private keyring session has no login keyring (was its file removed?).",
            hint=STOP_HINT,
        )
    if status.locked:
        passphrase = read_passphrase(
            env, ask, warn=warn, why="The keyring of the private keyring session is locked")
        if not timed("unlocking the login keyring", unlock_with_passphrase, state.bus,
                      passphrase):
            raise _wrong_passphrase(env)
    if state.keyring_pid != status.keyring_pid:
        state.keyring_pid = status.keyring_pid
        write_state(path, state)
    return state


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
    if not timed("locking the login keyring", lock_default_collection, state.bus):
        raise SecretStoreError("The login keyring of the private session did not lock.",
                               hint=STOP_HINT)
    return state


def stop_session(env: Mapping[str, str] | None = None) -> SessionState | None:
    """Stop the private session's daemons and remove its state; None when none was there."""
    env = os.environ if env is None else env
    path = state_dir(env)
    if not os.path.isdir(path):
        return None
    check_state_dir(path)
    with session_lock(path):
        state = read_state(path)
        if state is None:
            remove_state(path)
            return None
        status = probe_bus(state.bus, timeout=3.0)
        discard(path, state, status.keyring_pid)
        kill_strays(path)
    return state
