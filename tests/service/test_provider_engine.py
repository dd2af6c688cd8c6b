"""The provider engine without HTTP: RFC 5849's own example, the data key, settings,
and timing (an unknown key must not be answered measurably faster than a known one)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import pytest
from oauthlib.oauth1 import Client
from sqlmodel import select

from tests.keyring_backends import MemoryKeyring
from tests.provider_support import add_hmac_consumer, add_rsa_consumer
from tui_oauth.core.errors import SecretStoreError, ValidationError
from tui_oauth.core.models import Consumer, KeyringItem, StoreMeta, Token, TokenType
from tui_oauth.core.provider.crypto import CHECK_META_KEY, DataKey, load_data_key
from tui_oauth.core.provider.engine import ProviderEngine
from tui_oauth.core.provider.problems import Problem
from tui_oauth.core.provider.settings import SPEC, ProviderSettings, set_setting
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store, open_store

RFC_URI = "http://photos.example.net/photos?file=vacation.jpg&size=original"
RFC_HEADER = (
    'OAuth realm="Photos", oauth_consumer_key="dpf43f3p2l4k3l03", oauth_token="nnch734d00sl2jdk",'
    ' oauth_signature_method="HMAC-SHA1", oauth_timestamp="137131202", oauth_nonce="chapoH",'
    ' oauth_signature="MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D"'
)


@pytest.fixture
def engine(store: Store) -> ProviderEngine:
    return ProviderEngine(store, "https://photos.example.net")


def test_rfc5849_section_1_2_example_verifies(store: Store) -> None:
    add_hmac_consumer(store, "dpf43f3p2l4k3l03", "kd94hf93k423kf44")
    engine = ProviderEngine(store, "http://photos.example.net")
    with store.transaction() as uow:
        cid = uow.session.exec(select(Consumer.id).where(
            Consumer.key == "dpf43f3p2l4k3l03")).one()
        assert cid is not None
        uow.session.add(Token(token="nnch734d00sl2jdk", consumer_id=cid, type=TokenType.ACCESS,
                              state="active",
                              secret_enc=engine.data_key.encrypt("pfkkdhi9sl3r4s00",
                                                                 "nnch734d00sl2jdk")))
    engine.consumers.refresh_all()
    endpoint = engine._resource_ep

    def verify(uri: str, header: str) -> bool:
        request = endpoint._create_request(uri, "GET", "", {"Authorization": header})
        with engine._unit():
            assert engine.validator.validate_client_key(request.client_key, request)
            assert engine.validator.validate_access_token(request.client_key,
                                                          request.resource_owner_key, request)
            return bool(endpoint._check_signature(request))

    assert verify(RFC_URI, RFC_HEADER)
    assert not verify(RFC_URI.replace("original", "small"), RFC_HEADER)
    assert not verify(RFC_URI, RFC_HEADER.replace("chapoH", "chapoh"))


def test_data_key_is_made_once_and_encrypts_bound_to_the_token(store: Store,
                                                              memory_keyring: MemoryKeyring
                                                              ) -> None:
    key = load_data_key(store)
    assert store.secrets.get(KeyringItem.DATA_KEY) == key.to_text()
    again = load_data_key(store)
    assert again.to_text() == key.to_text()
    blob = key.encrypt("s3cret-value", "tok-1")
    assert b"s3cret-value" not in blob
    assert key.decrypt(blob, "tok-1") == "s3cret-value"
    assert key.decrypt(blob, "tok-2") is None  # moved to another row
    assert DataKey.generate().decrypt(blob, "tok-1") is None
    # The doctor knows about the item.
    assert KeyringItem.DATA_KEY in services(store).doctor.expected_secrets()


def test_a_different_or_missing_data_key_is_refused(store: Store) -> None:
    load_data_key(store)
    store.secrets.set(KeyringItem.DATA_KEY, DataKey.generate().to_text())
    with pytest.raises(SecretStoreError, match="not the data key"):
        load_data_key(store)
    store.secrets.delete(KeyringItem.DATA_KEY)
    with pytest.raises(SecretStoreError, match="missing"):
        load_data_key(store)
    with store.session() as s:
        assert s.get(StoreMeta, CHECK_META_KEY) is not None


def test_settings_are_stored_and_checked(store: Store) -> None:
    assert ProviderSettings.load(store).access_token_ttl == 7 * 86400
    assert ProviderSettings.load(store).timestamp_window == 300
    set_setting(store, "access_token_ttl", "3600")
    assert ProviderSettings.load(store).access_token_ttl == 3600
    with pytest.raises(ValidationError):
        set_setting(store, "access_token_ttl", "5")
    with pytest.raises(ValidationError):
        set_setting(store, "nope", "5")


def test_problem_detail_setting(store: Store) -> None:
    assert ProviderSettings.load(store).problem_detail == "full"
    assert not ProviderSettings.load(store).minimal_problems
    assert set_setting(store, "problem_detail", " Minimal ") == "minimal"
    assert ProviderSettings.load(store).minimal_problems
    with pytest.raises(ValidationError, match="full, minimal"):
        set_setting(store, "problem_detail", "none")
    assert ProviderSettings.load(store).as_dict()["problem_detail"] == "minimal"
    # The dataclass defaults are the documented ones.
    assert {k: v.default for k, v in SPEC.items()} == ProviderSettings().as_dict()


def test_problem_answers() -> None:
    p = Problem("timestamp_refused", extra={"oauth_acceptable_timestamps": "1-2"})
    assert p.status == 400
    assert p.body().startswith("oauth_problem=timestamp_refused&oauth_acceptable_timestamps=1-2")
    header = p.www_authenticate("https://h/base")
    # The realm a quoted-string (RFC 5849 3.5.1, RFC 2617), the oauth_* percent-encoded.
    assert header.startswith('OAuth realm="https://h/base", oauth_problem="timestamp_')
    assert " " not in header.split("oauth_problem_advice=", 1)[1]
    assert Problem("nonce_used").www_authenticate('a"b\\c\r\nd') \
        .startswith('OAuth realm="a\\"b\\\\cd", ')
    with pytest.raises(ValueError):
        Problem("no_such_problem")


# Timing --------------------------------------------------------------------------------


@pytest.fixture
def timing_engine(sqlite_url: str) -> Iterator[ProviderEngine]:
    s = open_store(sqlite_url, secrets_backend=MemoryKeyring())
    add_hmac_consumer(s, "hmac:known", "a-secret", two_lo_allowed=True)
    add_rsa_consumer(s, "rsa:known", two_lo_allowed=True)
    yield ProviderEngine(s, "https://sp.example.com")
    s.close()


def _signed(key: str, method: str) -> tuple[str, dict[str, str]]:
    """A 2LO request from someone who cannot sign: a wrong HMAC secret, or random RSA bytes."""
    import base64
    import os
    import re

    client = Client(key, client_secret="guessed-secret")
    uri, headers, _ = client.sign("https://sp.example.com/rest/whoami")
    if method == "RSA-SHA1":
        fake = base64.b64encode(os.urandom(256)).decode().replace("+", "%2B").replace(
            "/", "%2F").replace("=", "%3D")
        header = headers["Authorization"].replace('"HMAC-SHA1"', '"RSA-SHA1"')
        headers["Authorization"] = re.sub(r'oauth_signature="[^"]*"',
                                          f'oauth_signature="{fake}"', header)
    return uri, headers


def _time_one(engine: ProviderEngine, uri: str, headers: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        engine.verify(uri, "GET", "", headers)
        problem = "none"
    except Problem as exc:
        problem = exc.problem
    return time.perf_counter() - start, problem


@pytest.mark.timing
@pytest.mark.parametrize("method", ["HMAC-SHA1", "RSA-SHA1"])
def test_unknown_key_is_not_answered_faster(timing_engine: ProviderEngine, method: str) -> None:
    known = "hmac:known" if method == "HMAC-SHA1" else "rsa:known"
    samples: dict[str, list[float]] = {"known": [], "unknown": []}
    rounds = 300
    requests_ = [(_signed(known, method), _signed("unknown:" + str(i), method))
                 for i in range(rounds + 20)]
    for i, (k, u) in enumerate(requests_):
        order = [("known", k), ("unknown", u)] if i % 2 else [("unknown", u), ("known", k)]
        for label, (uri, headers) in order:
            elapsed, problem = _time_one(timing_engine, uri, headers)
            assert problem == ("signature_invalid" if label == "known"
                               else "consumer_key_unknown")
            if i >= 20:  # warm-up done
                samples[label].append(elapsed)
    known_median = statistics.median(samples["known"])
    unknown_median = statistics.median(samples["unknown"])
    # Tolerant: the unknown key must not be answered faster by more than 15 % (the real
    # difference is a dict lookup); a keyring read or an early exit would be 2x or more.
    assert unknown_median > 0.85 * known_median, (known_median, unknown_median)
    # And not suspiciously slower either (the dummy work must not be much heavier).
    assert unknown_median < 1.5 * known_median, (known_median, unknown_median)


