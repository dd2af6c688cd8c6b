"""`tui-oauth keyring status|lock|stop`: the private keyring session used over SSH.

None of these starts a session: they only look at, lock or end the one that
commands needing the keyring start when there is no D-Bus session bus.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import click

from tui_oauth.cli.common import print_fields, print_json, say


@click.group("keyring")
def keyring_group() -> None:
    """The private keyring session (a dbus-daemon and a gnome-keyring of your own).

    With no D-Bus session bus (a plain SSH login), the first command that needs
    the keyring starts it and asks for the keyring passphrase; later commands,
    the console and the provider server reuse it without asking.
    """


def _backend(facts: dict[str, Any]) -> str:
    """The keyring backend a command would use now (the private session if it runs)."""
    from tui_oauth.core.secrets import SecretStore

    if facts["session_bus"] == "private session" and not os.environ.get(
            "DBUS_SESSION_BUS_ADDRESS"):
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = facts["bus"]  # this process only
    elif facts["session_bus"] == "user bus" and not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        from tui_oauth.core.keyring_session import default_user_bus

        os.environ["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={default_user_bus(os.environ)}"
    return SecretStore("keyring-status", timeout=5).backend_name


@keyring_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool) -> None:
    """Is a private keyring session running; its bus, pids, lock state, the backend."""
    from tui_oauth.core.keyring_session import session_status

    facts = session_status()
    facts["backend"] = _backend(facts)
    if as_json:
        print_json(facts)
        return
    if facts["running"]:
        state = "locked" if facts["locked"] else (
            "unlocked" if facts["locked"] is False else "no gnome-keyring on its bus")
        session = f"running, {state}"
    elif facts["stale"]:
        session = "not running (stale state; the next command cleans it up)"
    else:
        session = "not running"
    started = (datetime.fromtimestamp(facts["started"], UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
               if facts["started"] else None)
    print_fields([
        ("private session", session),
        ("directory", facts["state_dir"]),
        ("bus", facts["bus"] if facts["running"] else None),
        ("dbus-daemon pid", facts["dbus_daemon_pid"] if facts["running"] else None),
        ("gnome-keyring pid", facts["gnome_keyring_pid"] if facts["keyring_running"] else None),
        ("started", started if facts["running"] else None),
        ("session bus in use", facts["session_bus"]),
        ("keyring backend", facts["backend"]),
    ])


@keyring_group.command("lock")
def lock() -> None:
    """Lock the private session's keyring: the next command asks for the passphrase."""
    from tui_oauth.core.keyring_session import lock_session

    if lock_session() is None:
        say("No private keyring session is running; nothing to lock.", err=True)
        return
    say("Locked the keyring of the private session; the next command that needs it "
        "asks for the passphrase.", err=True)


@keyring_group.command("stop")
def stop() -> None:
    """Stop the private session's dbus-daemon and gnome-keyring and remove its state."""
    from tui_oauth.core.keyring_session import stop_session

    state = stop_session()
    if state is None:
        say("No private keyring session is running.", err=True)
        return
    say(f"Stopped the private keyring session (dbus-daemon {state.dbus_pid}, "
        f"gnome-keyring {state.keyring_pid or '-'}).", err=True)
