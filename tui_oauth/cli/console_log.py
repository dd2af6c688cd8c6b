"""While the console owns the terminal, log records go to a file, not stderr.

A record written to stderr (a traceback above all) would paint over the screen; so
for as long as the console runs, the root logger's handlers (the CLI's stderr
handler) are set aside for one writing to ``console.log`` in the user log directory
(:mod:`tui_oauth.core.logfile`), and Python's warnings are logged there too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tui_oauth.core.logfile import console_log_handler


@contextmanager
def console_logging(path: Path | None = None) -> Iterator[Path | None]:
    """Log to the console's file (``path``, default the user log directory) inside the
    block; yields the file's path, or None when it could not be made (then records
    are dropped while the console runs, and the reason is said on stderr after)."""
    root = logging.getLogger()
    saved = root.handlers[:]
    problem: str | None = None
    handler: logging.Handler
    try:
        handler = console_log_handler(path)
        where: Path | None = Path(getattr(handler, "baseFilename", ""))
    except OSError as exc:
        problem = f"the console's log file could not be made ({exc}); nothing was logged"
        handler, where = logging.NullHandler(), None
    root.handlers = [handler]
    logging.captureWarnings(True)
    try:
        yield where
    finally:
        logging.captureWarnings(False)
        root.handlers = saved
        handler.close()
        if problem is not None:
            logging.getLogger(__name__).warning("%s", problem)
