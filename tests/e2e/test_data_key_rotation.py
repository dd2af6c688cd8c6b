"""`keyring rotate-data-key` (core/provider/crypto.rotate_data_key): token secrets are
re-encrypted under a new data key while the server runs; tokens issued before keep
working over HTTP; an interrupted rotation resumes; nothing is lost (SQLite and
PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from tests.cli_support import Cli
from tests.e2e.test_provider_http import HMAC_KEY, SECRET, dance, whoami
from tests.provider_support import add_hmac_consumer, running_server
from tui_oauth.core.models import KeyringItem, StoreMeta, Token
from tui_oauth.core.provider.crypto import (
    ROTATION_META_KEY,
    DataKey,
    load_data_key,
    rotate_data_key,
)
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store


def blobs(store: Store) -> dict[str, bytes]:
    with store.session() as s:
        return {t.token: t.secret_enc for t in s.exec(select(Token)).all()
                if t.secret_enc is not None}


def test_tokens_keep_working_across_a_rotation(store: Store) -> None:
    add_hmac_consumer(store, HMAC_KEY, SECRET)
    with running_server(store) as srv:
        tokens = [dance(srv, store, HMAC_KEY, secret=SECRET) for _ in range(3)]
        old_key = load_data_key(store)
        before = blobs(store)
        result = rotate_data_key(store, batch=2, settle=0.0)
        assert result.finished and not result.resumed
        assert result.reencrypted == len(before)  # access tokens (the request ones are used)
        new_key = DataKey.from_text(store.secrets.get(KeyringItem.DATA_KEY) or "")
        after = blobs(store)
        assert after.keys() == before.keys()
        for token, blob in after.items():
            assert blob != before[token]
            assert new_key.decrypt_current(blob, token) == old_key.decrypt_current(
                before[token], token)
            assert old_key.decrypt_current(blob, token) is None
        assert srv.engine.reload_data_key()  # the housekeeping's call (every second)
        for held in tokens:
            assert whoami(srv, HMAC_KEY, held, secret=SECRET).status_code == 200
        fresh = dance(srv, store, HMAC_KEY, secret=SECRET)  # written with the new key
        assert whoami(srv, HMAC_KEY, fresh, secret=SECRET).status_code == 200
        assert new_key.decrypt_current(blobs(store)[fresh["oauth_token"]],
                                       fresh["oauth_token"]) is not None
    assert store.secrets.get(KeyringItem.PREVIOUS_DATA_KEY) is None
    with store.session() as s:
        assert s.get(StoreMeta, ROTATION_META_KEY) is None
    report = services(store).doctor.run()
    assert not report.secrets_without_row and not report.rows_without_secret


def test_an_interrupted_rotation_resumes_and_reads_both_keys_meanwhile(store: Store) -> None:
    add_hmac_consumer(store, HMAC_KEY, SECRET)
    with running_server(store) as srv:
        tokens = [dance(srv, store, HMAC_KEY, secret=SECRET) for _ in range(4)]
    old_key = load_data_key(store)
    plain = {t: old_key.decrypt_current(b, t) for t, b in blobs(store).items()}

    def die(_: int) -> None:  # called after each batch's commit: the process "dies"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotate_data_key(store, batch=2, settle=0.0, progress=die)
    both = load_data_key(store)  # what a server (re)loads meanwhile: new + previous
    assert both.previous is not None
    for token, blob in blobs(store).items():
        assert both.decrypt(blob, token) == plain[token]
    with running_server(store) as srv:
        for held in tokens:  # every token works mid-rotation
            assert whoami(srv, HMAC_KEY, held, secret=SECRET).status_code == 200
        result = rotate_data_key(store, batch=2, settle=0.0)
    assert result.finished and result.resumed and result.reencrypted == len(plain) - 2
    final = load_data_key(store)
    assert final.previous is None
    for token, blob in blobs(store).items():
        assert final.decrypt_current(blob, token) == plain[token]
    with store.session() as s:
        actions = [e for e in s.exec(select(StoreMeta.key)).all()]
    assert ROTATION_META_KEY not in actions


def test_the_command(cli: Cli) -> None:
    assert cli.db_url is not None
    from tests.conftest import secret_service_backend
    from tui_oauth.core.store import open_store

    with open_store(cli.db_url, secrets_backend=secret_service_backend()) as store:
        add_hmac_consumer(store, HMAC_KEY, SECRET)
        load_data_key(store)  # as the first `serve` does
        with running_server(store) as srv:
            token = dance(srv, store, HMAC_KEY, secret=SECRET)
    done = cli("keyring", "rotate-data-key", "--batch", "10", "--settle", "0")
    assert "the data key is rotated; 2 token secret(s) re-encrypted" in done.stderr
    assert SECRET not in cli.everything_printed()
    with (open_store(cli.db_url, secrets_backend=secret_service_backend()) as store,
          running_server(store) as srv):
        assert whoami(srv, HMAC_KEY, token, secret=SECRET).status_code == 200
