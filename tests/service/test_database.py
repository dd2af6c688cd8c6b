"""Engines and migrations: SQLite settings, file modes, concurrency, Alembic, open errors."""

from __future__ import annotations

import multiprocessing
import sqlite3
import stat
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, SQLModel

from tests.conftest import PG_URL, _libpq, need_service
from tui_oauth.core import database
from tui_oauth.core.config import default_db_path
from tui_oauth.core.database import make_engine
from tui_oauth.core.errors import StoreError
from tui_oauth.core.migrations import HEAD, alembic_config, current_revision, upgrade
from tui_oauth.core.models import StoreMeta
from tui_oauth.core.store import open_store

TABLES = set(SQLModel.metadata.tables)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'e.db'}")
    yield eng
    eng.dispose()


# --- SQLite settings -----------------------------------------------------------------

def test_sqlite_pragmas(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert (conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) > 0
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_sqlite_foreign_keys_enforced_and_cascade(sqlite_url: str) -> None:
    token = ("INSERT INTO tokens (token, consumer_id, type, state, issued_at) "
             "VALUES (:t, :c, 'access', 'pending', '2026-01-01 00:00:00')")
    with open_store(sqlite_url) as store:
        with pytest.raises(IntegrityError, match="FOREIGN KEY"), store.engine.begin() as conn:
            conn.execute(text(token), {"t": "dangling", "c": 999})
        with store.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO consumers (id, uid, key, name, has_shared_secret, signature_method,"
                " allow_plaintext, three_lo_allowed, two_lo_allowed, two_lo_impersonation,"
                " created_at, updated_at) VALUES (7, 'u', 'k', 'n', 0, 'RSA-SHA1', 0, 1, 0, 0,"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
            conn.execute(text(token), {"t": "t1", "c": 7})
        with store.engine.begin() as conn:
            conn.execute(text("DELETE FROM consumers WHERE id = 7"))
            assert conn.execute(text("SELECT COUNT(*) FROM tokens")).scalar() == 0


def test_transactions_begin_immediate(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a read-only transaction takes the write lock at BEGIN, so read-modify-write
    between processes cannot interleave; a second writer waits (here: gives up)."""
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 200)
    impatient = make_engine(str(engine.url))
    try:
        with engine.connect() as first:
            first.execute(text("SELECT 1"))  # only reads, yet holds the RESERVED lock
            started = time.monotonic()
            with impatient.connect() as second, pytest.raises(OperationalError, match="locked"):
                second.execute(text("SELECT 1"))
            assert time.monotonic() - started < 5
            # Plain readers are not blocked (WAL).
            raw = sqlite3.connect(engine.url.database or "")
            assert raw.execute("SELECT 1").fetchone() == (1,)
            raw.close()
        with impatient.connect() as second:  # the lock went with the first transaction
            assert second.execute(text("SELECT 1")).scalar() == 1
    finally:
        impatient.dispose()


def _increment(url: str, n: int, start: multiprocessing.synchronize.Event) -> None:
    eng = make_engine(url)
    start.wait(30)
    for _ in range(n):
        with Session(eng) as s:
            row = s.get(StoreMeta, "counter")
            assert row is not None
            row.value = str(int(row.value) + 1)
            s.add(row)
            s.commit()
    eng.dispose()


def test_two_processes_lose_no_update(sqlite_url: str) -> None:
    eng = make_engine(sqlite_url)
    upgrade(eng)
    with Session(eng) as s:
        s.add(StoreMeta(key="counter", value="0"))
        s.commit()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_increment, args=(sqlite_url, 100, start)) for _ in range(2)]
    for w in workers:
        w.start()
    start.set()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    with Session(eng) as s:
        assert s.get(StoreMeta, "counter").value == "200"  # type: ignore[union-attr]
    eng.dispose()


def test_a_missing_directory_is_an_error_not_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "mistyped" / "store.db"
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{path}")
    assert not path.parent.exists()


def test_new_file_and_directory_modes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default data directory is created 0700, the file 0600."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "a" / "data"))
    path = default_db_path()
    assert tmp_path in path.parents
    with open_store(f"sqlite:///{path}") as store:
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with store.engine.connect() as conn:  # the WAL and shared-memory files follow
            conn.execute(text("SELECT COUNT(*) FROM consumers"))
            for suffix in ("-wal", "-shm"):
                extra = Path(f"{path}{suffix}")
                assert extra.exists() and stat.S_IMODE(extra.stat().st_mode) == 0o600
    assert database.file_mode(path) == "-rw-------"


# --- migrations ----------------------------------------------------------------------

def test_head_matches_scripts() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD


@contextmanager
def empty_pg_engine() -> Iterator[Engine]:
    """An engine on a new PostgreSQL database with no tables, dropped afterwards."""
    if not PG_URL:
        need_service("PostgreSQL (TUI_OAUTH_TEST_PG_URL)")
    assert PG_URL
    name = f"tuioauth_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    eng = make_engine(make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
    try:
        yield eng
    finally:
        eng.dispose()
        with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database with no tables at all."""
    if request.param == "postgresql":
        with empty_pg_engine() as eng:
            yield eng
        return
    eng = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    yield eng
    eng.dispose()


def schema_diff(eng: Engine) -> list[object]:
    import warnings

    with eng.connect() as conn, warnings.catch_warnings():
        # SQLite cannot reflect the expression index on lower(name): not compared there
        # (PostgreSQL compares it); test_names_are_unique_without_regard_to_case proves it.
        warnings.filterwarnings("ignore", message=".*expression-based index")
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, SQLModel.metadata))


def append_only(eng: Engine) -> bool:
    with eng.begin() as conn:
        conn.execute(text("INSERT INTO audit_log (at, actor, action, target_type, target) "
                          "VALUES ('2026-01-01 00:00:00', 'a', 'x', 't', 't')"))
    try:
        with eng.begin() as conn:
            conn.execute(text("DELETE FROM audit_log"))
    except Exception as exc:
        return "append-only" in str(exc)
    return False


def test_migrate_empty_database(empty_engine: Engine) -> None:
    assert current_revision(empty_engine) is None
    assert upgrade(empty_engine) == (None, HEAD)
    assert set(inspect(empty_engine).get_table_names()) == TABLES | {"alembic_version"}
    assert schema_diff(empty_engine) == []
    assert append_only(empty_engine)
    with empty_engine.connect() as conn:
        store_id = conn.execute(text("SELECT value FROM store_meta WHERE key = 'store_id'"))
        uuid.UUID(store_id.scalar_one())
    assert upgrade(empty_engine) == (HEAD, HEAD)  # idempotent


def test_downgrade_to_base_and_up_again(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    command.downgrade(alembic_config(empty_engine), "base")
    assert current_revision(empty_engine) is None
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}
    upgrade(empty_engine)
    assert current_revision(empty_engine) == HEAD
    assert set(inspect(empty_engine).get_table_names()) == TABLES | {"alembic_version"}
    assert schema_diff(empty_engine) == []
    assert append_only(empty_engine)


def test_open_store_migrates_and_refuses_old_schema_when_asked(
        empty_engine: Engine) -> None:
    url = empty_engine.url.render_as_string(hide_password=False)
    for kwargs in ({"read_only": True}, {"auto_upgrade": False}):
        with pytest.raises(StoreError, match="schema is at nothing") as err:
            open_store(url, **kwargs)  # type: ignore[arg-type]
        assert "db upgrade" in (err.value.hint or "")
    assert current_revision(empty_engine) is None
    with open_store(url) as store:
        assert current_revision(store.engine) == HEAD
        uuid.UUID(store.store_id)
        assert store.secrets.namespace == store.store_id


# --- opening errors ------------------------------------------------------------------

def test_unreachable_postgres_gives_readable_store_error() -> None:
    password = "pw-Zq9x7-do-not-show"
    started = time.monotonic()
    with pytest.raises(StoreError) as err:
        open_store(f"postgresql+psycopg://nobody:{password}@127.0.0.1:1/x")
    assert time.monotonic() - started < 5
    message = str(err.value)
    assert message.startswith("Cannot open the database postgresql+psycopg://nobody:***@")
    assert "refused" in message.lower() or "connect" in message.lower()
    assert password not in "".join(traceback.format_exception(err.value))


def test_wrong_password_gives_store_error(pg_template: str | None) -> None:
    if not PG_URL:
        need_service("PostgreSQL (TUI_OAUTH_TEST_PG_URL)")
    bad = make_url(PG_URL).set(password="wrong-pw-S3cr3t")  # type: ignore[arg-type]
    with pytest.raises(StoreError) as err:
        open_store(bad.render_as_string(hide_password=False))
    assert "password authentication failed" in str(err.value)
    assert "wrong-pw-S3cr3t" not in "".join(traceback.format_exception(err.value))


@pytest.mark.parametrize("url", [
    "mysql://root:hunter2@localhost/db",
    "mssql+pyodbc://sa:hunter2@dsn",
    "oracle://scott:hunter2@host/orcl",
])
def test_unsupported_url(url: str) -> None:
    with pytest.raises(StoreError, match="Unsupported database") as err:
        open_store(url)
    assert "hunter2" not in str(err.value)


def test_postgres_connection_settings() -> None:
    with empty_pg_engine() as eng, open_store(
            eng.url.render_as_string(hide_password=False)) as store, \
            store.engine.connect() as conn:
        assert conn.execute(text("SELECT current_setting('application_name')")).scalar() == (
            "tui-oauth")
        assert store.engine.pool._pre_ping
        assert store.dialect == "postgresql"
        assert store.engine.url.password and store.engine.url.password not in store.display_url


def test_upgrade_renames_provider_names_that_differ_only_in_case(engine: Engine) -> None:
    """Migration 0003: no row lost; the later one renamed, and the audit log says why."""
    upgrade(engine, "0002")
    with engine.begin() as conn:
        for i, name in enumerate(["Example", "example", "EXAMPLE", "Other"]):
            conn.execute(text(
                "INSERT INTO service_providers (uid, name, consumer_key, has_shared_secret, "
                "signature_method, request_token_url, authorization_url, access_token_url, "
                "created_at, updated_at, allow_private) VALUES (:uid, :name, 'ck', 0, "
                "'HMAC-SHA1', 'https://x/r', 'https://x/a', 'https://x/t', "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00', 0)"), {"uid": f"u{i}", "name": name})
    upgrade(engine)
    with engine.connect() as conn:
        names = [r[0] for r in conn.execute(text("SELECT name FROM service_providers ORDER BY id"))]
        audit = [r[0] for r in conn.execute(text(
            "SELECT detail FROM audit_log WHERE action = 'provider.rename'"))]
    assert names == ["Example", "example (2)", "EXAMPLE (3)", "Other"]
    assert len(audit) == 2 and "unique without regard to case" in audit[0]
    assert schema_diff(engine) == []
