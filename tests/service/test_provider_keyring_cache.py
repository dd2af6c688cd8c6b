"""The server's cache of consumers' secrets when the keyring fails (issue 7, item 3).

A failed keyring read must not be cached as a value: the consumer is refused
while the keyring cannot be read, the next refresh tries again, the failure is
logged once in words, and `tui-oauth doctor` reports it (from any host).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from oauthlib.oauth1 import Client

from tests.keyring_backends import FailingKeyring, MemoryKeyring
from tests.provider_support import add_hmac_consumer
from tui_oauth.core.provider.engine import ProviderEngine
from tui_oauth.core.provider.problems import Problem
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store, open_store

URL = "https://sp.example.com/rest/whoami"
KEY, SECRET = "partner", "kd94hf93k423kf44"


@pytest.fixture
def flaky() -> FailingKeyring:
    return FailingKeyring(MemoryKeyring(), fail_on=())


@pytest.fixture
def flaky_store(db_url: str, flaky: FailingKeyring) -> Iterator[Store]:
    s = open_store(db_url, secrets_backend=flaky)
    yield s
    s.close()


def signed_2lo() -> tuple[str, dict[str, str]]:
    uri, headers, _ = Client(KEY, client_secret=SECRET).sign(URL)
    return uri, headers


def problem(engine: ProviderEngine) -> str | None:
    uri, headers = signed_2lo()
    try:
        engine.verify(uri, "GET", "", headers)
    except Problem as exc:
        return exc.problem
    return None


def test_a_failed_keyring_read_is_retried_not_cached(
        flaky_store: Store, flaky: FailingKeyring, caplog: pytest.LogCaptureFixture) -> None:
    add_hmac_consumer(flaky_store, KEY, SECRET, two_lo_allowed=True)
    engine = ProviderEngine(flaky_store, "https://sp.example.com")
    assert problem(engine) is None

    # The consumer changes while the keyring is locked: the refresh cannot read it.
    services(flaky_store).consumers.edit(KEY, name="Partner Inc")
    flaky.fail_on = frozenset({"get"})
    with caplog.at_level(logging.ERROR, logger="tui_oauth.core.provider.consumers"):
        engine.consumers.refresh_all()
        engine.consumers.refresh_all()
        assert problem(engine) == "signature_invalid"
    said = [r.getMessage() for r in caplog.records if KEY in r.getMessage()]
    assert len(said) == 1, said  # once, not at every refresh
    assert "cannot read its shared secret" in said[0] and "Retrying" in said[0]
    assert SECRET not in caplog.text

    # doctor (here, with a readable keyring: another host, or later) says so.
    flaky.fail_on = frozenset()
    report = services(flaky_store).doctor.run()
    failing = [c for c in report.checks if c.name == "server keyring reads"]
    assert failing and failing[0].status == "fail" and repr(KEY) in failing[0].message

    # The keyring works again: the next refresh reads it, with no restart.
    engine.consumers.refresh_all()
    assert problem(engine) is None
    checks = services(flaky_store).doctor.run().checks
    assert not [c for c in checks if c.name == "server keyring reads"]


def test_the_request_path_does_not_retry_the_keyring(flaky_store: Store,
                                                     flaky: FailingKeyring) -> None:
    """A locked keyring answers slowly if at all: only the refresh retries."""
    add_hmac_consumer(flaky_store, KEY, SECRET, two_lo_allowed=True)
    engine = ProviderEngine(flaky_store, "https://sp.example.com")
    services(flaky_store).consumers.edit(KEY,
                                         name="Partner Inc")  # changed: loaded on its next request
    flaky.fail_on = frozenset({"get"})
    assert problem(engine) == "signature_invalid"  # the one read a change costs: it failed
    reads = engine.consumers.keyring_reads
    for _ in range(5):
        assert problem(engine) == "signature_invalid"
    assert engine.consumers.keyring_reads == reads


def test_parsed_keys_are_bounded_and_removed_consumers_forgotten(store: Store) -> None:
    """At scale (issue 10): public keys are parsed when first needed and at most
    ``parsed_keys`` are kept; a refresh reads only what changed, reloads a changed
    secret and forgets a removed consumer."""
    from tests.helpers import pem_spki, rsa_key
    from tui_oauth.core.provider.consumers import ConsumerCache

    for i in range(3):
        services(store).consumers.add(key=f"rsa:{i}", name=f"RSA {i}",
                                      public_key=pem_spki(rsa_key(i)))
    services(store).consumers.add(key="hmac:x", name="HMAC", shared_secret="first-s3cret-value",
                                  signature_method="HMAC-SHA1")
    cache = ConsumerCache(store, parsed_keys=2, entries=2)
    cache.refresh()  # the start: nothing loaded, the mark taken
    assert cache.size == 0 and cache.key_parses == 0
    with store.session() as s:
        conn = s.connection()
        for i in range(3):
            entry, known = cache.lookup(conn, f"rsa:{i}")
            assert known and entry.key == f"rsa:{i}"
        assert cache.key_parses == 3 and cache.parsed_keys == 2  # the bound holds
        cache.lookup(conn, "rsa:0")  # evicted, so parsed again
        assert cache.key_parses == 4
        entry, _ = cache.lookup(conn, "hmac:x")
        assert entry.secret == "first-s3cret-value"
    reads = cache.keyring_reads
    assert cache.refresh() == 0 and cache.keyring_reads == reads  # nothing changed
    services(store).consumers.edit("hmac:x", shared_secret="second-s3cret-value")
    assert cache.refresh() == 1  # the changed one alone
    with store.session() as s:
        entry, _ = cache.lookup(s.connection(), "hmac:x")
    assert entry.secret == "second-s3cret-value"
    before = cache.size
    services(store).consumers.remove("rsa:1")
    cache.refresh()
    assert cache.size == before - 1  # forgotten
    with store.session() as s:
        _, known = cache.lookup(s.connection(), "rsa:1")
    assert not known
