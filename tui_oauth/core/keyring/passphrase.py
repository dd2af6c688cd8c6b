"""The keyring passphrase of the private session: from a file, or asked for.

Core never prompts or prints: the front door passes ``ask`` (shows the prompt
and returns what was typed: the CLI asks on the terminal; None when there is no
terminal to ask on) and ``warn`` (tells the user a warning, e.g. on stderr).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping

from tui_oauth.core.errors import SecretStoreError

__all__ = [
    "ENV_PASSPHRASE_FILE",
    "MAX_PASSPHRASE_BYTES",
    "PROMPT",
    "AskPassphrase",
    "Warn",
    "read_passphrase",
]

ENV_PASSPHRASE_FILE = "TUI_OAUTH_KEYRING_PASSPHRASE_FILE"  # noqa: S105 (a variable name)
PROMPT = "Keyring passphrase for tui-oauth (creates the keyring on first use): "
MAX_PASSPHRASE_BYTES = 16 * 1024

#: Shows a prompt and returns the passphrase typed (EOFError: nothing was entered).
AskPassphrase = Callable[[str], str]
#: Tells the user a warning (one line, without a "warning:" prefix).
Warn = Callable[[str], None]

_PASSPHRASE_FILE_HINT = (
    f"Put the keyring passphrase in a file only you can read (chmod 600) and set "
    f"{ENV_PASSPHRASE_FILE} to its path, or run tui-oauth from a terminal so that it can ask."
)


def read_passphrase(env: Mapping[str, str], ask: AskPassphrase | None, *,
                    why: str | None = None, warn: Warn | None = None) -> str:
    """The keyring passphrase: from the file named by the env, else ``ask(PROMPT)``.

    ``ask`` None means there is no terminal to ask on: without the file that is
    an error.  A file open to group or others is used, with a ``warn``.
    """
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
        if mode & 0o077 and warn is not None:
            warn(f"the keyring passphrase file {path} is accessible by group or others "
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
    if ask is None:
        why = why or ("There is no D-Bus session bus, so tui-oauth starts its own keyring "
                      "session")
        raise SecretStoreError(
            f"{why}, and it needs the keyring passphrase, but it cannot ask for it: stdin "
            "is not a terminal.",
            hint=_PASSPHRASE_FILE_HINT,
        )
    try:
        text = ask(PROMPT)
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
