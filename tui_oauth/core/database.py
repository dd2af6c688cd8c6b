"""Engines for SQLite and PostgreSQL, and the schema upgrade on open.

SQLite is shared by several processes (console, CLI, provider server), so it
runs in WAL mode with a busy timeout, foreign keys on, and every transaction
opened with ``BEGIN IMMEDIATE`` (measured: plain ``BEGIN`` loses updates or
fails with "database is locked"; see shared/spec/secrets-and-storage.md).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from tui_oauth.core.errors import StoreError

BUSY_TIMEOUT_MS = 10_000
WAL_SIZE_LIMIT = 32 * 1024 * 1024  # bytes the -wal file is cut back to after a checkpoint
# Execution option marking a connection that only reads (see _on_begin).
READ_ONLY = "tui_oauth_read_only"
SUPPORTED_DIALECTS = ("sqlite", "postgresql")


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(
            f"{redact_url(url)!s} is not a database URL.",
            hint="Give a file path, sqlite:///PATH or postgresql+psycopg://USER@HOST/DB.",
        ) from exc
    if parsed.get_backend_name() not in SUPPORTED_DIALECTS:
        raise StoreError(
            f"Unsupported database {parsed.get_backend_name()!r}.",
            hint="Use SQLite (a file path) or postgresql+psycopg://USER@HOST/DB.",
        )
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def redact_url(url: str | URL) -> str:
    """The URL with any password hidden, for display and logs."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<unparseable URL>"
    return parsed.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite":
        return None
    db = url.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db)


def _prepare_sqlite_file(path: Path) -> None:
    """Create the file (0600) before SQLite does.

    The default data directory is created (0700) when missing; any other
    directory must exist, so that a mistyped --db path is an error rather than
    a new, empty store in a surprising place.
    """
    from tui_oauth.core.config import default_data_dir

    if not path.parent.is_dir() and path.parent != default_data_dir():
        raise StoreError(
            f"The directory {path.parent} does not exist.",
            hint="Check the --db path (or TUI_OAUTH_DB), or create the directory first.",
        )
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(
            f"Cannot create the database file {path}: {exc.strerror}.",
            hint="Check that the directory is writable, or choose another with --db.",
        ) from exc


