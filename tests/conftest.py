"""Shared fixtures: stores on SQLite and on the real PostgreSQL that `make test` starts.

`make test` exports TUI_OAUTH_TEST_PG_URL (a superuser URL on 127.0.0.1) and
TUI_OAUTH_TEST_SERVICES=1, and runs pytest inside an unlocked gnome-keyring
session.  Run by hand without them, the PostgreSQL and Secret Service tests
skip; under `make test` a missing service fails instead.
"""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.keyring_backends import MemoryKeyring
from tui_oauth.core.database import make_engine
from tui_oauth.core.migrations import upgrade
from tui_oauth.core.store import Store, open_store

# Fixtures shared by the CLI and console tests; registered here so that pytest
# rewrites their asserts too.
pytest_plugins = ["tests.cli_support", "tests.tui_support"]

# The cyclic garbage collector ran every 700 allocations (Python's default) over the
# many objects the console tests make (Textual's widgets, styles, strips): a fifth of
# their CPU (tests/tui: 130 s of CPU, 102 s with this).  Test processes collect less
# often, and leave out of it what collection imported (frozen), which lives to the end
# anyway.  Nothing is lost: what is garbage is still collected, later; pytest's own
# collection at the session's end still reports unraisable exceptions.
def pytest_sessionstart(session: pytest.Session) -> None:
    gc.set_threshold(50_000, 20, 100)


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()


SERVICES_REQUIRED = os.environ.get("TUI_OAUTH_TEST_SERVICES") == "1"
PG_URL = os.environ.get("TUI_OAUTH_TEST_PG_URL")


def need_service(what: str) -> None:
    """Skip when run by hand without the services; fail under `make test`."""
    if SERVICES_REQUIRED:
        pytest.fail(f"{what} is required under make test but is not available")
    pytest.skip(f"{what} not available (run through `make test`)")


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    """A migrated template database, copied for each test that wants PostgreSQL."""
    if not PG_URL:
        yield None
        return
    name = f"tuioauth_tmpl_{uuid.uuid4().hex[:8]}"
    admin = _libpq(PG_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield name
    while _pg_pool:
        _drop_pg_database(_pg_pool.pop())
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# A test's PostgreSQL database is given back after the test and, emptied, serves the
# next one in this process: making one from the template (and dropping it) cost about
# half a second a test, 130 s of the suite's time.  A database whose schema a test
# changed (the signature below differs) is dropped instead.
_pg_pool: list[str] = []
_pg_state: dict[str, Any] = {}
SCHEMA_SIGNATURE = """
SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM (
    SELECT 'rel:' || relname || ':' || relkind::text AS x FROM pg_class
        WHERE relnamespace = 'public'::regnamespace
    UNION ALL SELECT 'trigger:' || t.tgname || ':' || t.tgenabled::text FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
    UNION ALL SELECT 'function:' || proname FROM pg_proc
        WHERE pronamespace = 'public'::regnamespace
    UNION ALL SELECT 'schema:' || version_num FROM alembic_version
) parts
"""


def _pg_url(name: str) -> str:
    assert PG_URL
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def _template_state(template: str) -> dict[str, Any]:
    if not _pg_state:
        with psycopg.connect(_libpq(_pg_url(template)), autocommit=True) as conn:
            _pg_state["signature"] = conn.execute(SCHEMA_SIGNATURE).fetchone()[0]  # type: ignore[index]
            _pg_state["meta"] = conn.execute("SELECT key, value FROM store_meta").fetchall()
            _pg_state["tables"] = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version' ORDER BY tablename")]
    return _pg_state


def _fresh_pg_database(template: str) -> tuple[str, str]:
    state = _template_state(template)
    while _pg_pool:
        name = _pg_pool.pop()
        url = _pg_url(name)
        try:
            with psycopg.connect(_libpq(PG_URL or ""), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                              " WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            with psycopg.connect(_libpq(url), autocommit=True) as conn:
                if conn.execute(SCHEMA_SIGNATURE).fetchone()[0] != state["signature"]:  # type: ignore[index]
                    raise LookupError("schema changed")
                tables = ", ".join(f'"{t}"' for t in state["tables"])
                with conn.transaction():
                    conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
                    for key, value in state["meta"]:
                        conn.execute("INSERT INTO store_meta (key, value) VALUES (%s, %s)",
                                     (key, str(uuid.uuid4()) if key == "store_id" else value))
            return name, url
        except (psycopg.Error, LookupError):
            _drop_pg_database(name)
    assert PG_URL
    name = f"tuioauth_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = _pg_url(name)
    # A store of its own: a new id, so keyring items never collide between tests.
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("UPDATE store_meta SET value = %s WHERE key = 'store_id'",
                     (str(uuid.uuid4()),))
    return name, url


def _give_back_pg_database(name: str) -> None:
    """For the next test (emptied when taken); at most two kept per process."""
    if len(_pg_pool) < 2:
        _pg_pool.append(name)
    else:
        _drop_pg_database(name)


def _drop_pg_database(name: str) -> None:
    assert PG_URL
    with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_template: list[Path] = []


def new_sqlite_store(db_url: str) -> None:
    """Make an empty store (with its own id) at a SQLite URL or path that has none."""
    import shutil
    import sqlite3
    import tempfile
    import uuid

    from tui_oauth.core.config import resolve_db_url
    from tui_oauth.core.database import parse_url, sqlite_path
    from tui_oauth.core.store import open_store

    path = sqlite_path(parse_url(resolve_db_url(db_url)))
    if path is None or path.exists() or not path.parent.is_dir():
        return
    if not _template:
        template = Path(tempfile.mkdtemp(prefix="store-template-")) / "template.db"
        open_store(f"sqlite:///{template}", create=True).close()
        _template.append(template)
    shutil.copyfile(_template[0], path)
    path.chmod(0o600)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE store_meta SET value = ? WHERE key = 'store_id'",
                     (str(uuid.uuid4()),))
    conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path,
           pg_template: str | None) -> Iterator[str]:
    """A new, empty store URL on each engine."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        new_sqlite_store(url)  # a migrated copy, as the PostgreSQL one is from a template
        yield url
        return
    if pg_template is None:
        need_service("PostgreSQL (TUI_OAUTH_TEST_PG_URL)")
    name, url = _fresh_pg_database(pg_template)  # type: ignore[arg-type]
    yield url
    _give_back_pg_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A new, empty SQLite store (copied from a migrated template: migrating each
    store anew cost about half a second a test)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    new_sqlite_store(url)
    return url


@pytest.fixture
def memory_keyring() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
def sqlite_store(sqlite_url: str, memory_keyring: MemoryKeyring) -> Iterator[Store]:
    """A SQLite store with an in-memory keyring (the provider and consumer-side tests)."""
    s = open_store(sqlite_url, secrets_backend=memory_keyring)
    yield s
    s.close()


@pytest.fixture
def server(sqlite_store: Store) -> Iterator[Any]:
    """tui-oauth's provider over ``sqlite_store``, on 127.0.0.1 (tests.provider_support)."""
    from tests.provider_support import running_server

    with running_server(sqlite_store) as srv:
        yield srv


