"""Shared fixtures: stores on SQLite and on the real PostgreSQL that `make test` starts.

`make test` exports TUI_OAUTH_TEST_PG_URL (a superuser URL on 127.0.0.1) and
TUI_OAUTH_TEST_SERVICES=1, and runs pytest inside an unlocked gnome-keyring
session.  Run by hand without them, the PostgreSQL and Secret Service tests
skip; under `make test` a missing service fails instead.
"""

from __future__ import annotations

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
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fresh_pg_database(template: str) -> tuple[str, str]:
    assert PG_URL
    name = f"tuioauth_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    # A store of its own: a new id, so keyring items never collide between tests.
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("UPDATE store_meta SET value = %s WHERE key = 'store_id'",
                     (str(uuid.uuid4()),))
    return name, url


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
    _drop_pg_database(name)


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
