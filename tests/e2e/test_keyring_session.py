"""The private keyring session: pure helpers, then real runs without a session bus.

The end-to-end tests start ``python -m tests.keyring_session_probe`` (a
stand-in for the CLI) and ``python -m tui_oauth keyring ...`` with no D-Bus
session bus and a fresh HOME and XDG_RUNTIME_DIR (tests/keyring_sandbox.py), so
that they have to join or start the user's private dbus-daemon + gnome-keyring.
Each test's finalizer kills the daemons its sandbox started.  They need
gnome-keyring and dbus installed; they skip only when those are absent and
TUI_OAUTH_TEST_SERVICES is unset.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.keyring_sandbox import PASSPHRASE, Sandbox, alive, kill, kill9
from tui_oauth.core.errors import SecretStoreError
from tui_oauth.core.keyring import passphrase as kpass
from tui_oauth.core.keyring import session as ksession
from tui_oauth.core.keyring import state as kstate

REPO = Path(__file__).resolve().parents[2]
SERVICES_REQUIRED = os.environ.get("TUI_OAUTH_TEST_SERVICES") == "1"
HAVE_TOOLS = bool(shutil.which("gnome-keyring-daemon") and shutil.which("dbus-daemon"))
SECRET = "s3cret-value-in-the-keyring"
WRONG = "The keyring passphrase is wrong: the login keyring stayed locked."

# ---------------------------------------------------------------- needs_private_session


@pytest.fixture
def no_socket(tmp_path: Path) -> str:
    return str(tmp_path / "no-bus")


def test_needs_private_session_without_anything(no_socket: str) -> None:
    assert ksession.needs_private_session({}, user_bus=no_socket) is True
    assert ksession.needs_private_session({"HOME": "/root"}, user_bus=no_socket) is True


@pytest.mark.parametrize(
    "env",
    [
        {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/0/bus"},
        {"PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring"},
    ],
)
def test_no_private_session_when_env_says_so(env: dict[str, str], no_socket: str) -> None:
    assert ksession.needs_private_session(env, user_bus=no_socket) is False


def test_empty_values_do_not_count(no_socket: str) -> None:
    env = {"DBUS_SESSION_BUS_ADDRESS": "", "PYTHON_KEYRING_BACKEND": ""}
    assert ksession.needs_private_session(env, user_bus=no_socket) is True


def test_user_bus_socket_counts_but_a_plain_file_does_not(tmp_path: Path) -> None:
    path = tmp_path / "bus"
    path.write_text("not a socket")
    assert ksession.needs_private_session({}, user_bus=str(path)) is True
    path.unlink()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        assert ksession.needs_private_session({}, user_bus=str(path)) is False


def test_default_user_bus_follows_xdg_runtime_dir() -> None:
    assert ksession.default_user_bus({"XDG_RUNTIME_DIR": "/tmp/x"}) == "/tmp/x/bus"
    assert ksession.default_user_bus({}) == f"/run/user/{os.getuid()}/bus"


# ---------------------------------------------------------------- the state dir and file


def test_state_dir_prefers_an_existing_runtime_dir(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    assert kstate.state_dir({"XDG_RUNTIME_DIR": str(tmp_path), "HOME": home}) == \
        f"{tmp_path}/tui-oauth"
    missing = str(tmp_path / "missing")
    assert kstate.state_dir({"XDG_RUNTIME_DIR": missing, "HOME": home}) == \
        f"{home}/.cache/tui-oauth/session"
    assert kstate.state_dir({"HOME": home}) == f"{home}/.cache/tui-oauth/session"
    assert kstate.state_dir({"HOME": home, "XDG_CACHE_HOME": "/c"}) == "/c/tui-oauth/session"


def _short_dir() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="tok-", dir="/tmp"))


@pytest.fixture
def short(tmp_path: Path) -> Iterator[Path]:
    path = _short_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_state_dir_is_created_0700_whatever_the_umask(short: Path) -> None:
    path = short / "a" / "tui-oauth"
    old = os.umask(0)
    try:
        kstate.prepare_state_dir(str(path))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o700
    kstate.prepare_state_dir(str(path))  # again: fine


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o701])
def test_state_dir_open_to_others_is_refused(short: Path, mode: int) -> None:
    path = short / "tui-oauth"
    path.mkdir()
    path.chmod(mode)
    with pytest.raises(SecretStoreError, match="open to group or others") as info:
        kstate.prepare_state_dir(str(path))
    assert f"{mode:04o}" in info.value.message
    assert f"chmod 700 {path}" in (info.value.hint or "")


def test_state_dir_that_is_a_file_or_symlink_is_refused(short: Path) -> None:
    path = short / "tui-oauth"
    path.write_text("x")
    with pytest.raises(SecretStoreError, match="is not a directory"):
        kstate.prepare_state_dir(str(path))
    path.unlink()
    (short / "elsewhere").mkdir(mode=0o700)
    path.symlink_to(short / "elsewhere")
    with pytest.raises(SecretStoreError, match="is not a directory"):
        kstate.prepare_state_dir(str(path))


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a directory away")
def test_state_dir_of_another_user_is_refused(short: Path) -> None:
    path = short / "tui-oauth"
    path.mkdir(mode=0o700)
    os.chown(path, 65534, -1)
    with pytest.raises(SecretStoreError, match="belongs to another user"):
        kstate.prepare_state_dir(str(path))


def test_state_dir_too_long_for_a_socket(tmp_path: Path) -> None:
    path = "/tmp/" + "x" * 100 + "/tui-oauth"
    with pytest.raises(SecretStoreError, match="too long a path") as info:
        kstate.prepare_state_dir(path)
    assert "XDG_RUNTIME_DIR" in (info.value.hint or "")
    assert not os.path.exists(path)


def test_state_file_round_trip_and_garbage(short: Path) -> None:
    assert kstate.read_state(str(short)) is None
    state = kstate.SessionState(bus="unix:path=/x/bus,guid=1", dbus_pid=10, keyring_pid=11,
                            control="/x/keyring", started=1.5)
    kstate.write_state(str(short), state)
    assert kstate.read_state(str(short)) == state
    assert (short / kstate.STATE_FILE).stat().st_mode & 0o777 == 0o600
    assert [p.name for p in short.iterdir()] == [kstate.STATE_FILE]  # no temp file left
    for garbage in ("", "{", "[]", '{"bus": "tcp:host=x", "dbus_pid": 1}',
                    '{"bus": "unix:path=/x", "dbus_pid": "x"}'):
        (short / kstate.STATE_FILE).write_text(garbage)
        assert kstate.read_state(str(short)) is None


def test_session_lock_times_out_clearly(short: Path) -> None:
    fd = os.open(short / kstate.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        t0 = time.monotonic()
        with pytest.raises(SecretStoreError, match="Another tui-oauth"), \
                kstate.session_lock(str(short), timeout=0.3):
            pass
        assert time.monotonic() - t0 < 2
    finally:
        os.close(fd)
    with kstate.session_lock(str(short), timeout=0.3):
        pass  # free again


# ---------------------------------------------------------------- read_passphrase


def _file(tmp_path: Path, content: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "passphrase"
    path.write_bytes(content)
    path.chmod(mode)
    return path


def _no_asking(prompt: str) -> str:
    raise AssertionError(f"asked for the passphrase ({prompt!r}) although the file is set")


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"pw", "pw"), (b"pw\n", "pw"), (b"pw\n\n", "pw\n"), (b"pw\r\n", "pw"),
     (b" spaced pw \n", " spaced pw "), ("pässwörd\n".encode(), "pässwörd")],
)
def test_passphrase_from_file(tmp_path: Path, content: bytes, expected: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, content)
    env = {kpass.ENV_PASSPHRASE_FILE: str(path)}
    warnings: list[str] = []
    assert kpass.read_passphrase(env, None, warn=warnings.append) == expected
    assert warnings == []  # 0600: no warning
    assert capsys.readouterr() == ("", "")  # the core prints nothing


@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n"])
def test_empty_passphrase_file_is_refused(tmp_path: Path, content: bytes) -> None:
    env = {kpass.ENV_PASSPHRASE_FILE: str(_file(tmp_path, content))}
    with pytest.raises(SecretStoreError, match="is empty"):
        kpass.read_passphrase(env, _no_asking)


def test_unreadable_passphrase_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(SecretStoreError, match="Cannot read the keyring passphrase file") as info:
        kpass.read_passphrase({kpass.ENV_PASSPHRASE_FILE: str(missing)}, _no_asking)
    assert str(missing) in info.value.message
    with pytest.raises(SecretStoreError, match="Cannot read"):  # a directory
        kpass.read_passphrase({kpass.ENV_PASSPHRASE_FILE: str(tmp_path)}, _no_asking)


def test_passphrase_file_not_utf8(tmp_path: Path) -> None:
    env = {kpass.ENV_PASSPHRASE_FILE: str(_file(tmp_path, b"\xff\xfe"))}
    with pytest.raises(SecretStoreError, match="UTF-8"):
        kpass.read_passphrase(env, None)


def test_world_readable_passphrase_file_warns(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, b"pw\n", mode=0o644)
    warnings: list[str] = []
    env = {kpass.ENV_PASSPHRASE_FILE: str(path)}
    assert kpass.read_passphrase(env, None, warn=warnings.append) == "pw"
    assert len(warnings) == 1
    assert "chmod 600" in warnings[0] and "0644" in warnings[0]
    assert "pw\n" not in warnings[0].replace(str(path), "")
    assert capsys.readouterr() == ("", "")  # said through warn, not printed
    assert kpass.read_passphrase(env, None) == "pw"  # no warn given: still read


def test_no_file_and_no_tty_is_refused() -> None:
    with pytest.raises(SecretStoreError, match="stdin is not a terminal") as info:
        kpass.read_passphrase({}, None)
    assert info.value.message.startswith("There is no D-Bus session bus")
    assert kpass.ENV_PASSPHRASE_FILE in (info.value.hint or "")
    with pytest.raises(SecretStoreError, match=r"^It is locked, and it needs"):
        kpass.read_passphrase({}, None, why="It is locked")


def test_asks_through_the_callback() -> None:
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return "typed"

    assert kpass.read_passphrase({}, ask) == "typed"
    assert prompts == [kpass.PROMPT]
    with pytest.raises(SecretStoreError, match="must not be empty"):
        kpass.read_passphrase({}, lambda prompt: "")

    def eof(prompt: str) -> str:
        raise EOFError

    with pytest.raises(SecretStoreError, match="No keyring passphrase was entered") as info:
        kpass.read_passphrase({}, eof)
    assert kpass.ENV_PASSPHRASE_FILE in (info.value.hint or "")
    with pytest.raises(SecretStoreError, match="longer than"):
        kpass.read_passphrase({}, lambda prompt: "x" * (kpass.MAX_PASSPHRASE_BYTES + 1))


def test_cli_asks_with_getpass_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI's callbacks: getpass when stdin is a terminal, None (cannot ask) when not;
    warnings on stderr, escaped."""
    import getpass
    import io

    from tui_oauth.cli import common

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", io.StringIO())
    assert common.ask_keyring_passphrase() is None
    monkeypatch.setattr(sys, "stdin", Tty())
    assert common.ask_keyring_passphrase() is getpass.getpass
    common.say_warning("the file /tmp/p\x1b[2J is open")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "tui-oauth: warning: the file /tmp/p\\x1b[2J is open\n"


