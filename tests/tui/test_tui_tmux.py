"""The real console in tmux at 80x24: keys sent as one string (tmux send-keys, as a
paste or a slow SSH link delivers them) land where the user meant."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.keyring_backends import MemoryKeyring
from tui_oauth.core.store import open_store
from tui_oauth.tui.demo import fill_demo_store

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
ROOT = Path(__file__).resolve().parents[2]


class Tmux:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True, timeout=10,
                              capture_output=True, text=True).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "console")

    def wait(self, condition: Callable[[str], bool], timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        text = self.screen()
        while not condition(text) and time.monotonic() < deadline:
            time.sleep(0.05)
            text = self.screen()
        return text


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Tmux]:
    db = tmp_path / "store.db"
    store = open_store(f"sqlite:///{db}", secrets_backend=MemoryKeyring())
    fill_demo_store(store, secrets=False)
    store.close()
    tmux = Tmux(f"tui-oauth-test-{uuid.uuid4().hex[:8]}")
    env = {**os.environ, "TERM": "xterm-256color", "PYTHONPATH": str(ROOT),
           "PYTHON_KEYRING_BACKEND": "tests.keyring_backends.MemoryKeyring"}
    command = f"{sys.executable} -m tui_oauth --db sqlite:///{db}"
    subprocess.run(["tmux", "-L", tmux.socket, "-f", "/dev/null", "new-session", "-d",
                    "-s", "console", "-x", "80", "-y", "24", command],
                   check=True, timeout=10, env=env, cwd=ROOT)
    try:
        yield tmux
    finally:
        subprocess.run(["tmux", "-L", tmux.socket, "kill-server"], timeout=10,
                       capture_output=True)


def test_slash_and_a_filter_in_one_send_keys(console: Tmux) -> None:
    text = console.wait(lambda t: "Partner portal" in t)
    assert "Partner portal" in text, text
    console.run("send-keys", "-t", "console", "-l", "/jira")
    # Wait for the whole burst: after "ji" the list already shows one consumer.
    text = console.wait(lambda t: "Partner portal" not in t and "matching “jira”" in t)
    assert "Add a consumer" not in text, text  # `a` did not open Add
    assert "jira" in text and "JIRA" in text and "Partner portal" not in text, text
    # Enter goes back to the list; a stray `q` there quits
    console.run("send-keys", "-t", "console", "Enter")
    console.run("send-keys", "-t", "console", "-l", "q")
    assert "OAuth Administration" not in console.wait(
        lambda t: "OAuth Administration" not in t)


def test_add_and_two_fields_in_one_send_keys(console: Tmux) -> None:
    console.wait(lambda t: "Partner portal" in t)
    console.run("send-keys", "-t", "console", *"amkk1", "Tab", *"nn2")
    text = console.wait(lambda t: "nn2" in t)
    lines = text.splitlines()
    key_line = next(i for i, line in enumerate(lines) if "kk1" in line)
    name_line = next(i for i, line in enumerate(lines) if "nn2" in line)
    assert name_line > key_line, text  # two fields, not "kk1nn2" in the first
    assert "kk1nn2" not in text, text
    # a stray q in the filled form is text, and Esc asks before dropping it
    console.run("send-keys", "-t", "console", "q")
    text = console.wait(lambda t: "nn2q" in t)
    assert "nn2q" in text, text
    console.run("send-keys", "-t", "console", "Escape")
    text = console.wait(lambda t: "Discard changes?" in t)
    assert "Discard changes?" in text, text
