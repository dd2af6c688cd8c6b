"""`tui-oauth keyring status|lock|stop`: the private keyring session used over SSH;
`keyring export-data-key|import-data-key`: the provider data key between hosts.

status, lock and stop start no session: they only look at, lock or end the one
that commands needing the keyring start when there is no D-Bus session bus.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from tui_oauth.cli.common import app_context, needs_keyring, print_fields, print_json, say


@click.group("keyring", epilog=(
    "Examples:\n\n\b\n  tui-oauth keyring status\n"
    "  tui-oauth keyring export-data-key -o data-key.json      (then, on the next host:)\n"
    "  tui-oauth keyring import-data-key data-key.json"))
def keyring_group() -> None:
    """The private keyring session (a dbus-daemon and a gnome-keyring of your own).

    With no D-Bus session bus (a plain SSH login), the first command that needs
    the keyring starts it and asks for the keyring passphrase; later commands,
    the console and the provider server reuse it without asking.
    """


def _backend(facts: dict[str, Any]) -> str:
    """The keyring backend a command would use now (the private session if it runs)."""
    from tui_oauth.core.keyring.store import SecretStore

    if facts["session_bus"] == "private session" and not os.environ.get(
            "DBUS_SESSION_BUS_ADDRESS"):
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = facts["bus"]  # this process only
    elif facts["session_bus"] == "user bus" and not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        from tui_oauth.core.keyring.session import default_user_bus

        os.environ["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={default_user_bus(os.environ)}"
    return SecretStore("keyring-status", timeout=5).backend_name


@keyring_group.command("status", epilog=(
    "Examples:\n\n\b\n  tui-oauth keyring status\n  tui-oauth keyring status --json"))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool) -> None:
    """Is a private keyring session running; its bus, pids, lock state, the backend."""
    from tui_oauth.core.keyring.session import session_status

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


@keyring_group.command("lock", epilog=(
    "Examples:\n\n\b\n  tui-oauth keyring lock"))
def lock() -> None:
    """Lock the private session's keyring: the next command asks for the passphrase."""
    from tui_oauth.core.keyring.session import lock_session

    if lock_session() is None:
        say("No private keyring session is running; nothing to lock.", err=True)
        return
    say("Locked the keyring of the private session; the next command that needs it "
        "asks for the passphrase.", err=True)


@keyring_group.command("stop", epilog=(
    "Examples:\n\n\b\n  tui-oauth keyring stop"))
def stop() -> None:
    """Stop the private session's dbus-daemon and gnome-keyring and remove its state."""
    from tui_oauth.core.keyring.session import stop_session

    state = stop_session()
    if state is None:
        say("No private keyring session is running.", err=True)
        return
    say(f"Stopped the private keyring session (dbus-daemon {state.dbus_pid}, "
        f"gnome-keyring {state.keyring_pid or '-'}).", err=True)


@keyring_group.command("export-data-key", epilog=(
    "Examples:\n\n\b\n  tui-oauth keyring export-data-key -o data-key.json\n"
    "  tui-oauth keyring export-data-key --passphrase-file pass.txt -o data-key.json"))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to FILE (mode 0600) instead of standard output; an existing "
                   "FILE only with --force.")
@click.option("--force", is_flag=True, help="Overwrite an existing --output file.")
@click.option("--passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read the passphrase from this file (its first line) instead of asking.")
@needs_keyring
def export_data_key_cmd(output: Path | None, force: bool, passphrase_file: Path | None) -> None:
    """Write the store's provider data key (it encrypts token secrets), encrypted under
    a passphrase (scrypt + AES-256-GCM), for `import-data-key` on another host.

    Several hosts sharing one PostgreSQL store need the same data key in their
    keyrings.
    """
    from tui_oauth.cli.transfer import read_passphrase, refuse_existing, to_json, write_output
    from tui_oauth.core.transfer import export_data_key

    refuse_existing(output, force)
    store = app_context().store
    passphrase = read_passphrase(passphrase_file, new=True)
    write_output(output, to_json(export_data_key(store, passphrase)), force=force)
    where = f" to {output}" if output is not None else ""
    say(f"Wrote the data key of store {store.store_id}, encrypted under the passphrase"
        f"{where}.", err=True)


