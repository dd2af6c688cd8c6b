"""The console's log file: where it lives, and a rotating handler only we can read.

While the console owns the terminal, a log line written to stderr would paint over
the screen, so log records go to ``console.log`` in the user log directory
(``platformdirs.user_log_dir``: ``$XDG_STATE_HOME/tui-oauth/log`` on Linux, by default
``~/.local/state/tui-oauth/log``). The directory is made 0700 and each file 0600:
a traceback may quote a consumer key, a URL or a user name. Credentials are
redacted before a record is written (:class:`tui_oauth.core.redact.RedactFilter`).
"""

from __future__ import annotations

import contextlib
import io
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path

from platformdirs import user_log_dir

from tui_oauth import APP_NAME
from tui_oauth.core.redact import RedactFilter
from tui_oauth.core.text import VisibleFormatter

__all__ = ["CONSOLE_LOG_BACKUPS", "CONSOLE_LOG_BYTES", "CONSOLE_LOG_NAME",
           "console_log_handler", "console_log_path", "default_log_dir"]

CONSOLE_LOG_NAME = "console.log"
CONSOLE_LOG_BYTES = 1024 * 1024  # rotated at 1 MiB ...
CONSOLE_LOG_BACKUPS = 3  # ... keeping console.log.1 to .3
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def default_log_dir() -> Path:
    """The user log directory (honours ``XDG_STATE_HOME`` on Linux)."""
    return Path(user_log_dir(APP_NAME, appauthor=False))


def console_log_path() -> Path:
    return default_log_dir() / CONSOLE_LOG_NAME


class PrivateRotatingFileHandler(RotatingFileHandler):
    """A :class:`RotatingFileHandler` whose files are created 0600 whatever the umask
    (the rotated ones are renamed, so they keep it)."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with contextlib.suppress(OSError):  # a file made by hand, or by another umask
            os.fchmod(fd, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


def console_log_handler(path: Path | None = None, *, max_bytes: int = CONSOLE_LOG_BYTES,
                        backups: int = CONSOLE_LOG_BACKUPS) -> PrivateRotatingFileHandler:
    """A handler writing to ``path`` (default :func:`console_log_path`): its directory
    made 0700 if missing, the file 0600, rotated at ``max_bytes`` with ``backups`` old
    files, credentials redacted and control characters escaped in every line.

    The file is opened at the first record (``delay``), so a console run that logs
    nothing leaves no file.  Raises ``OSError`` when the directory cannot be made.
    """
    path = console_log_path() if path is None else path
    directory = path.parent
    if not directory.is_dir():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)  # mkdir's mode is masked by the umask
    handler = PrivateRotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                         encoding="utf-8", delay=True)
    handler.setFormatter(VisibleFormatter(LOG_FORMAT))
    handler.addFilter(RedactFilter())
    return handler
