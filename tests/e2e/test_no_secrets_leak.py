"""No secret ever reaches the database, the audit log, the logs or an error message.

Runs against the real Secret Service: a distinctive value for every secret, a
whole admin session (add, edit with replaced secrets, remove, create and rotate
the Consumer Info key pair), then a scan of the raw SQLite file (with its WAL),
of every column of every table on PostgreSQL, and of everything logged at DEBUG.
"""

from __future__ import annotations

import logging
import sqlite3
import traceback
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.helpers import HTTPS, all_text, pem_body_lines, pem_spki, rsa_key
from tests.keyring_backends import FailingKeyring, MemoryKeyring
from tui_oauth.core.errors import SecretStoreError
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store, open_store


def distinctive(label: str) -> str:
    return f"LEAK-{label}-{uuid.uuid4().hex}"


def run_session(store: Store) -> tuple[list[str], list[str]]:
    """A busy admin session; returns (secret values used, private key PEMs used)."""
    s = {k: distinctive(k) for k in (
        "c-hmac", "c-hmac-2", "c-plain", "c-late", "p-hmac", "p-hmac-2", "p-plain", "p-gone")}
    pems: list[str] = []
    svc = services(store)
    consumers, providers, info = svc.consumers, svc.providers, svc.consumer_info

    consumers.add(key="hmac:1", name="HMAC", shared_secret=s["c-hmac"],
                  signature_method="HMAC-SHA1", callback_url="https://h.example.com/cb")
    consumers.add(key="plain:1", name="Plain", shared_secret=s["c-plain"],
                  signature_method="HMAC-SHA1", allow_plaintext=True)
    consumers.add(key="jira:1", name="JIRA", public_key=pem_spki(rsa_key(0)))
    consumers.edit("hmac:1", shared_secret=s["c-hmac-2"], name="HMAC renamed")
    consumers.edit("jira:1", signature_method="HMAC-SHA1", shared_secret=s["c-late"])
    consumers.edit("plain:1", shared_secret=None, allow_plaintext=False,
                   signature_method="RSA-SHA1", public_key=pem_spki(rsa_key(1)))
    assert consumers.shared_secret("hmac:1") == s["c-hmac-2"]  # revealed on purpose

    providers.add(name="Twitter", consumer_key="tw", shared_secret=s["p-hmac"], **HTTPS)
    providers.add(name="Plain", consumer_key="pl", shared_secret=s["p-plain"],
                  signature_method="PLAINTEXT", **HTTPS)
    providers.add(name="Gone", consumer_key="g", shared_secret=s["p-gone"], **HTTPS)
    providers.edit("Twitter", shared_secret=s["p-hmac-2"], name="X")
    providers.record_reveal("X")
    providers.remove("Gone")
    providers.add(name="RSA", consumer_key="r", signature_method="RSA-SHA1", **HTTPS)

    info.get()
    pems.append(info.private_key_pem())
    info.edit(name="Us", description="who we are")
    info.rotate_key()
    pems.append(info.private_key_pem())
    info.rotate_key()
    pems.append(info.private_key_pem())
    assert services(store).doctor.run().ok
    return list(s.values()), pems


def needles(secrets: list[str], pems: list[str]) -> list[str]:
    return [*secrets, *(line for pem in pems for line in pem_body_lines(pem)), "PRIVATE KEY"]


def assert_clean(haystack: str | bytes, secrets: list[str], pems: list[str],
                 where: str) -> None:
    for needle in needles(secrets, pems):
        found = needle.encode() in haystack if isinstance(haystack, bytes) else (
            needle in haystack)
        assert not found, f"{needle[:24]}... found in {where}"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy.engine", "sqlalchemy.pool", "alembic", "keyring",
                 "secretstorage", "tui_oauth"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def logged(caplog: pytest.LogCaptureFixture) -> str:
    parts = [caplog.text]
    for record in caplog.records:
        parts += [repr(record.msg), repr(record.args), record.exc_text or ""]
    return "\n".join(parts)


def audit_text(store: Store) -> str:
    """The whole audit log, a row a line (for leak scans)."""
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM audit_log")).all()
    return "\n".join("|".join(str(v) for v in row) for row in rows)


def test_real_secret_service_session_leaks_nothing(
        real_store: Store, debug_logs: pytest.LogCaptureFixture) -> None:
    # Hold a plain connection open (no transaction) so SQLite keeps its WAL: scanned too.
    held = None
    if real_store.dialect == "sqlite":
        path = Path(make_url(real_store.url).database or "")
        held = sqlite3.connect(path)
        held.execute("SELECT COUNT(*) FROM store_meta").fetchall()
    try:
        secrets, pems = run_session(real_store)
        # The secrets really are in the keyring (so the scan is not vacuous).
        assert services(real_store).consumers.shared_secret("hmac:1") in secrets
        assert services(real_store).consumer_info.private_key_pem() == pems[-1]

        assert_clean(all_text(real_store), secrets, pems, "a table")
        audit = audit_text(real_store)
        assert "shared secret replaced" in audit
        assert_clean(audit, secrets, pems, "the audit log")

        if held is not None:
            files = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
            assert Path(f"{path}-wal") in files
            assert b"hmac:1" in path.read_bytes() + Path(f"{path}-wal").read_bytes()
            for f in files:
                assert_clean(f.read_bytes(), secrets, pems, f.name)
    finally:
        if held is not None:
            held.close()
    assert "INSERT INTO consumers" in debug_logs.text  # SQL logging was really on
    assert_clean(logged(debug_logs), secrets, pems, "the logs")


