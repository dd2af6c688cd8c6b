"""The Secret Service on D-Bus: its names, and the few calls tui-oauth makes itself.

keyring (through SecretStorage and jeepney) does the storing; this module holds
what it does not: asking a bus whether it answers and who owns the Secret
Service, whether the default collection is locked, unlocking gnome-keyring's
login keyring in place and locking it.  The bus names, object paths and
interfaces are written here once.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

from tui_oauth.core.timelimit import call_with_time_limit

__all__ = [
    "DEFAULT_COLLECTION",
    "GNOME_KEYRING_INTERFACE",
    "SECRETS_BUS_NAME",
    "SECRETS_PATH",
    "SERVICE_INTERFACE",
    "THREAD_NAME",
    "UNLOCK_TIMEOUT",
    "BusStatus",
    "call",
    "connect",
    "default_collection_locked",
    "lock_default_collection",
    "probe_bus",
    "secret_service_provider",
    "secrets_owner",
    "unlock_with_passphrase",
]

SECRETS_BUS_NAME = "org.freedesktop.secrets"
SECRETS_PATH = "/org/freedesktop/secrets"
SERVICE_INTERFACE = "org.freedesktop.Secret.Service"
DEFAULT_COLLECTION = "/org/freedesktop/secrets/aliases/default"
GNOME_KEYRING_INTERFACE = "org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface"

#: How long starting a daemon, unlocking and each check may take.
UNLOCK_TIMEOUT = 15.0
#: The name of the threads calls with a time limit run on.
THREAD_NAME = "tui-oauth-keyring"


@dataclass
class BusStatus:
    """What a private bus says: does it answer, who owns the Secret Service, locked?"""

    answers: bool
    keyring_pid: int | None = None
    locked: bool | None = None  # None: no Secret Service or no default collection
    error: str | None = None


def connect(address: str) -> Any:
    """A blocking jeepney connection to the bus at ``address`` (close it)."""
    from jeepney.io.blocking import open_dbus_connection

    return open_dbus_connection(bus=address, auth_timeout=2.0)


def call(connection: Any, message: Any, timeout: float = 5.0) -> tuple[Any, ...]:
    """Send ``message`` and return the reply's body (an error reply raises)."""
    from jeepney.wrappers import unwrap_msg

    return tuple(unwrap_msg(connection.send_and_get_reply(message, timeout=timeout)))


def secrets_owner(connection: Any) -> int | None:
    """The pid of the process owning org.freedesktop.secrets, or None."""
    from jeepney.bus_messages import message_bus

    if not call(connection, message_bus.NameHasOwner(SECRETS_BUS_NAME))[0]:
        return None
    return int(call(connection, message_bus.GetConnectionUnixProcessID(SECRETS_BUS_NAME))[0])


def default_collection_locked(connection: Any) -> bool | None:
    """Is the default collection locked; None when there is none."""
    import secretstorage

    try:
        collection = secretstorage.Collection(connection, DEFAULT_COLLECTION)
    except secretstorage.exceptions.ItemNotFoundException:
        return None
    return bool(collection.is_locked())


def _probe(address: str) -> BusStatus:
    try:
        connection = connect(address)
    except Exception as exc:  # refused, no socket, auth failed or timed out
        return BusStatus(False, error=f"{exc} ({type(exc).__name__})")
    with contextlib.closing(connection):
        pid = secrets_owner(connection)
        if pid is None:
            return BusStatus(True)
        return BusStatus(True, pid, default_collection_locked(connection))


def probe_bus(address: str, timeout: float = UNLOCK_TIMEOUT) -> BusStatus:
    """Ask the bus at ``address`` about its Secret Service, within ``timeout``."""
    finished, result, error, _ = call_with_time_limit(_probe, address, timeout=timeout,
                                                      name=THREAD_NAME)
    if not finished:
        return BusStatus(False, error=f"no answer within {timeout:g} s")
    if error is not None:
        return BusStatus(True, error=f"{error} ({type(error).__name__})")
    assert isinstance(result, BusStatus)
    return result


def unlock_with_passphrase(address: str, passphrase: str) -> bool:
    """Unlock the running daemon's login keyring in place; True when it is unlocked.

    ``gnome-keyring-daemon --unlock`` does not unlock a daemon already on the
    bus (it starts a second one that stays off the bus), and ``--replace``
    leaves the running one locked as well; gnome-keyring's own D-Bus method
    does it, with the passphrase sent in an encrypted Secret Service session.
    """
    from jeepney import DBusAddress, new_method_call
    from secretstorage.util import format_secret, open_session

    connection = connect(address)
    with contextlib.closing(connection):
        service = DBusAddress(SECRETS_PATH, bus_name=SECRETS_BUS_NAME,
                              interface=SERVICE_INTERFACE)
        path = call(connection, new_method_call(service, "ReadAlias", "s", ("default",)))[0]
        if not path or path == "/":
            return False
        session = open_session(connection)
        secret = format_secret(session, passphrase.encode("utf-8"), "text/plain")
        internal = DBusAddress(SECRETS_PATH, bus_name=SECRETS_BUS_NAME,
                               interface=GNOME_KEYRING_INTERFACE)
        # An error reply ("The password was invalid") leaves it locked; checked below.
        connection.send_and_get_reply(
            new_method_call(internal, "UnlockWithMasterPassword", "o(oayays)", (path, secret)),
            timeout=UNLOCK_TIMEOUT,
        )
        return default_collection_locked(connection) is False


def lock_default_collection(address: str) -> bool:
    """Lock the default collection on the bus at ``address``; True when it is locked."""
    import secretstorage

    connection = connect(address)
    with contextlib.closing(connection):
        collection = secretstorage.Collection(connection, DEFAULT_COLLECTION)
        collection.lock()
        return bool(collection.is_locked())


def secret_service_provider() -> str | None:
    """Name of the program that owns org.freedesktop.secrets on the session bus in use
    (``DBUS_SESSION_BUS_ADDRESS``), e.g. gnome-keyring; None when it cannot be told."""
    try:
        import secretstorage
        from jeepney.bus_messages import message_bus

        with contextlib.closing(secretstorage.dbus_init()) as connection:
            reply = connection.send_and_get_reply(
                message_bus.GetConnectionUnixProcessID(SECRETS_BUS_NAME), timeout=1
            )
            pid = int(reply.body[0])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0", 1)[0].decode(errors="replace")
    except Exception:
        return None
    program = os.path.basename(argv0)
    if program.endswith("-daemon"):
        program = program[: -len("-daemon")]
    return program or None
