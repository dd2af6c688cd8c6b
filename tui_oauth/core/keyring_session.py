"""Start a private Secret Service when there is no D-Bus session bus.

On a server reached over SSH there is usually no session bus, so keyring falls
back to its ``fail`` backend.  :func:`ensure_secret_service` then runs the same
command again under ``dbus-run-session`` and, inside it, unlocks (or on first
use creates) the login keyring of gnome-keyring with a passphrase read from
``TUI_OAUTH_KEYRING_PASSPHRASE_FILE`` or asked for on the terminal.  The
keyring file lives under ``$XDG_DATA_HOME/keyrings/`` (``~/.local/share/keyrings/``)
and is encrypted with that passphrase, so secrets persist across runs.

The passphrase travels to the child through a pipe (its number in
``TUI_OAUTH_PASSPHRASE_FD``), never in argv or in an environment value.

The private bus's dbus-daemon logs to stderr (as root: "Failed to set fd limit
... Operation not permitted", and a line per activated service).  The parent
reads the stderr of ``dbus-run-session`` and drops those log lines; the child
gets the real stderr back through ``TUI_OAUTH_STDERR_FD`` as soon as it calls
:func:`ensure_secret_service`.
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, MutableMapping
from typing import IO, Any

from tui_oauth.core.errors import SecretStoreError
from tui_oauth.core.secrets import call_with_time_limit

__all__ = [
    "ENV_MARKER",
    "ENV_PASSPHRASE_FD",
    "ENV_PASSPHRASE_FILE",
    "PROMPT",
    "default_user_bus",
    "ensure_secret_service",
    "needs_private_session",
    "read_passphrase",
]

ENV_MARKER = "TUI_OAUTH_PRIVATE_SESSION"
ENV_PASSPHRASE_FD = "TUI_OAUTH_PASSPHRASE_FD"  # noqa: S105 (a variable name)
ENV_PASSPHRASE_FILE = "TUI_OAUTH_KEYRING_PASSPHRASE_FILE"  # noqa: S105 (a variable name)
ENV_STDERR_FD = "TUI_OAUTH_STDERR_FD"
PROMPT = "Keyring passphrase for tui-oauth (creates the keyring on first use): "

#: How long gnome-keyring-daemon --unlock and the lock check may take.
UNLOCK_TIMEOUT = 15.0
#: A pipe holds at least 64 KiB; the passphrase is written before the child starts.
MAX_PASSPHRASE_BYTES = 16 * 1024

_DBUS_LOG_LINE = re.compile(rb"^dbus-daemon\[\d+\]: \[session uid=\d+ pid=\d+\] ")
_ENV_LINE = re.compile(r"^([A-Z_][A-Z0-9_]*)=(.*)$")
_DEFAULT_COLLECTION = "/org/freedesktop/secrets/aliases/default"
_SECRETS_BUS_NAME = "org.freedesktop.secrets"

_PASSPHRASE_FILE_HINT = (
    f"Put the keyring passphrase in a file only you can read (chmod 600) and set "
    f"{ENV_PASSPHRASE_FILE} to its path, or run tui-oauth from a terminal so that it can ask."
)


def default_user_bus(env: Mapping[str, str]) -> str:
    """Path of the per-user bus socket systemd provides (``/run/user/<uid>/bus``)."""
    runtime_dir = env.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return os.path.join(runtime_dir, "bus")


def needs_private_session(env: Mapping[str, str], *, user_bus: str | None = None) -> bool:
    """True when there is no session bus and no keyring configuration to respect."""
    if env.get(ENV_MARKER) == "1":
        return False
    if env.get("DBUS_SESSION_BUS_ADDRESS"):
        return False
    if env.get("PYTHON_KEYRING_BACKEND"):
        return False
    path = user_bus if user_bus is not None else default_user_bus(env)
    try:
        return not stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return True


def _warn(message: str) -> None:
    print(f"tui-oauth: warning: {message}", file=sys.stderr)


def read_passphrase(env: Mapping[str, str], stdin_is_tty: bool) -> str:
    """The keyring passphrase: from the file named by the env, else asked on the TTY."""
    path = env.get(ENV_PASSPHRASE_FILE)
    if path:
        try:
            with open(path, "rb") as f:
                mode = os.fstat(f.fileno()).st_mode
                raw = f.read(MAX_PASSPHRASE_BYTES + 3)
        except OSError as exc:
            raise SecretStoreError(
                f"Cannot read the keyring passphrase file {path} ({ENV_PASSPHRASE_FILE}): "
                f"{exc.strerror or exc}.",
                hint=f"Check the path and its permissions, or unset {ENV_PASSPHRASE_FILE}.",
            ) from None
        if mode & 0o077:
            _warn(f"the keyring passphrase file {path} is accessible by group or others "
                  f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}`.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretStoreError(
                f"The keyring passphrase file {path} is not UTF-8 text.",
                hint="Write the passphrase as UTF-8 text.",
            ) from None
        if text.endswith("\r\n"):
            text = text[:-2]
        elif text.endswith("\n"):
            text = text[:-1]
        if not text:
            raise SecretStoreError(
                f"The keyring passphrase file {path} is empty.",
                hint="Write the passphrase into it (one line), or unset "
                     f"{ENV_PASSPHRASE_FILE} to be asked for it.",
            )
        _check_length(text)
        return text
    if not stdin_is_tty:
        raise SecretStoreError(
            "There is no D-Bus session bus, so tui-oauth starts its own keyring session, "
            "and it needs the keyring passphrase, but it cannot ask for it: stdin is not "
            "a terminal.",
            hint=_PASSPHRASE_FILE_HINT,
        )
    try:
        text = getpass.getpass(PROMPT)
    except EOFError:
        raise SecretStoreError("No keyring passphrase was entered.",
                               hint=_PASSPHRASE_FILE_HINT) from None
    if not text:
        raise SecretStoreError(
            "The keyring passphrase must not be empty (an empty one would leave the "
            "keyring unencrypted).",
            hint="Enter a passphrase, or set " + ENV_PASSPHRASE_FILE + ".",
        )
    _check_length(text)
    return text


def _check_length(text: str) -> None:
    if len(text.encode("utf-8")) > MAX_PASSPHRASE_BYTES:
        raise SecretStoreError(
            f"The keyring passphrase is longer than {MAX_PASSPHRASE_BYTES} bytes.",
            hint="Use a shorter passphrase.",
        )


def _check_home(env: Mapping[str, str]) -> None:
    home = env.get("HOME")
    if not home:
        raise SecretStoreError(
            "HOME is not set; gnome-keyring needs it for the keyring files and hangs "
            "without it.",
            hint="Set HOME to your home directory and run tui-oauth again.",
        )
    if not os.path.isdir(home):
        raise SecretStoreError(
            f"HOME ({home}) does not exist; gnome-keyring needs it for the keyring files "
            "and hangs without it.",
            hint="Create it or set HOME to an existing directory, then run tui-oauth again.",
        )


def ensure_secret_service(
    argv: list[str],
    *,
    stdin_is_tty: bool | None = None,
    module: str = "tui_oauth",
) -> None:
    """Make sure a Secret Service is reachable, starting a private one if needed.

    Outside a session bus this does not return: it runs ``python -m <module>
    argv[1:]`` under ``dbus-run-session`` and exits with its status.  Inside that
    private session it unlocks the login keyring and returns.  Raises
    SecretStoreError with the cause and the fix.
    """
    env = os.environ
    if env.get(ENV_MARKER) == "1":
        if ENV_PASSPHRASE_FD in env:
            _enter_private_session(env)
        return
    if env.get("DBUS_SESSION_BUS_ADDRESS") or env.get("PYTHON_KEYRING_BACKEND"):
        return
    if not needs_private_session(env):
        # systemd's per-user bus exists, but jeepney (used by SecretStorage) only
        # looks at DBUS_SESSION_BUS_ADDRESS; point it at the socket as libdbus would.
        env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={default_user_bus(env)}"
        return
    if not (shutil.which("gnome-keyring-daemon") and shutil.which("dbus-run-session")):
        return  # SecretStore.check() explains what to install
    _check_home(env)
    if stdin_is_tty is None:
        stdin_is_tty = _isatty(sys.stdin)
    passphrase = read_passphrase(env, stdin_is_tty)
    sys.exit(_run_private_session(argv, passphrase, module))


def _isatty(stream: IO[Any] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


def _run_private_session(argv: list[str], passphrase: str, module: str) -> int:
    """Run ``python -m module argv[1:]`` under dbus-run-session; return its exit status."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, passphrase.encode("utf-8"))
    finally:
        os.close(write_fd)
    stderr_fd = os.dup(2)
    env = dict(os.environ)
    env[ENV_MARKER] = "1"
    env[ENV_PASSPHRASE_FD] = str(read_fd)
    env[ENV_STDERR_FD] = str(stderr_fd)
    cmd = ["dbus-run-session", "--", sys.executable, "-m", module, *argv[1:]]
    previous_sigint = signal.getsignal(signal.SIGINT)
    try:
        sys.stderr.flush()
        proc = subprocess.Popen(
            cmd, pass_fds=(read_fd, stderr_fd), env=env, stderr=subprocess.PIPE
        )
    except OSError as exc:
        os.close(read_fd)
        os.close(stderr_fd)
        raise SecretStoreError(
            f"Could not start dbus-run-session: {exc}.",
            hint="Install dbus (apt install dbus) or run tui-oauth inside a D-Bus session.",
        ) from None
    os.close(read_fd)
    os.close(stderr_fd)
    assert proc.stderr is not None
    pump = threading.Thread(target=_pump_stderr, args=(proc.stderr,), daemon=True)
    pump.start()
    # Ctrl-C reaches the child too (same process group); let it decide.
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        returncode = proc.wait()
    finally:
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGINT, previous_sigint)
    # Anything still holding the pipe (an activated service) must not keep us here.
    pump.join(2.0)
    return 128 - returncode if returncode < 0 else returncode