@keyring_group.command("import-data-key", epilog=(
    "Examples:\n\n\b\n  tui-oauth keyring import-data-key data-key.json\n"
    "  tui-oauth keyring import-data-key --replace --passphrase-file pass.txt data-key.json"))
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True,
              help="Overwrite a different data key already there (token secrets encrypted "
                   "under it become unreadable).")
@click.option("--passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read the passphrase from this file (its first line) instead of asking.")
@click.option("--yes", is_flag=True, help="Do not ask before replacing a different key.")
@needs_keyring
def import_data_key_cmd(file: Path, replace: bool, passphrase_file: Path | None,
                        yes: bool) -> None:
    """Put the data key from FILE (written by `export-data-key`) in this host's keyring.

    A different key already there is overwritten only with --replace, after
    saying how many token secrets would become unreadable.
    """
    from tui_oauth.cli.common import confirm
    from tui_oauth.cli.transfer import read_input, read_passphrase
    from tui_oauth.core.transfer import (
        data_key_conflict,
        import_data_key,
        open_data_key,
        read_data_key_file,
    )

    store = app_context().store
    box = read_data_key_file(read_input(file, 64 * 1024), source=str(file))
    key = open_data_key(box, read_passphrase(passphrase_file, new=False), source=str(file))
    if replace:
        lost = data_key_conflict(store, key)
        if lost is not None:
            say(f"warning: this store already has a different data key; replacing it makes "
                f"{lost} token secret(s) encrypted under the old key unreadable.", err=True)
            confirm("Replace the data key?", yes)
    result = import_data_key(store, key, replace=replace)
    if result.action == "unchanged":
        say("This host's keyring already holds this data key; nothing was changed.", err=True)
    elif result.action == "change":
        say(f"Replaced the data key of store {store.store_id}; {result.tokens_unreadable} "
            "token secret(s) encrypted under the old key can no longer be read.", err=True)
    else:
        say(f"Imported the data key of store {store.store_id} into this host's keyring.",
            err=True)


@keyring_group.command("rotate-data-key", epilog=(
    "Examples:\n\n\b\n  tui-oauth keyring rotate-data-key\n"
    "  tui-oauth keyring rotate-data-key --batch 200      # gentler beside a busy server\n"
    "  tui-oauth keyring export-data-key -o key.json      # then, for other hosts"))
@click.option("--batch", type=click.IntRange(10, 10_000), default=500, show_default=True,
              help="Token secrets re-encrypted per transaction.")
# Seconds given to servers to notice the new key before the last passes (they check
# every second); hidden: only tests, with no server running, shorten it.
@click.option("--settle", type=click.FloatRange(0, 60), default=3.0, hidden=True)
@needs_keyring
def rotate_data_key_cmd(batch: int, settle: float) -> None:
    """Give the store a new provider data key and re-encrypt every token secret under it.

    Safe while `serve` runs: servers read the old and the new key until the end (they
    notice the rotation within a second). If it is interrupted, running it again
    resumes where it stopped. On several hosts sharing one PostgreSQL store, give the
    other hosts the new key with `export-data-key` / `import-data-key`; until they have
    it, the old key is kept (and said so).
    """
    from tui_oauth.core.provider.crypto import rotate_data_key

    store = app_context().store
    say("Rotating the data key (token secrets are re-encrypted in batches)…", err=True)
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        if n >= done + 10_000:
            done = n
            say(f"  {n:,} re-encrypted so far", err=True)

    result = rotate_data_key(store, batch=batch, settle=settle, progress=progress)
    how = "Resumed the rotation: " if result.resumed else ""
    if result.finished:
        say(f"{how}the data key is rotated; {result.reencrypted:,} token secret(s) "
            "re-encrypted, and the old key deleted from this keyring.", err=True)
        return
    say(f"{how}{result.reencrypted:,} token secret(s) re-encrypted, but a server still "
        "writes with the old key (another host whose keyring lacks the new one?). The old "
        "key is kept: give every host the new key (export-data-key / import-data-key), "
        "then run this again to finish.", err=True)
    raise SystemExit(1)
