"""ensure_secret_service: pure helpers, then real runs without a session bus.

The end-to-end tests start ``python -m tests.keyring_session_probe`` (a
stand-in for the CLI) with no D-Bus session bus and a fresh HOME, so that it
has to start its own private gnome-keyring session through dbus-run-session.
They need gnome-keyring and dbus installed; they skip only when those are
absent and TUI_OAUTH_TEST_SERVICES is unset.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui_oauth.core import keyring_session as ks
from tui_oauth.core.errors import SecretStoreError

REPO = Path(__file__).resolve().parent.parent
SERVICES_REQUIRED = os.environ.get("TUI_OAUTH_TEST_SERVICES") == "1"
HAVE_TOOLS = bool(shutil.which("gnome-keyring-daemon") and shutil.which("dbus-run-session"))
PASSPHRASE = "correct horse battery staple"
SECRET = "s3cret-value-in-the-keyring"

# ---------------------------------------------------------------- needs_private_session


@pytest.fixture
def no_socket(tmp_path: Path) -> str:
    return str(tmp_path / "no-bus")


def test_needs_private_session_without_anything(no_socket: str) -> None:
    assert ks.needs_private_session({}, user_bus=no_socket) is True
    assert ks.needs_private_session({"HOME": "/root"}, user_bus=no_socket) is True


@pytest.mark.parametrize(
    "env",
    [
        {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/0/bus"},
        {"PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring"},
        {"TUI_OAUTH_PRIVATE_SESSION": "1"},
    ],
)
def test_no_private_session_when_env_says_so(env: dict[str, str], no_socket: str) -> None:
    assert ks.needs_private_session(env, user_bus=no_socket) is False


def test_empty_values_do_not_count(no_socket: str) -> None:
    env = {"DBUS_SESSION_BUS_ADDRESS": "", "PYTHON_KEYRING_BACKEND": "",
           "TUI_OAUTH_PRIVATE_SESSION": "0"}
    assert ks.needs_private_session(env, user_bus=no_socket) is True


def test_user_bus_socket_counts_but_a_plain_file_does_not(tmp_path: Path) -> None:
    path = tmp_path / "bus"
    path.write_text("not a socket")
    assert ks.needs_private_session({}, user_bus=str(path)) is True
    path.unlink()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        assert ks.needs_private_session({}, user_bus=str(path)) is False


def test_default_user_bus_follows_xdg_runtime_dir() -> None:
    assert ks.default_user_bus({"XDG_RUNTIME_DIR": "/tmp/x"}) == "/tmp/x/bus"
    assert ks.default_user_bus({}) == f"/run/user/{os.getuid()}/bus"


# ---------------------------------------------------------------- read_passphrase


def _file(tmp_path: Path, content: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "passphrase"
    path.write_bytes(content)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"pw", "pw"), (b"pw\n", "pw"), (b"pw\n\n", "pw\n"), (b"pw\r\n", "pw"),
     (b" spaced pw \n", " spaced pw "), ("pässwörd\n".encode(), "pässwörd")],
)
def test_passphrase_from_file(tmp_path: Path, content: bytes, expected: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, content)
    env = {ks.ENV_PASSPHRASE_FILE: str(path)}
    assert ks.read_passphrase(env, stdin_is_tty=False) == expected
    assert capsys.readouterr().err == ""  # 0600: no warning


@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n"])
def test_empty_passphrase_file_is_refused(tmp_path: Path, content: bytes) -> None:
    env = {ks.ENV_PASSPHRASE_FILE: str(_file(tmp_path, content))}
    with pytest.raises(SecretStoreError, match="is empty"):
        ks.read_passphrase(env, stdin_is_tty=True)


def test_unreadable_passphrase_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(SecretStoreError, match="Cannot read the keyring passphrase file") as info:
        ks.read_passphrase({ks.ENV_PASSPHRASE_FILE: str(missing)}, stdin_is_tty=True)
    assert str(missing) in info.value.message
    with pytest.raises(SecretStoreError, match="Cannot read"):  # a directory
        ks.read_passphrase({ks.ENV_PASSPHRASE_FILE: str(tmp_path)}, stdin_is_tty=True)


def test_passphrase_file_not_utf8(tmp_path: Path) -> None:
    env = {ks.ENV_PASSPHRASE_FILE: str(_file(tmp_path, b"\xff\xfe"))}
    with pytest.raises(SecretStoreError, match="UTF-8"):
        ks.read_passphrase(env, stdin_is_tty=False)


def test_world_readable_passphrase_file_warns(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, b"pw\n", mode=0o644)
    assert ks.read_passphrase({ks.ENV_PASSPHRASE_FILE: str(path)}, stdin_is_tty=False) == "pw"
    err = capsys.readouterr().err
    assert "chmod 600" in err and "0644" in err
    assert "pw\n" not in err.replace(str(path), "")


def test_no_file_and_no_tty_is_refused() -> None:
    with pytest.raises(SecretStoreError, match="stdin is not a terminal") as info:
        ks.read_passphrase({}, stdin_is_tty=False)
    assert ks.ENV_PASSPHRASE_FILE in (info.value.hint or "")


def test_tty_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return "typed"

    monkeypatch.setattr(ks.getpass, "getpass", fake_getpass)
    assert ks.read_passphrase({}, stdin_is_tty=True) == "typed"
    assert prompts == [ks.PROMPT]
    monkeypatch.setattr(ks.getpass, "getpass", lambda prompt="": "")
    with pytest.raises(SecretStoreError, match="must not be empty"):
        ks.read_passphrase({}, stdin_is_tty=True)


# ---------------------------------------------------------------- ensure_secret_service in-process


def test_returns_at_once_with_a_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
    ks.ensure_secret_service(["prog"], stdin_is_tty=False)  # no exit, no error


def test_points_jeepney_at_the_user_bus(monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.delenv(ks.ENV_MARKER, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "bus"))
        ks.ensure_secret_service(["prog"], stdin_is_tty=False)
    assert os.environ["DBUS_SESSION_BUS_ADDRESS"] == f"unix:path={tmp_path}/bus"


def test_returns_when_gnome_keyring_is_missing(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    for name in ("DBUS_SESSION_BUS_ADDRESS", "PYTHON_KEYRING_BACKEND", ks.ENV_MARKER):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    ks.ensure_secret_service(["prog"], stdin_is_tty=False)  # SecretStore.check() explains


# ---------------------------------------------------------------- end to end, no session bus

e2e = pytest.mark.skipif(
    not HAVE_TOOLS and not SERVICES_REQUIRED,
    reason="gnome-keyring-daemon / dbus-run-session not installed",
)


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, Path]:
    home = tmp_path / "home"
    run = tmp_path / "run"
    home.mkdir()
    run.mkdir(mode=0o700)
    good = tmp_path / "good-passphrase"
    good.write_text(PASSPHRASE + "\n")
    good.chmod(0o600)
    wrong = tmp_path / "wrong-passphrase"
    wrong.write_text("not the passphrase")
    wrong.chmod(0o600)
    return {"home": home, "run": run, "good": good, "wrong": wrong}


def _probe(sandbox: dict[str, Path], *args: str, passphrase_file: Path | None = None,
           home: Path | None = None, extra: dict[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.keyring_session_probe", *args],
        cwd=REPO, env=_probe_env(sandbox, passphrase_file, home, extra),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )


def _probe_env(sandbox: dict[str, Path], passphrase_file: Path | None = None,
               home: Path | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a session without a bus: no D-Bus, a fresh HOME."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DBUS_SESSION_BUS_ADDRESS", "PYTHON_KEYRING_BACKEND",
                        "GNOME_KEYRING_CONTROL")
           and not k.startswith("TUI_OAUTH_")}
    env["HOME"] = str(home if home is not None else sandbox["home"])
    env["XDG_RUNTIME_DIR"] = str(sandbox["run"])  # no /run/user/<uid>/bus to find
    # Not the keyring of the surrounding test session (make test sets these).
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env.pop(var, None)
    if passphrase_file is not None:
        env[ks.ENV_PASSPHRASE_FILE] = str(passphrase_file)
    env.update(extra or {})
    return env


def _assert_clean_failure(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode != 0, done.stdout
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert "hint: " in done.stderr


@e2e
def test_private_session_round_trip_and_persistence(sandbox: dict[str, Path]) -> None:
    t0 = time.monotonic()
    first = _probe(sandbox, "roundtrip", "db-1", SECRET, passphrase_file=sandbox["good"])
    elapsed = time.monotonic() - t0
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("OK SecretService (gnome-keyring) "), first.stdout
    assert "names=['consumer/probe/shared-secret']" in first.stdout
    # dbus-daemon's log lines ("Failed to set fd limit" as root) are filtered out.
    assert "dbus-daemon" not in first.stderr and "fd limit" not in first.stderr, first.stderr
    assert elapsed < 20
    keyring_file = sandbox["home"] / ".local/share/keyrings/login.keyring"
    assert keyring_file.is_file()
    data = keyring_file.read_bytes()
    assert SECRET.encode() not in data and PASSPHRASE.encode() not in data  # encrypted

    # A second run, a new private session: the secret is still there.
    second = _probe(sandbox, "read", "db-1", passphrase_file=sandbox["good"])
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == f"VALUE {SECRET}"

    # The wrong passphrase leaves the keyring locked: a clear error, no traceback.
    wrong = _probe(sandbox, "read", "db-1", passphrase_file=sandbox["wrong"])
    _assert_clean_failure(wrong, "The keyring passphrase is wrong: the login keyring "
                                 "stayed locked.")
    assert SECRET not in wrong.stdout + wrong.stderr


@e2e
def test_two_sessions_at_once_share_the_keyring(sandbox: dict[str, Path]) -> None:
    """Each private session has its own daemon; both use the same keyring file."""
    first = _probe(sandbox, "roundtrip", "db-1", "before", passphrase_file=sandbox["good"])
    assert first.returncode == 0, first.stderr
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.keyring_session_probe", "hold", "db-1", "1.5"],
        cwd=REPO, env=_probe_env(sandbox, sandbox["good"]), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(0.5)
        second = _probe(sandbox, "roundtrip", "db-1", "during",
                            passphrase_file=sandbox["good"])
        assert second.returncode == 0, second.stderr
        out, err = holder.communicate(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert holder.returncode == 0, err
    assert out.strip() == "OK VALUE during"  # the running daemon sees the other's write
    assert "control socket" not in err + second.stderr


@e2e
def test_passphrase_never_in_argv_or_environment(sandbox: dict[str, Path]) -> None:
    done = _probe(sandbox, "env", "db-1", passphrase_file=sandbox["good"])
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["private"] == "1"
    assert facts["bus"] is True
    assert facts["passphrase_fd"] is None and facts["stderr_fd"] is None  # removed after use
    assert PASSPHRASE not in facts["cmdline"]
    assert all(PASSPHRASE not in v for v in facts["environ"].values())
    assert "env" in facts["cmdline"] and "tests.keyring_session_probe" in facts["cmdline"]


@e2e
def test_exit_status_is_passed_through(sandbox: dict[str, Path]) -> None:
    done = _probe(sandbox, "exit", "db-1", "7", passphrase_file=sandbox["good"])
    assert done.returncode == 7, done.stderr


@e2e
def test_no_passphrase_file_and_no_tty(sandbox: dict[str, Path]) -> None:
    done = _probe(sandbox, "read", "db-1")
    _assert_clean_failure(done, "stdin is not a terminal")
    assert ks.ENV_PASSPHRASE_FILE in done.stderr


@e2e
def test_missing_home_is_a_clear_error(sandbox: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-home"
    done = _probe(sandbox, "read", "db-1", passphrase_file=sandbox["good"], home=missing,
                  timeout=30)
    _assert_clean_failure(done, f"HOME ({missing}) does not exist")


@e2e
def test_locked_collection_is_refused_quickly(sandbox: dict[str, Path]) -> None:
    done = _probe(sandbox, "lock", "db-1", passphrase_file=sandbox["good"])
    assert done.returncode == 0, done.stdout + done.stderr
    word, seconds, message = done.stdout.split(" ", 2)
    assert word == "REFUSED"
    assert float(seconds) < 2  # no prompt, no hang
    assert "is locked" in message and "gnome-keyring-daemon --replace --unlock" in message


@e2e
def test_keyring_backend_from_env_skips_the_private_session(sandbox: dict[str, Path]) -> None:
    done = _probe(sandbox, "env", "db-1", passphrase_file=sandbox["good"],
                  extra={"PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"})
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["private"] is None and facts["bus"] is False
