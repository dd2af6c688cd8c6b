"""Prove that the services `make test` starts are real and reachable.

`scripts/run-tests.sh` starts a throw-away PostgreSQL server and a private
D-Bus session with an unlocked gnome-keyring, then sets
``TUI_OAUTH_TEST_SERVICES=1``.  With that set, a missing service is a failure,
never a skip.  Without it (pytest run by hand) these tests skip: they must not
touch a developer's real keyring or guess at a database.
"""

from __future__ import annotations

import os
import stat
import uuid

import pytest

SERVICES_REQUIRED = os.environ.get("TUI_OAUTH_TEST_SERVICES") == "1"


def _require_env(name: str) -> str:
    if not SERVICES_REQUIRED:
        pytest.skip("TUI_OAUTH_TEST_SERVICES is not set: run `make test` to start the services")
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(f"{name} is not set although TUI_OAUTH_TEST_SERVICES=1", pytrace=False)
    return value


def _psycopg_conninfo(sqlalchemy_url: str, password: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url)
    assert url.drivername == "postgresql+psycopg", url.drivername
    url = url.set(drivername="postgresql")
    if password is not None:
        url = url.set(password=password)
    return url.render_as_string(hide_password=False)


@pytest.mark.postgres
def test_postgres_server_is_real() -> None:
    import psycopg

    conninfo = _psycopg_conninfo(_require_env("TUI_OAUTH_TEST_PG_URL"))
    with psycopg.connect(conninfo, connect_timeout=10) as conn:
        row = conn.execute("select version()").fetchone()
        assert row is not None and row[0].startswith("PostgreSQL "), row
        # Tests create their own databases, so the role must be a superuser.
        superuser = conn.execute(
            "select rolsuper from pg_roles where rolname = current_user"
        ).fetchone()
        assert superuser == (True,)


@pytest.mark.postgres
def test_postgres_requires_the_password() -> None:
    import psycopg

    conninfo = _psycopg_conninfo(_require_env("TUI_OAUTH_TEST_PG_URL"), password="not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(conninfo, connect_timeout=10).close()


@pytest.mark.secret_service
def test_keyring_passphrase_file() -> None:
    path = _require_env("TUI_OAUTH_TEST_KEYRING_PASSPHRASE_FILE")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    with open(path, encoding="utf-8") as f:
        assert f.read().strip(), "keyring passphrase file is empty"


@pytest.mark.secret_service
def test_secret_service_is_real_and_unlocked() -> None:
    _require_env("DBUS_SESSION_BUS_ADDRESS")
    import keyring
    import secretstorage
    from keyring.backends import SecretService

    backend = keyring.get_keyring()
    assert isinstance(backend, SecretService.Keyring), backend

    service = f"tui-oauth-test-environment-{uuid.uuid4()}"
    username = "probe"
    secret = uuid.uuid4().hex

    connection = secretstorage.dbus_init()
    try:
        collection = secretstorage.get_default_collection(connection)
        assert not collection.is_locked(), "default Secret Service collection is locked"

        keyring.set_password(service, username, secret)
        try:
            assert keyring.get_password(service, username) == secret
            # The item really lives in the Secret Service, not in another backend.
            items = list(collection.search_items({"service": service, "username": username}))
            assert len(items) == 1
            assert items[0].get_secret() == secret.encode()
        finally:
            keyring.delete_password(service, username)
        assert keyring.get_password(service, username) is None
        assert not list(collection.search_items({"service": service}))
    finally:
        connection.close()