def _pump_stderr(stream: IO[bytes]) -> None:
    """Copy the private session's stderr to ours, without dbus-daemon's log lines."""
    try:
        for line in stream:
            if _DBUS_LOG_LINE.match(line):
                continue
            os.write(2, line)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            stream.close()


def _read_fd(fd: int) -> bytes:
    chunks = []
    try:
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def _enter_private_session(env: MutableMapping[str, str]) -> None:
    """Inside dbus-run-session: unlock (or create) the login keyring, then check it."""
    stderr_fd = env.pop(ENV_STDERR_FD, None)
    if stderr_fd is not None:
        with contextlib.suppress(ValueError, OSError):
            fd = int(stderr_fd)
            sys.stderr.flush()
            os.dup2(fd, 2)
            os.close(fd)
    fd_text = env.pop(ENV_PASSPHRASE_FD)
    try:
        passphrase = _read_fd(int(fd_text))
    except (ValueError, OSError) as exc:
        raise SecretStoreError(
            f"Could not read the keyring passphrase from file descriptor {fd_text}: {exc}.",
            hint="Run tui-oauth again.",
        ) from None
    _check_home(env)
    # A control directory of its own: with a shared $XDG_RUNTIME_DIR/keyring the
    # daemon of this session would find (or race with) another session's daemon.
    runtime_dir = _private_runtime_dir(env)
    daemon_env = dict(env)
    daemon_env["XDG_RUNTIME_DIR"] = runtime_dir
    try:
        done = subprocess.run(
            ["gnome-keyring-daemon", "--unlock", "--components=secrets"],
            input=passphrase,
            capture_output=True,
            timeout=UNLOCK_TIMEOUT,
            check=False,
            env=daemon_env,
        )
    except subprocess.TimeoutExpired:
        raise SecretStoreError(
            f"gnome-keyring-daemon --unlock did not finish within {UNLOCK_TIMEOUT:g} s.",
            hint=f"Check that HOME ({env.get('HOME')}) is writable, then run tui-oauth again.",
        ) from None
    except OSError as exc:
        raise SecretStoreError(
            f"Could not start gnome-keyring-daemon: {exc}.",
            hint="Install gnome-keyring (apt install gnome-keyring).",
        ) from None
    finally:
        del passphrase
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()
        raise SecretStoreError(
            f"gnome-keyring-daemon --unlock failed with status {done.returncode}"
            + (f": {detail}" if detail else "."),
            hint="Check the gnome-keyring installation and HOME, then run tui-oauth again.",
        )
    env["GNOME_KEYRING_CONTROL"] = os.path.join(runtime_dir, "keyring")
    for line in done.stdout.decode(errors="replace").splitlines():
        match = _ENV_LINE.match(line.strip())
        if match:
            env[match.group(1)] = match.group(2)
    finished, _, error, _ = call_with_time_limit(_login_keyring_locked, timeout=UNLOCK_TIMEOUT)
    if not finished:
        raise SecretStoreError(
            f"The private Secret Service did not answer within {UNLOCK_TIMEOUT:g} s.",
            hint=f"Check that HOME ({env.get('HOME')}) is writable, then run tui-oauth again.",
        )
    if isinstance(error, SecretStoreError):
        raise error
    if error is not None:
        raise SecretStoreError(
            f"The private Secret Service does not work: {error} ({type(error).__name__}).",
            hint="Check the gnome-keyring installation, then run tui-oauth again.",
        )


