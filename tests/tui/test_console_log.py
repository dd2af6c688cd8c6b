"""While the console runs, log records go to console.log in the user log directory, not
to stderr (where a traceback would paint over the screen); `doctor` names the file."""

from __future__ import annotations

import logging
import stat
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_support import Cli
from tests.tui_support import open_console, wait_for
from tui_oauth.cli.console_log import console_logging
from tui_oauth.core.logfile import console_log_handler, console_log_path
from tui_oauth.core.store import Store
from tui_oauth.tui.messages import WorkFailed


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """platformdirs puts the user log directory under XDG_STATE_HOME: a temporary one."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state" / "tui-oauth" / "log"


@pytest.fixture
def stderr_logging(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """The root logger as the CLI sets it up: one handler on stderr (capsys's)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    root.addHandler(handler)
    yield
    root.removeHandler(handler)


def boom() -> RuntimeError:
    try:
        raise RuntimeError("refused: oauth_token=tok-SECRET-1 shared_secret=s3cr3t")
    except RuntimeError as exc:
        return exc


def test_the_path_is_in_the_user_log_directory(log_dir: Path) -> None:
    assert console_log_path() == log_dir / "console.log"


def test_a_logged_error_goes_to_the_file_and_not_to_stderr(
        log_dir: Path, stderr_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    with console_logging() as path:
        assert path == log_dir / "console.log"
        logging.getLogger("tui_oauth.tui.app").error("Saving failed", exc_info=boom())
        warnings.warn("a library's warning", UserWarning, stacklevel=1)
    assert capsys.readouterr().err == ""
    text = path.read_text(encoding="utf-8")
    assert "ERROR tui_oauth.tui.app: Saving failed" in text
    assert "Traceback (most recent call last)" in text and "RuntimeError: refused" in text
    assert "a library's warning" in text
    assert "tok-SECRET-1" not in text and "s3cr3t" not in text and "[redacted]" in text
    assert mode(path) == 0o600 and mode(log_dir) == 0o700
    # Once the console is gone, stderr has its records again.
    logging.getLogger("tui_oauth").error("after the console")
    assert "after the console" in capsys.readouterr().err


async def test_an_unexpected_failure_in_the_console_is_logged_to_the_file(
        log_dir: Path, stderr_logging: None, capsys: pytest.CaptureFixture[str],
        tui_store: Store) -> None:
    with console_logging() as path:
        assert path is not None
        async with open_console(tui_store, size=(80, 24)) as (app, pilot):
            app.post_message(WorkFailed(boom(), "Saving the consumer"))
            assert await wait_for(pilot, lambda: path.exists()
                                  and "RuntimeError" in path.read_text(encoding="utf-8"))
    assert capsys.readouterr().err == ""
    assert "Saving the consumer failed" in path.read_text(encoding="utf-8")


def test_the_file_is_rotated_and_every_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "console.log"
    handler = console_log_handler(path, max_bytes=300, backups=2)
    log = logging.getLogger("tests.console_log.rotation")
    log.addHandler(handler)
    log.propagate = False
    try:
        for n in range(40):
            log.warning("line %d of the console log", n)
    finally:
        log.removeHandler(handler)
        log.propagate = True
        handler.close()
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["console.log", "console.log.1", "console.log.2"]
    assert all(mode(path.parent / f) == 0o600 for f in files)
    assert "line 39 " in path.read_text(encoding="utf-8")


def test_a_log_directory_that_cannot_be_made_drops_records_and_says_so_after(
        tmp_path: Path, stderr_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with console_logging(blocker / "console.log") as path:
        assert path is None
        logging.getLogger("tui_oauth").error("lost, but not over the screen")
    err = capsys.readouterr().err
    assert "lost" not in err and "log file could not be made" in err


def test_doctor_names_the_log_file(cli: Cli, log_dir: Path) -> None:
    path = log_dir / "console.log"
    assert f"console log: {path} (not yet written)" in cli("doctor").stdout
    with console_logging():
        logging.getLogger("tui_oauth").error("written")
    assert f"console log: {path} (exists)" in cli("doctor").stdout
    path.chmod(0o644)
    out = cli("doctor").stdout
    assert f"console log: {path} (exists, 0o644); others can read it." in out
    assert f"fix: chmod 600 {path}" in out
