"""A stand-in for the CLI, run by tests/test_keyring_session.py as
``python -m tests.keyring_session_probe MODE NAMESPACE [VALUE]`` from the repo root.

It calls ensure_secret_service() the way the CLI's main does (re-running itself
under a private D-Bus session when there is no session bus), then does MODE:

  roundtrip  store VALUE under NAMESPACE, read it back, print OK and the backend
  read       print the value stored under NAMESPACE by an earlier run
  lock       lock the login keyring, then show that SecretStore refuses it quickly
  env        print facts about the inner environment (no secrets)
  exit       exit with status int(VALUE)
  hold       check the keyring, sleep VALUE seconds, then print the stored value

Errors of tui-oauth are printed as ``error: ...`` / ``hint: ...`` on stderr with
status 1 (as the CLI does); anything else is a traceback, which the tests reject.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from tui_oauth.core.errors import TuiOAuthError
from tui_oauth.core.keyring_session import ensure_secret_service
from tui_oauth.core.secrets import SecretStore

MODULE = "tests.keyring_session_probe"
NAME = "consumer/probe/shared-secret"


def run(argv: list[str]) -> int:
    mode, namespace = argv[1], argv[2]
    value = argv[3] if len(argv) > 3 else ""
    ensure_secret_service(argv, module=MODULE)
    if mode == "exit":
        return int(value)
    if mode == "env":
        print(json.dumps({
            "private": os.environ.get("TUI_OAUTH_PRIVATE_SESSION"),
            "passphrase_fd": os.environ.get("TUI_OAUTH_PASSPHRASE_FD"),
            "stderr_fd": os.environ.get("TUI_OAUTH_STDERR_FD"),
            "bus": bool(os.environ.get("DBUS_SESSION_BUS_ADDRESS")),
            "control": bool(os.environ.get("GNOME_KEYRING_CONTROL")),
            "environ": dict(os.environ),
            "cmdline": Path("/proc/self/cmdline").read_bytes().decode(errors="replace"),
            "stderr_isatty": os.isatty(2),
        }))
        return 0
    store = SecretStore(namespace, timeout=10)
    store.check()
    if mode == "roundtrip":
        t0 = time.perf_counter()
        store.set(NAME, value)
        t1 = time.perf_counter()
        got = store.get(NAME)
        t2 = time.perf_counter()
        if got != value:
            print("MISMATCH", file=sys.stderr)
            return 2
        print(f"OK {store.backend_name} names={store.list_names()} "
              f"set_ms={(t1 - t0) * 1000:.1f} get_ms={(t2 - t1) * 1000:.1f}")
        return 0
    if mode == "hold":
        time.sleep(float(value))
        store.check()
        print(f"OK VALUE {store.get(NAME)}")
        return 0
    if mode == "read":
        print(f"VALUE {store.get(NAME)}")
        return 0
    if mode == "lock":
        import secretstorage

        conn = secretstorage.dbus_init()
        secretstorage.get_default_collection(conn).lock()
        fresh = SecretStore(namespace, timeout=10)
        t0 = time.perf_counter()
        try:
            fresh.get(NAME)
        except TuiOAuthError as exc:
            print(f"REFUSED {time.perf_counter() - t0:.3f} {exc}")
            return 0
        print("NOT REFUSED")
        return 3
    raise SystemExit(f"unknown mode {mode!r}")


def main() -> None:
    try:
        sys.exit(run(sys.argv))
    except TuiOAuthError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
