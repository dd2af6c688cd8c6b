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
    flaky_store.consumers.edit(KEY, name="Partner Inc")
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
    report = flaky_store.doctor.run()
    failing = [c for c in report.checks if c.name == "server keyring reads"]
    assert failing and failing[0].status == "fail" and repr(KEY) in failing[0].message

    # The keyring works again: the next refresh reads it, with no restart.
    engine.consumers.refresh_all()
    assert problem(engine) is None
    assert not [c for c in flaky_store.doctor.run().checks if c.name == "server keyring reads"]


def test_the_request_path_does_not_retry_the_keyring(flaky_store: Store,
                                                     flaky: FailingKeyring) -> None:
    """A locked keyring answers slowly if at all: only the refresh retries."""
    add_hmac_consumer(flaky_store, KEY, SECRET, two_lo_allowed=True)
    engine = ProviderEngine(flaky_store, "https://sp.example.com")
    flaky_store.consumers.edit(KEY, name="Partner Inc")  # changed: loaded on its next request
    flaky.fail_on = frozenset({"get"})
    assert problem(engine) == "signature_invalid"  # the one read a change costs: it failed
    reads = engine.consumers.keyring_reads
    for _ in range(5):
        assert problem(engine) == "signature_invalid"
    assert engine.consumers.keyring_reads == reads