def test_memory_session_leaks_nothing_into_logs(
        store: Store, debug_logs: pytest.LogCaptureFixture) -> None:
    secrets, pems = run_session(store)
    assert_clean(all_text(store), secrets, pems, "a table")
    assert_clean(logged(debug_logs), secrets, pems, "the logs")


def test_failing_keyring_that_echoes_the_value(
        db_url: str, debug_logs: pytest.LogCaptureFixture) -> None:
    """A careless backend puts the secret in its error; it must go no further."""
    secret = distinctive("echoed")
    keyring = FailingKeyring(MemoryKeyring(), fail_on={"set"}, echo_value=True)
    with open_store(db_url, secrets_backend=keyring) as store:
        for call in (
            lambda: services(store).consumers.add(key="k", name="n", shared_secret=secret,
                                                  signature_method="HMAC-SHA1"),
            lambda: services(store).providers.add(name="p", consumer_key="k", shared_secret=secret,
                                                  **HTTPS),
        ):
            with pytest.raises(SecretStoreError) as err:
                call()
            shown = "".join(traceback.format_exception(err.value))
            shown += repr(err.value.__dict__) + str(getattr(err.value, "__notes__", ""))
            assert secret not in shown
        assert_clean(all_text(store), [secret], [], "a table")
    assert_clean(logged(debug_logs), [secret], [], "the logs")


def test_held_tokens_leak_nothing(sqlite_url: str, memory_keyring: MemoryKeyring,
                                  debug_logs: pytest.LogCaptureFixture) -> None:
    """The consumer side (issue 8): held token secrets, the provider's shared secret and
    our private key stay out of the tables, the audit log, the file, the logs and the
    failure messages (a signature_invalid one shows the base string we signed)."""
    from tests.e2e.test_consumer_side import connect, endpoints
    from tests.provider_support import add_hmac_consumer, running_server
    from tui_oauth.core.errors import ProviderProblemError

    store = open_store(sqlite_url, secrets_backend=memory_keyring)
    path = Path(make_url(sqlite_url).database or "")
    held = sqlite3.connect(path)  # keeps the WAL in place: scanned too
    held.execute("SELECT COUNT(*) FROM store_meta").fetchall()
    shared, wrong = distinctive("p-shared"), distinctive("p-wrong")
    try:
        with running_server(store) as srv:
            add_hmac_consumer(store, "partner", shared)
            services(store).providers.add(name="hmac", consumer_key="partner", shared_secret=shared,
                                          allow_private=True, **endpoints(srv.base))
            info = services(store).consumer_info.get()
            services(store).consumers.add(key=info.key, name="Us", public_key=info.public_key)
            services(store).providers.add(name="rsa", consumer_key=info.key,
                                          signature_method="RSA-SHA1",
                                          allow_private=True, **endpoints(srv.base))
            secrets = [shared, wrong]
            for name in ("hmac", "rsa"):
                connect(store, name)
                assert services(store).consumer_side.call(name, "GET", "/rest/whoami",
                                                          local_user="ops").status == 200
                svc = services(store)
                secrets.append(svc.consumer_side._held(svc.providers.get(name), "ops")[1])
            services(store).providers.edit("hmac", shared_secret=wrong)
            with pytest.raises(ProviderProblemError) as err:
                services(store).consumer_side.request_token("hmac")
        assert err.value.base_string
        # Our provider logged its refusal (the scans below cover the refusal log): the
        # base string and signature it was sent, never the secret either side used
        with store.engine.connect() as conn:
            logged_refusals = conn.execute(text(
                "SELECT problem, base_string, signature FROM refusals")).all()
        assert [r[0] for r in logged_refusals] == ["signature_invalid"]
        assert logged_refusals[0][1] and logged_refusals[0][2]
        pems = [services(store).consumer_info.private_key_pem()]
        assert_clean(str(err.value), secrets, pems, "a failure message")
        assert_clean(all_text(store), secrets, pems, "a table")
        audit = audit_text(store)
        assert "provider.connect" in audit
        assert_clean(audit, secrets, pems, "the audit log")
        for f in (path, Path(f"{path}-wal")):
            if f.exists():
                assert_clean(f.read_bytes(), secrets, pems, f.name)
    finally:
        held.close()
        store.close()
    assert_clean(logged(debug_logs), secrets, pems, "the logs")