# ---------------------------------------------------------------- ensure_secret_service in-process


def test_returns_at_once_with_a_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
    ksession.ensure_secret_service()  # no error, nothing started


def test_points_jeepney_at_the_user_bus(monkeypatch: pytest.MonkeyPatch, short: Path) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short))
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(short / "bus"))
        ksession.ensure_secret_service()
    assert os.environ["DBUS_SESSION_BUS_ADDRESS"] == f"unix:path={short}/bus"
    assert not (short / "tui-oauth").exists()


def test_returns_when_gnome_keyring_is_missing(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    for name in ("DBUS_SESSION_BUS_ADDRESS", "PYTHON_KEYRING_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    ksession.ensure_secret_service()  # SecretStore.check() explains
    assert not (tmp_path / "tui-oauth").exists()


# ---------------------------------------------------------------- end to end, no session bus

e2e = pytest.mark.skipif(
    not HAVE_TOOLS and not SERVICES_REQUIRED,
    reason="gnome-keyring-daemon / dbus-daemon not installed",
)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox.create(tmp_path)
    try:
        yield box
    finally:
        box.stop()


def _probe(box: Sandbox, *args: str, passphrase_file: Path | None = None,
           extra: dict[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.keyring_session_probe", *args],
        cwd=REPO, env=box.env(passphrase_file, extra),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )


def _cli(box: Sandbox, *args: str, passphrase_file: Path | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui_oauth", *args],
        cwd=REPO, env=box.env(passphrase_file),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done


def _assert_clean_failure(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert "hint: " in done.stderr


def _status(box: Sandbox) -> dict[str, object]:
    done = _ok(_cli(box, "keyring", "status", "--json"))
    facts = json.loads(done.stdout)  # pure JSON on stdout
    assert isinstance(facts, dict)
    return facts


@contextmanager
def _holder(box: Sandbox, passphrase_file: Path | None = None
            ) -> Iterator[Callable[[], str]]:
    """A probe that puts item "a" ("from-a") in db-1 and then holds its connection open:
    the block runs while it holds; the function it gets lets the holder read item "b"
    and end, and returns what it said."""
    ready, go = box.tmp / "ready", box.tmp / "go"
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.keyring_session_probe", "meet", "db-1",
         "a", "from-a", "b", str(ready), str(go)],
        cwd=REPO, env=box.env(passphrase_file), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )

    def release() -> str:
        go.touch()
        out, err = holder.communicate(timeout=60)
        assert holder.returncode == 0, err
        return out.strip()

    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and holder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists(), holder.communicate(timeout=5)
        yield release
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def _started(box: Sandbox) -> kstate.SessionState:
    state = box.state()
    assert state is not None
    assert alive(state.dbus_pid) and alive(state.keyring_pid)
    assert box.daemons() == {"dbus-daemon": [state.dbus_pid],
                             "gnome-keyring-daemon": [state.keyring_pid]}
    return state


def _assert_nothing_running(box: Sandbox, before: kstate.SessionState | None = None) -> None:
    assert box.daemons() == {"dbus-daemon": [], "gnome-keyring-daemon": []}
    if before is not None:
        assert not alive(before.dbus_pid) and not alive(before.keyring_pid)
    assert box.state() is None
    assert not (box.state_dir / kstate.BUS_SOCKET).exists()


@e2e
def test_first_run_starts_the_session_and_later_runs_reuse_it(sandbox: Sandbox) -> None:
    t0 = time.monotonic()
    first = _ok(_probe(sandbox, "roundtrip", "db-1", SECRET, passphrase_file=sandbox.good))
    assert time.monotonic() - t0 < 20
    assert first.stdout.startswith("OK SecretService (gnome-keyring) "), first.stdout
    assert "names=['consumer/probe/main']" in first.stdout
    assert "dbus-daemon" not in first.stderr and "fd limit" not in first.stderr
    # The daemons outlive the command that started them, in a session of their own.
    state = _started(sandbox)
    assert os.getsid(state.dbus_pid) != os.getsid(0)
    assert os.getsid(state.keyring_pid or 0) != os.getsid(0)
    assert state.bus == f"unix:path={sandbox.state_dir}/bus" or \
        state.bus.startswith(f"unix:path={sandbox.state_dir}/bus,")
    assert sandbox.state_dir.stat().st_mode & 0o777 == 0o700
    assert (sandbox.state_dir / kstate.STATE_FILE).stat().st_mode & 0o777 == 0o600
    data = sandbox.keyring_file.read_bytes()
    assert SECRET.encode() not in data and PASSPHRASE.encode() not in data  # encrypted

    # No passphrase file this time, and no terminal: the running session is reused.
    for _ in range(3):
        again = _ok(_probe(sandbox, "read", "db-1"))
        assert again.stdout.strip() == f"VALUE {SECRET}"
    assert _started(sandbox) == state  # the same daemons, the same state

    # Even a wrong passphrase does not matter while the keyring is unlocked.
    _ok(_probe(sandbox, "read", "db-1", passphrase_file=sandbox.wrong))

    facts = _status(sandbox)
    assert facts["running"] is True and facts["locked"] is False
    assert facts["dbus_daemon_pid"] == state.dbus_pid
    assert facts["gnome_keyring_pid"] == state.keyring_pid
    assert facts["bus"] == state.bus
    assert facts["session_bus"] == "private session"
    assert facts["backend"] == "SecretService (gnome-keyring)"


@e2e
def test_two_processes_at_once_share_one_daemon(sandbox: Sandbox) -> None:
    """The old failure: two daemons over one keyring file lost each other's items."""
    _ok(_probe(sandbox, "roundtrip", "db-1", "before", passphrase_file=sandbox.good))
    with _holder(sandbox) as release:
        # While the holder runs (its connection open), another process writes.
        _ok(_probe(sandbox, "put", "db-1", "b", "from-b"))
        seen = _ok(_probe(sandbox, "read", "db-1", "a"))
        assert seen.stdout.strip() == "VALUE from-a"  # it sees the holder's write
        assert release() == "SEES from-b"  # and the holder sees the other's
    state = _started(sandbox)  # one dbus-daemon, one gnome-keyring

    # Both items are in the keyring file, not only in a daemon's memory.
    _ok(_cli(sandbox, "keyring", "stop"))
    _assert_nothing_running(sandbox, state)
    for item, value in (("a", "from-a"), ("b", "from-b"), ("main", "before")):
        done = _ok(_probe(sandbox, "read", "db-1", item, passphrase_file=sandbox.good))
        assert done.stdout.strip() == f"VALUE {value}"


@e2e
def test_simultaneous_first_starts_make_one_session(sandbox: Sandbox) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.keyring_session_probe", "put", "db-1",
             f"item{i}", f"value{i}"],
            cwd=REPO, env=sandbox.env(sandbox.good), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(5)
    ]
    results = []
    for proc in procs:
        try:
            results.append(proc.communicate(timeout=60))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "OK"
    state = _started(sandbox)  # exactly one dbus-daemon and one gnome-keyring
    for i in range(5):
        done = _ok(_probe(sandbox, "read", "db-1", f"item{i}"))
        assert done.stdout.strip() == f"VALUE value{i}"
    assert _started(sandbox) == state


@e2e
def test_wrong_passphrase_on_first_start_leaves_nothing(sandbox: Sandbox) -> None:
    _ok(_probe(sandbox, "roundtrip", "db-1", SECRET, passphrase_file=sandbox.good))
    first = _started(sandbox)
    stopped = _ok(_cli(sandbox, "keyring", "stop"))
    assert stopped.stdout == "" and str(first.dbus_pid) in stopped.stderr
    _assert_nothing_running(sandbox, first)

    wrong = _probe(sandbox, "read", "db-1", passphrase_file=sandbox.wrong)
    _assert_clean_failure(wrong, WRONG)
    assert "login.keyring" in wrong.stderr  # the hint says how to start over
    assert SECRET not in wrong.stdout + wrong.stderr
    _assert_nothing_running(sandbox)

    # The right passphrase then works, and the secret is still there.
    done = _ok(_probe(sandbox, "read", "db-1", passphrase_file=sandbox.good))
    assert done.stdout.strip() == f"VALUE {SECRET}"


@e2e
def test_lock_then_the_next_command_unlocks(sandbox: Sandbox) -> None:
    _ok(_probe(sandbox, "roundtrip", "db-1", SECRET, passphrase_file=sandbox.good))
    state = _started(sandbox)
    locked = _ok(_cli(sandbox, "keyring", "lock"))
    assert locked.stdout == "" and "Locked" in locked.stderr
    facts = _status(sandbox)
    assert facts["running"] is True and facts["locked"] is True

    # Locked: without a passphrase a command is refused quickly and clearly...
    t0 = time.monotonic()
    refused = _probe(sandbox, "read", "db-1")
    assert time.monotonic() - t0 < 10
    _assert_clean_failure(refused, "is locked")
    assert "stdin is not a terminal" in refused.stderr
    assert kpass.ENV_PASSPHRASE_FILE in refused.stderr
    # ... with the wrong one too, and the session stays (locked) for the others ...
    _assert_clean_failure(_probe(sandbox, "read", "db-1", passphrase_file=sandbox.wrong), WRONG)
    assert _started(sandbox) == state
    assert _status(sandbox)["locked"] is True
    # ... and the right one unlocks the running daemon in place.
    done = _ok(_probe(sandbox, "read", "db-1", passphrase_file=sandbox.good))
    assert done.stdout.strip() == f"VALUE {SECRET}"
    assert _started(sandbox) == state
    assert _status(sandbox)["locked"] is False
    _ok(_probe(sandbox, "read", "db-1"))  # unlocked for everyone again


@e2e
def test_a_long_running_process_keeps_working_across_lock_and_unlock(
        sandbox: Sandbox) -> None:
    """The console stays open while another shell locks, then unlocks, the keyring."""
    with _holder(sandbox, passphrase_file=sandbox.good) as release:
        state = _started(sandbox)
        _ok(_cli(sandbox, "keyring", "lock"))
        _ok(_probe(sandbox, "put", "db-1", "b", "after-unlock", passphrase_file=sandbox.good))
        assert release() == "SEES after-unlock"
    assert _started(sandbox) == state


@e2e
def test_stop_then_the_next_command_starts_afresh(sandbox: Sandbox) -> None:
    _ok(_probe(sandbox, "roundtrip", "db-1", SECRET, passphrase_file=sandbox.good))
    first = _started(sandbox)
    _ok(_cli(sandbox, "keyring", "stop"))
    _assert_nothing_running(sandbox, first)
    assert _status(sandbox)["running"] is False
    again = _ok(_cli(sandbox, "keyring", "stop"))  # nothing to stop: fine
    assert "No private keyring session" in again.stderr
    nothing = _ok(_cli(sandbox, "keyring", "lock"))
    assert "No private keyring session" in nothing.stderr
    _assert_nothing_running(sandbox)  # status, lock and stop start nothing

    # Stopped: the next command needs the passphrase again.
    _assert_clean_failure(_probe(sandbox, "read", "db-1"), "There is no D-Bus session bus")
    done = _ok(_probe(sandbox, "read", "db-1", passphrase_file=sandbox.good))
    assert done.stdout.strip() == f"VALUE {SECRET}"
    second = _started(sandbox)
    assert second.dbus_pid != first.dbus_pid


@e2e
def test_stale_state_is_recovered(sandbox: Sandbox) -> None:
    _ok(_probe(sandbox, "roundtrip", "db-1", SECRET, passphrase_file=sandbox.good))
    first = _started(sandbox)
    # Both daemons die behind its back (kill -9): the state file is stale.
    kill9(first.keyring_pid or 0)
    kill9(first.dbus_pid)
    assert not alive(first.dbus_pid) and not alive(first.keyring_pid)
    facts = _status(sandbox)
    assert facts["running"] is False and facts["stale"] is True
    done = _ok(_probe(sandbox, "read", "db-1", passphrase_file=sandbox.good))
    assert done.stdout.strip() == f"VALUE {SECRET}"
    second = _started(sandbox)
    assert second.dbus_pid != first.dbus_pid

    # The state file goes (a start cut short): its daemons are ended, one pair is left.
    (sandbox.state_dir / kstate.STATE_FILE).unlink()
    assert _status(sandbox)["running"] is False
    done = _ok(_probe(sandbox, "read", "db-1", passphrase_file=sandbox.good))
    assert done.stdout.strip() == f"VALUE {SECRET}"
    assert not alive(second.dbus_pid) and not alive(second.keyring_pid)
    second = _started(sandbox)

    # Only gnome-keyring dies: it is started again on the same bus.
    kill(second.keyring_pid or 0)
    _assert_clean_failure(_probe(sandbox, "read", "db-1"), "lost its gnome-keyring")
    done = _ok(_probe(sandbox, "read", "db-1", passphrase_file=sandbox.good))
    assert done.stdout.strip() == f"VALUE {SECRET}"
    third = _started(sandbox)
    assert third.dbus_pid == second.dbus_pid and third.bus == second.bus
    assert third.keyring_pid != second.keyring_pid


@e2e
def test_state_dir_with_bad_permissions_is_refused(sandbox: Sandbox) -> None:
    state_dir = sandbox.state_dir
    state_dir.mkdir(mode=0o700)
    state_dir.chmod(0o755)
    done = _probe(sandbox, "read", "db-1", passphrase_file=sandbox.good)
    _assert_clean_failure(done, f"The keyring session directory {state_dir} is open to group "
                                "or others (mode 0755)")
    assert f"chmod 700 {state_dir}" in done.stderr
    _assert_nothing_running(sandbox)
    cli = _cli(sandbox, "--db", f"sqlite:///{sandbox.tmp / 's.db'}", "info", "show",
               passphrase_file=sandbox.good)
    assert cli.returncode == 1 and cli.stdout == ""
    assert cli.stderr.startswith("error: The keyring session directory"), cli.stderr
    assert "Traceback" not in cli.stderr
    state_dir.chmod(0o700)
    _ok(_probe(sandbox, "read", "db-1", passphrase_file=sandbox.good))


@e2e
def test_without_a_runtime_dir_the_session_lives_in_the_cache(tmp_path: Path) -> None:
    box = Sandbox.create(tmp_path, short_home=True)  # a socket path must stay short
    box.use_runtime_dir = False
    try:
        _ok(_probe(box, "roundtrip", "db-1", SECRET, passphrase_file=box.good))
        assert box.state_dir == box.home_env / ".cache/tui-oauth/session"
        assert (box.home / ".cache/tui-oauth/session" / kstate.STATE_FILE).is_file()
        _started(box)
        assert _ok(_probe(box, "read", "db-1")).stdout.strip() == f"VALUE {SECRET}"
    finally:
        box.stop()


@e2e
def test_passphrase_never_in_argv_or_environment(sandbox: Sandbox) -> None:
    done = _ok(_probe(sandbox, "env", "db-1", passphrase_file=sandbox.good))
    facts = json.loads(done.stdout)
    state = _started(sandbox)
    assert facts["bus"] == state.bus
    assert facts["control"] == str(sandbox.state_dir / "keyring")
    assert PASSPHRASE not in facts["cmdline"]
    assert all(PASSPHRASE not in v for v in facts["environ"].values())
    assert not any(k.startswith("TUI_OAUTH_") and k != kpass.ENV_PASSPHRASE_FILE
                   for k in facts["environ"])
    for pid in (state.dbus_pid, state.keyring_pid):
        for what in ("cmdline", "environ"):
            text = Path(f"/proc/{pid}/{what}").read_bytes()
            assert PASSPHRASE.encode() not in text
            assert kpass.ENV_PASSPHRASE_FILE.encode() not in text


@e2e
def test_no_passphrase_file_and_no_tty(sandbox: Sandbox) -> None:
    done = _probe(sandbox, "read", "db-1")
    _assert_clean_failure(done, "stdin is not a terminal")
    assert kpass.ENV_PASSPHRASE_FILE in done.stderr
    _assert_nothing_running(sandbox)


@e2e
def test_missing_home_is_a_clear_error(sandbox: Sandbox, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-home"
    done = _probe(sandbox, "read", "db-1", passphrase_file=sandbox.good,
                  extra={"HOME": str(missing)}, timeout=30)
    _assert_clean_failure(done, f"HOME ({missing}) does not exist")
    assert not missing.exists()


@e2e
def test_keyring_backend_from_env_skips_the_private_session(sandbox: Sandbox) -> None:
    done = _ok(_probe(sandbox, "env", "db-1", passphrase_file=sandbox.good,
                      extra={"PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}))
    assert json.loads(done.stdout)["bus"] is None
    assert not sandbox.state_dir.exists()
    _assert_nothing_running(sandbox)


@e2e
def test_status_with_nothing_running(sandbox: Sandbox) -> None:
    facts = _status(sandbox)
    assert facts["running"] is False and facts["stale"] is False
    assert facts["bus"] is None and facts["locked"] is None
    assert facts["session_bus"] == "none"
    assert facts["state_dir"] == str(sandbox.state_dir)
    human = _ok(_cli(sandbox, "keyring", "status"))
    assert "not running" in human.stdout
    _assert_nothing_running(sandbox)
    assert not sandbox.state_dir.exists()