@pytest.fixture
def store(db_url: str, memory_keyring: MemoryKeyring) -> Iterator[Store]:
    """A store on SQLite and on PostgreSQL, with an in-memory keyring."""
    s = open_store(db_url, secrets_backend=memory_keyring)
    yield s
    s.close()


def secret_service_backend() -> keyring.backend.KeyringBackend:
    """The real Secret Service, or skip (fail under make test) when there is none."""
    from keyring.backends import SecretService

    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        need_service("the Secret Service (a D-Bus session with gnome-keyring)")
    backend = SecretService.Keyring()
    try:
        backend.get_password("tui-oauth-probe", "probe")
    except Exception as exc:
        need_service(f"the Secret Service ({exc})")
    return backend


@pytest.fixture
def secret_service() -> keyring.backend.KeyringBackend:
    """The real Secret Service backend (gnome-keyring started by make test)."""
    return secret_service_backend()


@pytest.fixture
def real_store(db_url: str, secret_service: keyring.backend.KeyringBackend) -> Iterator[Store]:
    """A store on SQLite and PostgreSQL, with secrets in the real Secret Service."""
    s = open_store(db_url, secrets_backend=secret_service)
    yield s
    for name in s.secrets.list_names() or []:
        s.secrets.delete(name)
    s.close()


# Consumer Info makes a 2048-bit RSA key pair the first time a store's is read, and
# `info rotate-key` another: ~90 ms of CPU each, some 270 times in a run (15 s of the
# suite's budget).  In this process the service takes real pairs from a small pool
# instead, made once and handed out in turn (so a rotation's new pair always differs
# from the old one).  Key generation itself is tested in tests/unit/test_keys.py, and
# programs a test starts (the CLI in a subprocess) still generate their own.
_POOL_SIZE = 4
_pool: list[tuple[str, str]] = []
_turn = [0]


@pytest.fixture(autouse=True, scope="session")
def _key_pairs_from_a_pool() -> Iterator[None]:
    from tui_oauth.core import keys
    from tui_oauth.core.services import consumer_info

    real = keys.generate_key_pair

    def pooled(bits: int = 2048) -> tuple[str, str]:
        if bits != 2048:
            return real(bits)
        if len(_pool) < _POOL_SIZE:
            _pool.append(real(bits))
            return _pool[-1]
        _turn[0] = (_turn[0] + 1) % _POOL_SIZE
        return _pool[_turn[0]]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(consumer_info, "generate_key_pair", pooled)
        yield


# The layers (README, Tests): each test is marked with the directory it lives in, so
# that `-m unit` (or `-m "not e2e"`) selects one layer.  The markers are registered
# in pyproject.toml; a test file left at tests/ itself gets no layer and fails here.
LAYERS = ("unit", "service", "cli", "tui", "e2e")
_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.resolve().parts
        if parts[:len(_TESTS.parts)] != _TESTS.parts:
            continue  # not one of ours (a path outside tests/ given on the command line)
        layer = parts[len(_TESTS.parts)]
        if layer not in LAYERS:
            raise pytest.UsageError(f"{item.nodeid}: a test file belongs in one of "
                                    f"tests/{{{','.join(LAYERS)}}}/, not in {layer}")
        item.add_marker(getattr(pytest.mark, layer))