def _private_runtime_dir(env: Mapping[str, str]) -> str:
    """A new 0700 directory for gnome-keyring's control socket, removed at exit.

    A Unix socket path must stay under 108 bytes, so prefer a short parent.
    """
    parents = [env.get("XDG_RUNTIME_DIR") or "", tempfile.gettempdir(), "/tmp"]  # noqa: S108
    for parent in parents:
        # <parent>/tui-oauth-keyring-XXXXXXXX/keyring/control
        if parent and os.path.isdir(parent) and len(parent) + 45 < 100:
            try:
                path = tempfile.mkdtemp(prefix="tui-oauth-keyring-", dir=parent)
            except OSError:
                continue
            atexit.register(shutil.rmtree, path, True)
            return path
    raise SecretStoreError(
        "Found no writable directory with a short enough path for gnome-keyring's socket.",
        hint="Set TMPDIR to a short writable directory such as /tmp.",
    )


def _wait_for_bus_name(connection: Any, timeout: float) -> None:
    """Wait until the daemon owns org.freedesktop.secrets on the private bus.

    ``gnome-keyring-daemon --unlock`` returns before its daemon has taken the
    name; a Secret Service call made then makes dbus-daemon activate a second
    daemon, and the two fight over the control socket.
    """
    from jeepney.bus_messages import message_bus

    deadline = time.monotonic() + timeout
    while True:
        reply = connection.send_and_get_reply(message_bus.NameHasOwner(_SECRETS_BUS_NAME))
        if reply.body[0]:
            return
        if time.monotonic() > deadline:
            raise SecretStoreError(
                f"gnome-keyring-daemon did not take {_SECRETS_BUS_NAME} on the private D-Bus "
                f"session within {timeout:g} s.",
                hint="Check the gnome-keyring installation, then run tui-oauth again.",
            )
        time.sleep(0.01)


def _login_keyring_locked() -> None:
    import secretstorage

    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share")
    keyrings = os.path.join(data_home, "keyrings")
    with contextlib.closing(secretstorage.dbus_init()) as connection:
        _wait_for_bus_name(connection, UNLOCK_TIMEOUT - 1)
        try:
            collection = secretstorage.Collection(connection, _DEFAULT_COLLECTION)
        except secretstorage.exceptions.ItemNotFoundException:
            raise SecretStoreError(
                "gnome-keyring did not create or open the login keyring.",
                hint=f"Check that {keyrings} is writable, then run tui-oauth again.",
            ) from None
        if collection.is_locked():
            raise SecretStoreError(
                "The keyring passphrase is wrong: the login keyring stayed locked.",
                hint=(f"Use the passphrase the keyring was created with. To start over, move "
                      f"{os.path.join(keyrings, 'login.keyring')} away (the secrets in it "
                      "are then lost)."),
            )