def _install_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA synchronous = NORMAL")
            # After a checkpoint resets the WAL, cut the file back to this size
            # (otherwise it keeps its largest size forever).
            cur.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front (no lost updates, no mid-transaction
        # "database is locked"); readers, marked with READ_ONLY, stay deferred so
        # that in WAL mode they never wait for, or block, a writer.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


#: PostgreSQL channel on which every write to what the console shows is announced
#: (see _install_pg_change_notify and tui_oauth.core.changes).
CHANGE_CHANNEL = "tui_oauth_changes"
#: Tables whose writes are not announced: the provider writes a nonce per request,
#: and nothing shows them.
UNANNOUNCED_TABLES = frozenset({"nonces", "alembic_version"})
_WRITE_STATEMENT = re.compile(r'\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)', re.I)
_CHANGED = "tui_oauth_changed"  # Connection.info flag: this transaction wrote a shown table


def _install_pg_change_notify(engine: Engine) -> None:
    """PostgreSQL: a transaction that wrote a table the console shows sends
    ``NOTIFY tui_oauth_changes`` just before it commits (delivered at commit, and
    not at all on rollback), so a console elsewhere refreshes at once.

    Measured on PostgreSQL 15 over loopback: about 0.1 ms on such a transaction
    (one more statement before COMMIT); nonce-only transactions (the provider's
    per-request work) and reads send nothing and cost only a regex match."""

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not conn.info.get(_CHANGED):
            m = _WRITE_STATEMENT.match(statement)
            if m and m.group(1).lower() not in UNANNOUNCED_TABLES:
                conn.info[_CHANGED] = True

    @event.listens_for(engine, "commit")
    def _notify(conn: Any) -> None:
        if conn.info.pop(_CHANGED, False):
            cur = conn.connection.dbapi_connection.cursor()
            try:
                cur.execute(f"NOTIFY {CHANGE_CHANNEL}")
            finally:
                cur.close()

    @event.listens_for(engine, "rollback")
    def _forget(conn: Any) -> None:
        conn.info.pop(_CHANGED, None)


def reader(engine: Engine) -> Engine:
    """The same engine (and pool), for transactions that only read."""
    return engine.execution_options(**{READ_ONLY: True})


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the settings this project relies on."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if path is not None:
            _prepare_sqlite_file(path)
        engine = create_engine(
            parsed,
            # A pool (not NullPool): opening a SQLite connection, setting its
            # pragmas and, on closing the last one, checkpointing the WAL cost
            # about 0.7 ms, which the provider would otherwise pay per request.
            pool_size=5, max_overflow=10, pool_timeout=30,
            connect_args={"check_same_thread": False}
        )
        _install_sqlite_pragmas(engine)
        return engine
    try:
        engine = create_engine(
            parsed,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=5,
            connect_args={"connect_timeout": 10, "application_name": "tui-oauth"},
        )
    except ImportError as exc:  # psycopg is the [postgres] extra; SQLite needs nothing more
        raise StoreError(
            f"A PostgreSQL store needs psycopg, which cannot be imported ({exc}).",
            hint="Install it with: pip install 'tui-oauth[postgres]' "
                 "(with pipx: pipx inject tui-oauth 'psycopg[binary]').",
        ) from None
    _install_pg_change_notify(engine)
    return engine


def check_connection(engine: Engine) -> None:
    """Connect once, turning failures into a StoreError a person can act on."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        raise StoreError(
            f"Cannot open the database {redact_url(engine.url)}: {_first_line(exc)}",
            hint="Check the path or the server address, user and password (--db or TUI_OAUTH_DB).",
        ) from exc
    except SQLAlchemyError as exc:
        raise StoreError(
            f"Cannot open the database {redact_url(engine.url)}: {_first_line(exc)}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    line = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return line


@contextmanager
def translate_db_errors(action: str) -> Iterator[None]:
    """Turn driver errors into StoreError with the action named."""
    try:
        yield
    except OperationalError as exc:
        raise StoreError(f"The database failed while {action}: {_first_line(exc)}") from exc


def file_mode(path: Path) -> str | None:
    try:
        return stat.filemode(path.stat().st_mode)
    except OSError:
        return None


def _sqlite_run(engine: Engine, *statements: str, finally_: str | None = None) -> Any:
    """Run ``statements`` on a raw pooled SQLite connection, outside any transaction
    (it is in autocommit mode, see _on_connect: VACUUM and checkpoints need that),
    then ``finally_`` on it whatever happened; returns the last statement's first row."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        try:
            row = None
            for sql in statements:
                row = cur.execute(sql).fetchone()
            return row
        finally:
            if finally_ is not None:
                cur.execute(finally_)
            cur.close()
    finally:
        raw.close()


def checkpoint(engine: Engine, mode: str = "TRUNCATE", *, wait_ms: int = 100
               ) -> tuple[int, int, int] | None:
    """SQLite: copy the WAL into the database and start it again from empty.

    TRUNCATE waits (up to ``wait_ms``) for the readers still using old WAL frames,
    so a long purge under load does not grow the WAL without bound: the server's
    many short overlapping reads would otherwise keep it from ever being reset.
    Returns SQLite's (busy, log frames, checkpointed frames); None on PostgreSQL,
    where this does not apply.
    """
    if engine.dialect.name != "sqlite":
        return None
    if mode not in ("PASSIVE", "FULL", "RESTART", "TRUNCATE"):
        raise ValueError(mode)
    # A short wait: while it waits for readers the checkpoint holds the write lock,
    # and a writer waiting for that lock keeps its own read snapshot, so the two
    # would wait on each other for the whole busy timeout. Better to give up
    # (busy = 1) and try again after the next batch.
    row = _sqlite_run(engine, f"PRAGMA busy_timeout = {wait_ms}",
                      f"PRAGMA wal_checkpoint({mode})",
                      finally_=f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return (int(row[0]), int(row[1]), int(row[2])) if row else None


@dataclass(frozen=True)
class SpaceReport:
    """How big a SQLite store is, and how much of it is free inside the file."""

    file_bytes: int
    free_bytes: int  # pages on the freelist: reused by new rows, returned by VACUUM
    wal_bytes: int


def sqlite_space(engine: Engine) -> SpaceReport | None:
    path = sqlite_path(engine.url)
    if path is None:
        return None
    with reader(engine).connect() as conn:
        page_size = int(conn.exec_driver_sql("PRAGMA page_size").scalar() or 0)
        free_pages = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0)

    def size(p: Path) -> int:
        try:
            return p.stat().st_size
        except OSError:
            return 0
    return SpaceReport(size(path), page_size * free_pages, size(Path(f"{path}-wal")))


def vacuum(engine: Engine) -> None:
    """Give free space back: SQLite rewrites the file (VACUUM, then an empty WAL);
    PostgreSQL marks dead rows reusable and refreshes statistics (VACUUM ANALYZE)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        return
    _sqlite_run(engine, "VACUUM")
    checkpoint(engine)
