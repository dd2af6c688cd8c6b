"""A stand-in for the CLI, run by tests/e2e/test_keyring_session.py as
``python -m tests.keyring_session_probe MODE NAMESPACE [ARGS...]`` from the repo root.

It calls ensure_secret_service() the way the CLI does, with the CLI's
passphrase prompt and warning callbacks (joining, unlocking or starting the
user's private keyring session when there is no session bus), then does MODE:

  roundtrip NS VALUE   store VALUE as item "main", read it back, print OK and the backend
  put NS ITEM VALUE    store VALUE as ITEM, print OK
  read NS [ITEM]       print VALUE and the value of ITEM ("main" by default)
  meet NS MINE VALUE THEIRS READY GO
                       store VALUE as MINE, create the file READY, wait for the file GO
                       (30 s at most), then print SEES and the value of THEIRS
  env NS               print facts about this process (no secrets) as JSON

Errors of tui-oauth are printed as ``error: ...`` / ``hint: ...`` on stderr with
status 1 (as the CLI does); anything else is a traceback, which the tests reject.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from tui_oauth.cli.common import ask_keyring_passphrase, say_warning
from tui_oauth.core.errors import TuiOAuthError
from tui_oauth.core.keyring.session import ensure_secret_service
from tui_oauth.core.keyring.store import SecretStore

PREFIX = "consumer/probe/"


def run(argv: list[str]) -> int:
    mode, namespace, args = argv[1], argv[2], argv[3:]
    ensure_secret_service(ask_passphrase=ask_keyring_passphrase(), warn=say_warning)
    if mode == "env":
        print(json.dumps({
            "bus": os.environ.get("DBUS_SESSION_BUS_ADDRESS"),
            "control": os.environ.get("GNOME_KEYRING_CONTROL"),
            "environ": dict(os.environ),
            "cmdline": Path("/proc/self/cmdline").read_bytes().decode(errors="replace"),
            "pid": os.getpid(),
            "sid": os.getsid(0),
        }))
        return 0
    store = SecretStore(namespace, timeout=10)
    store.check()
    if mode == "roundtrip":
        store.set(PREFIX + "main", args[0])
        got = store.get(PREFIX + "main")
        if got != args[0]:
            print("MISMATCH", file=sys.stderr)
            return 2
        print(f"OK {store.backend_name} names={store.list_names()}")
        return 0
    if mode == "put":
        store.set(PREFIX + args[0], args[1])
        print("OK")
        return 0
    if mode == "read":
        print(f"VALUE {store.get(PREFIX + (args[0] if args else 'main'))}")
        return 0
    if mode == "meet":
        mine, value, theirs, ready, go = args
        store.set(PREFIX + mine, value)
        Path(ready).touch()
        deadline = time.monotonic() + 30
        while not Path(go).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        print(f"SEES {store.get(PREFIX + theirs)}")
        return 0
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
