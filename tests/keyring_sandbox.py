"""A login without a D-Bus session bus, for the private keyring session tests.

``Sandbox`` is a fresh HOME and XDG_RUNTIME_DIR under ``tmp_path`` and the
environment of a plain SSH login (no DBUS_SESSION_BUS_ADDRESS, no XDG_* of the
surrounding ``make test`` session), so that tui-oauth has to start its own
private dbus-daemon + gnome-keyring.  XDG_RUNTIME_DIR is a short symlink in
/tmp to ``tmp_path/run``: pytest's tmp_path is too long for a Unix socket path.

``stop()`` (the fixtures' finalizer) kills the daemons the sandbox's session
recorded, then any other dbus-daemon / gnome-keyring-daemon started with this
sandbox's HOME, and removes the symlink: no test leaves a daemon behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tui_oauth.core.keyring import passphrase as kpass
from tui_oauth.core.keyring import state as kstate

PASSPHRASE = "correct horse battery staple \u00e9"
DAEMONS = ("dbus-daemon", "gnome-keyring-daemon")
_DROP = ("DBUS_SESSION_BUS_ADDRESS", "PYTHON_KEYRING_BACKEND", "GNOME_KEYRING_CONTROL",
         "SSH_AUTH_SOCK", "DBUS_STARTER_ADDRESS", "DBUS_STARTER_BUS_TYPE")


def _short_alias(target: Path, prefix: str) -> Path:
    """A symlink /tmp/<prefix>XXXXXXXX -> target (a short path for sockets)."""
    while True:
        name = Path(tempfile.mktemp(prefix=prefix, dir="/tmp"))  # noqa: S306 (symlink below)
        try:
            name.symlink_to(target)
        except FileExistsError:
            continue
        return name


def _comm(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        if data.rsplit(b")", 1)[-1].split()[0] == b"Z":
            return None  # a zombie is gone for our purposes
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0", 1)[0]
        return os.path.basename(argv0.decode(errors="replace"))
    except (OSError, IndexError):
        return None


def alive(pid: int | None) -> bool:
    return bool(pid) and _comm(int(pid or 0)) in DAEMONS


def kill(pid: int, timeout: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.02)
        if not alive(pid):
            return


def kill9(pid: int, timeout: float = 5.0) -> None:
    """SIGKILL, as a crash would, and wait until it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.02)


@dataclass
class Sandbox:
    tmp: Path
    home: Path  # the real directory
    run: Path  # the real XDG_RUNTIME_DIR
    runtime: Path  # its short alias, what the programs see
    home_env: Path  # HOME as the programs see it
    good: Path
    wrong: Path
    use_runtime_dir: bool = True
    passphrase: str = PASSPHRASE

    @classmethod
    def create(cls, tmp: Path, *, short_home: bool = False) -> Sandbox:
        home = tmp / "home"
        run = tmp / "run"
        home.mkdir()
        run.mkdir(mode=0o700)
        good = tmp / "good-passphrase"
        good.write_text(PASSPHRASE + "\n")
        good.chmod(0o600)
        wrong = tmp / "wrong-passphrase"
        wrong.write_text("not the passphrase\n")
        wrong.chmod(0o600)
        runtime = _short_alias(run, "tok-run-")
        home_env = _short_alias(home, "tok-home-") if short_home else home
        return cls(tmp, home, run, runtime, home_env, good, wrong)

    def env(self, passphrase_file: Path | None = None,
            extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a plain SSH login: no D-Bus, this sandbox's HOME."""
        env = {k: v for k, v in os.environ.items()
               if k not in _DROP and not k.startswith(("TUI_OAUTH_", "XDG_"))}
        env["HOME"] = str(self.home_env)
        if self.use_runtime_dir:
            env["XDG_RUNTIME_DIR"] = str(self.runtime)  # no /run/user/<uid>/bus to find
        if passphrase_file is not None:
            env[kpass.ENV_PASSPHRASE_FILE] = str(passphrase_file)
        env.update(extra or {})
        return env

    @property
    def state_dir(self) -> Path:
        return Path(kstate.state_dir(self.env()))

    def state(self) -> kstate.SessionState | None:
        return kstate.read_state(str(self.state_dir))

    @property
    def keyring_file(self) -> Path:
        return self.home / ".local/share/keyrings/login.keyring"

    def daemons(self) -> dict[str, list[int]]:
        """Live dbus-daemon / gnome-keyring-daemon processes started with this HOME."""
        found: dict[str, list[int]] = {name: [] for name in DAEMONS}
        marker = f"HOME={self.home_env}".encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            comm = _comm(pid)
            if comm not in DAEMONS:
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        found[comm].append(pid)
            except OSError:
                continue
        return found

    def stop(self) -> None:
        state = self.state()
        if state is not None:
            for pid in (state.keyring_pid, state.dbus_pid):
                if pid and alive(pid):
                    kill(pid)
        for pids in self.daemons().values():
            for pid in pids:
                kill(pid)
        for alias in {self.runtime, self.home_env} - {self.home}:
            with contextlib.suppress(FileNotFoundError):
                alias.unlink()
