"""tokens.purge / purge_nonces delete in batches whose size adapts to how long each
delete held the write lock; whatever the size, exactly the matching rows go."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from tests.helpers import pem_spki, rsa_key
from tui_oauth.core.models import Nonce, Token
from tui_oauth.core.registry import services
from tui_oauth.core.services import tokens as tokens_service
from tui_oauth.core.store import Store
from tui_oauth.core.timeutil import utcnow

ROWS = 130


def fill(store: Store) -> None:
    consumer = services(store).consumers.add(key="purge:app", name="Purge",
                                             public_key=pem_spki(rsa_key(0)))
    assert consumer.id is not None
    past, future = utcnow() - timedelta(hours=1), utcnow() + timedelta(hours=1)
    now = int(time.time())
    with store.session() as s:
        for i in range(ROWS):  # interleaved, so that every batch meets rows to keep
            s.add(Token(token=f"t{i}", consumer_id=consumer.id, type="access",
                        state="active", expires_at=future if i % 3 == 0 else past))
        for i in range(ROWS):
            s.add(Nonce(consumer_key="purge:app", nonce=f"n{i}",
                        timestamp=now - 10_000 if i % 2 else now))
        s.commit()


def count(s: Session, table: Any, *where: Any) -> int:
    return int(s.exec(select(func.count()).select_from(table).where(*where)).one())


@pytest.mark.parametrize("hold", [0.0, 10.0], ids=["shrinking", "growing"])
def test_purge_deletes_exactly_the_matching_rows(store: Store, hold: float,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    fill(store)
    with store.session() as s:
        expected = count(s, Token, col(Token.expires_at) <= utcnow())
        old_nonces = count(s, Nonce, col(Nonce.timestamp) < int(time.time()) - 600)
    assert expected == ROWS - (ROWS + 2) // 3 and old_nonces == ROWS // 2
    sizes: list[int] = []
    real_transaction = Store.transaction

    def counting(self: Store) -> object:
        sizes.append(1)
        return real_transaction(self)

    monkeypatch.setattr(tokens_service, "PURGE_HOLD", hold)
    monkeypatch.setattr(tokens_service, "PURGE_FIRST_BATCH", 8)
    monkeypatch.setattr(tokens_service, "PURGE_MIN_BATCH", 2)
    monkeypatch.setattr(tokens_service, "BATCH_PAUSE", 0.0)
    monkeypatch.setattr(Store, "transaction", counting)
    assert services(store).tokens.purge(batch=64) == expected
    deletes = len(sizes) - 1  # the last transaction is the audit entry
    # Held 0 s allowed: the size halves to 2 rows; 10 s: it doubles up to the ceiling.
    assert deletes >= 2 + (expected - 8 - 4) // 2 if hold == 0.0 else deletes <= 6
    assert services(store).tokens.purge_nonces(600) == old_nonces
    with store.session() as s:
        assert count(s, Token) == ROWS - expected
        assert count(s, Token, col(Token.expires_at) <= utcnow()) == 0
        assert count(s, Nonce) == ROWS - old_nonces
