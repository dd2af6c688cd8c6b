"""Start-up time to the first painted screen: the console beside a bare Textual "hello".

    .venv/bin/python benchmarks/startup.py [RUNS]

Each run starts a fresh Python process in a pseudo-terminal (TERM=xterm-256color)
and measures, from just before the process starts, the time until the terminal
receives the first screen's text: "Hello" for the bare app, the Consumers tab's
column header for the console (and, separately, its first row: the store opens
behind the first screen, as the CLI's console does), opened on a SQLite store with
sample content and an in-memory keyring, so no keyring daemon is involved.  Prints
the medians.

Needs only the installed package (not the tests, nor pytest); bytecode is written first
(bench_support.compile_package), as an installed copy has it.  The command line's
start-up (`--version`, `--help`, `consumers list`, a TAB) is benchmarks/cli_speed.py.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench_support import compile_package

HELLO = """
from textual.app import App
from textual.widgets import Static
class Hello(App):
    def compose(self):
        yield Static("Hello")
Hello().run()
"""

#: A keyring in a dict (the tests' MemoryKeyring, without importing the tests).
MEMORY_KEYRING = """
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

class MemoryKeyring(KeyringBackend):
    priority = -1  # never chosen by keyring itself; given to open_store explicitly

    def __init__(self):
        super().__init__()
        self.items = {}

    def get_password(self, service, username):
        return self.items.get((service, username))

    def set_password(self, service, username, password):
        self.items[(service, username)] = password

    def delete_password(self, service, username):
        if self.items.pop((service, username), None) is None:
            raise PasswordDeleteError(username)
"""

CONSOLE = """
from tui_oauth.tui import run_console
from tui_oauth.tui.pending import PendingStore

def opener():  # as the CLI's console does: the store opens behind the first screen
    exec(MEMORY_KEYRING, globals())
    from tui_oauth.core.store import open_store
    return open_store({url!r}, secrets_backend=MemoryKeyring())

MEMORY_KEYRING = {keyring!r}
run_console(PendingStore(opener, url={url!r}, read_only=False))
"""


def first_paint(code: str, marker: bytes, timeout: float = 30.0) -> float:
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="100", LINES="30")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=slave, stdout=slave,
                            stderr=slave, env=env, close_fds=True, start_new_session=True)
    os.close(slave)
    seen = b""
    try:
        while time.perf_counter() - start < timeout:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
                if marker in seen:
                    return time.perf_counter() - start
        raise RuntimeError(f"never painted {marker!r}: {seen[-300:]!r}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        os.close(master)


def main(runs: int) -> None:
    compile_package()  # measured as installed: with bytecode
    from tui_oauth.core.store import open_store
    from tui_oauth.tui.demo import fill_demo_store

    namespace: dict[str, Any] = {}
    exec(MEMORY_KEYRING, namespace)  # noqa: S102 - the constant above
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        store = open_store(url, secrets_backend=namespace["MemoryKeyring"]())
        fill_demo_store(store)
        store.close()
        console = CONSOLE.replace("{url!r}", repr(url)).replace(
            "{keyring!r}", repr(MEMORY_KEYRING))
        first_paint(HELLO, b"Hello")  # warm the file cache once, not counted
        first_paint(console, b"confluence")
        hello, ours, rows = [], [], []
        for _ in range(runs):  # interleaved: a busy moment hits both alike
            hello.append(first_paint(HELLO, b"Hello"))
            ours.append(first_paint(console, b"Signature"))  # the tabs and list header
            rows.append(first_paint(console, b"confluence"))  # the first row read
    for label, times in (("bare Textual hello", hello), ("console, first screen", ours),
                         ("console, rows shown", rows)):
        median = statistics.median(times) * 1000
        print(f"{label:22}: median {median:6.0f} ms = "
              f"{median / (statistics.median(hello) * 1000):.2f}x hello "
              f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, {runs} runs)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
