"""The keyring bootstrap, end to end: the real CLI with no D-Bus session bus.

Like a plain SSH login: no DBUS_SESSION_BUS_ADDRESS, a fresh HOME and
XDG_RUNTIME_DIR (tests/keyring_sandbox.py), and the keyring passphrase in a 0600
file named by TUI_OAUTH_KEYRING_PASSPHRASE_FILE.  The first command that needs
the keyring starts the user's private session (dbus-daemon + gnome-keyring),
later ones reuse it, and the keyring file persists in HOME.  Each test's
finalizer kills the daemons it started.  Needs gnome-keyring-daemon and
dbus-daemon on PATH.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_support import Cli, base_env
from tests.conftest import need_service
from tests.helpers import pem_spki, rsa_key
from tests.keyring_sandbox import Sandbox

PASSPHRASE = "bootstrap passphrase \u00e9 42"
SECRET = "Bootstrap-distinctive-secret-55kq"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[dict[str, Path]]:
    if not (shutil.which("gnome-keyring-daemon") and shutil.which("dbus-daemon")):
        need_service("gnome-keyring-daemon and dbus-daemon")
    box = Sandbox.create(tmp_path)
    box.good.write_text(PASSPHRASE + "\n")
    box.wrong.write_text("not it\n")
    try:
        yield {"home": box.home, "run": box.runtime, "good": box.good, "wrong": box.wrong,
               "tmp": tmp_path}
    finally:
        box.stop()  # kill the daemons this test's session started


def no_bus_cli(sandbox: dict[str, Path], passphrase_file: Path | None) -> Cli:
    env = {k: v for k, v in base_env().items()
           if k not in ("DBUS_SESSION_BUS_ADDRESS", "PYTHON_KEYRING_BACKEND",
                        "GNOME_KEYRING_CONTROL", "SSH_AUTH_SOCK")
           and not k.startswith(("TUI_OAUTH_", "XDG_"))}
    env["HOME"] = str(sandbox["home"])
    env["XDG_RUNTIME_DIR"] = str(sandbox["run"])  # no /run/user/<uid>/bus to find
    if passphrase_file is not None:
        env["TUI_OAUTH_KEYRING_PASSPHRASE_FILE"] = str(passphrase_file)
    return Cli(f"sqlite:///{sandbox['tmp'] / 's.db'}", env=env)


def test_private_session_starts_by_itself(sandbox: dict[str, Path]) -> None:
    cli = no_bus_cli(sandbox, sandbox["good"])
    assert "DBUS_SESSION_BUS_ADDRESS" not in cli.env

    r = cli("consumers", "add", "--key", "ssh:1", "--name", "Over SSH", "--secret-stdin",
            "--json", input=SECRET + "\n")
    assert r.stdout.startswith("{") and r.stdout.endswith("}\n")  # nothing else on stdout
    assert r.json()["has_shared_secret"] is True
    assert "dbus-daemon" not in r.stderr and "fd limit" not in r.stderr, r.stderr
    keyring_file = sandbox["home"] / ".local/share/keyrings/login.keyring"
    assert keyring_file.is_file()

    shown = cli("consumers", "show", "ssh:1", "--json")
    assert shown.json()["key"] == "ssh:1"
    info = cli("info", "show", "--json")  # needs the keyring: joins the running session
    assert info.stdout.startswith("{") and info.json()["public_key"]["bits"] >= 2048

    # Later commands reuse the running session: no passphrase needed any more.
    status = no_bus_cli(sandbox, None)("keyring", "status", "--json")
    assert status.stdout.startswith("{") and status.json()["running"] is True
    assert status.json()["locked"] is False
    assert no_bus_cli(sandbox, None)("info", "show", "--json").json() == info.json()

    # A new private session finds both secrets again: the keyring file persisted.
    stopped = cli("keyring", "stop")
    assert stopped.stdout == "" and "Stopped the private keyring session" in stopped.stderr
    report = cli("doctor", "--json").json()
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["keyring"] == "ok" and statuses["rows without secret"] == "ok"
    assert report["rows_without_secret"] == []

    # User errors inside the private session keep their exit code and message.
    r = cli("consumers", "remove", "nope", "--yes", rc=1)
    assert r.stderr.startswith("error: No consumer with key 'nope'.")

    data = keyring_file.read_bytes()
    assert SECRET.encode() not in data and PASSPHRASE.encode() not in data
    assert SECRET not in cli.everything_printed()
    assert PASSPHRASE not in cli.everything_printed()


def test_wrong_passphrase_is_refused_cleanly(sandbox: dict[str, Path]) -> None:
    good = no_bus_cli(sandbox, sandbox["good"])
    good("consumers", "add", "--key", "k", "--name", "K", "--secret-stdin",
         input=SECRET + "\n")
    good("keyring", "stop")  # the next command starts the session: it needs the passphrase
    cli = no_bus_cli(sandbox, sandbox["wrong"])
    r = cli("consumers", "edit", "k", "--secret-stdin", input="new-secret\n", rc=1)
    assert r.stdout == ""
    assert r.stderr.startswith("error: The keyring passphrase is wrong: the login keyring "
                               "stayed locked."), r.stderr
    assert len(r.stderr.splitlines()) == 1
    r = cli("doctor", "--json", rc=1)
    assert r.stdout == "" and "passphrase is wrong" in r.stderr
    # Listing needs no keyring, so it works whatever the passphrase.
    assert [c["key"] for c in cli("consumers", "list", "--json").json()] == ["k"]
    # Nothing was changed by the refused edit.
    assert good("audit", "--json").json()["entries"][0]["action"] == "consumer.add"
    # A locked session (tui-oauth keyring lock) refuses the wrong passphrase the same way.
    good("info", "show")
    good("keyring", "lock")
    r = cli("consumers", "edit", "k", "--secret-stdin", input="new-secret\n", rc=1)
    assert r.stdout == "" and len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith("error: The keyring passphrase is wrong"), r.stderr
    good("consumers", "edit", "k", "--secret-stdin", input="new-secret\n")


def test_no_passphrase_and_no_terminal(sandbox: dict[str, Path]) -> None:
    cli = no_bus_cli(sandbox, None)
    r = cli("info", "show", rc=1)
    assert r.stderr.startswith("error: There is no D-Bus session bus")
    assert "TUI_OAUTH_KEYRING_PASSPHRASE_FILE" in r.stderr
    missing = no_bus_cli(sandbox, sandbox["tmp"] / "missing")
    r = missing("info", "show", rc=1)
    assert r.stderr.startswith("error: Cannot read the keyring passphrase file")


def test_world_readable_passphrase_file_warns(sandbox: dict[str, Path]) -> None:
    os.chmod(sandbox["good"], 0o644)
    r = no_bus_cli(sandbox, sandbox["good"])("info", "show", "--json")
    assert r.json()["key"].startswith("tui-oauth:")
    assert "chmod 600" in r.stderr


def test_commands_that_need_no_secret_ask_for_no_passphrase(sandbox: dict[str, Path],
                                                            tmp_path: Path) -> None:
    """An RSA consumer (no secret) is added and edited with no keyring at all; the same
    command with a secret does need it, and says so."""
    pub = tmp_path / "pub.pem"
    pub.write_text(pem_spki(rsa_key()))
    cli = no_bus_cli(sandbox, None)  # no passphrase, no terminal: the keyring is unreachable
    cli("consumers", "add", "--key", "rsa:1", "--name", "RSA", "--public-key-file", str(pub))
    cli("consumers", "edit", "rsa:1", "--name", "RSA consumer", "--2lo")
    assert cli("consumers", "show", "rsa:1", "--json").json()["name"] == "RSA consumer"
    assert not (sandbox["home"] / ".local/share/keyrings").exists()  # never started
    r = cli("consumers", "edit", "rsa:1", "--secret-stdin", input="s3cret\n", rc=1)
    assert "TUI_OAUTH_KEYRING_PASSPHRASE_FILE" in r.stderr
