"""The shared vocabulary in core/models.py (StrEnums): its values are what the database
and the keyring hold, so they never change; and a word reaches the database, JSON,
f-strings and messages as the same plain string it was before it was an enum."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sqlalchemy import text
from sqlmodel import col, select, update

from tests.provider_support import add_hmac_consumer
from tui_oauth.core.models import (
    Consumer,
    ConsumerInfo,
    KeyringItem,
    SecretKind,
    ServiceProvider,
    Token,
    TokenState,
    TokenType,
    consumer_secret_item,
    previous_secret_item,
    private_key_item,
    provider_secret_item,
)
from tui_oauth.core.registry import services
from tui_oauth.core.services.tokens import LIVE_STATES, STATES, TYPES
from tui_oauth.core.store import Store


def test_values_are_those_on_disk() -> None:
    assert {s.name: s.value for s in TokenState} == {
        "PENDING": "pending", "AUTHORIZED": "authorized", "DENIED": "denied", "USED": "used",
        "ACTIVE": "active", "REVOKED": "revoked", "EXPIRED": "expired"}
    assert {t.name: t.value for t in TokenType} == {"REQUEST": "request", "ACCESS": "access"}
    assert {i.name: i.value for i in KeyringItem} == {
        "DATA_KEY": "provider/data-key", "PREVIOUS_DATA_KEY": "provider/data-key-previous"}
    assert [k.value for k in SecretKind] == [
        "shared-secret", "previous-shared-secret", "private-key"]


def test_row_item_names_are_plain_strings() -> None:
    uid = "0b7c3f2e-0000-4000-8000-000000000001"
    names = [consumer_secret_item(Consumer(uid=uid, key="k", name="n")),
             previous_secret_item(Consumer(uid=uid, key="k", name="n")),
             provider_secret_item(ServiceProvider(
                 uid=uid, name="p", consumer_key="ck", request_token_url="https://p/r",
                 authorization_url="https://p/a", access_token_url="https://p/t")),
             private_key_item(ConsumerInfo(key="k", name="n", public_key="", key_uid=uid))]
    assert names == [f"consumer/{uid}/shared-secret", f"consumer/{uid}/previous-shared-secret",
                     f"provider/{uid}/shared-secret", f"consumer-info/{uid}/private-key"]
    assert all(type(n) is str for n in names)


@pytest.mark.parametrize("word", [*TokenState, *TokenType, *KeyringItem, *SecretKind])
def test_a_word_reads_as_its_value(word: str) -> None:
    value = str.__str__(word)
    assert str(word) == f"{word}" == f"{word:<1}" == "%s" % word == value  # noqa: UP031
    assert repr(word) == repr(value)
    assert json.dumps({"w": word, word: 1}) == json.dumps({"w": value, value: 1})
    assert word == value and hash(word) == hash(value)


def test_cli_choices_are_plain_strings() -> None:
    """click's Choice matches an Enum member by its name: the CLI gets the values."""
    assert STATES == ("pending", "authorized", "denied", "used", "active", "revoked",
                      "expired")
    assert TYPES == ("request", "access")
    assert all(type(s) is str for s in (*STATES, *TYPES))
    assert set(LIVE_STATES) == {"pending", "authorized", "active"}


def test_words_bind_as_their_values(store: Store) -> None:
    """SQLite and PostgreSQL store, compare and update with the plain strings."""
    add_hmac_consumer(store, "vocab-consumer", "vocab-secret")
    with store.transaction() as uow:
        cid = uow.session.exec(select(Consumer.id).where(Consumer.key == "vocab-consumer")).one()
        assert cid is not None
        uow.session.add(Token(token="vocab-token", consumer_id=cid, type=TokenType.REQUEST,
                              state=TokenState.PENDING))
    with store.transaction() as uow:
        uow.session.exec(update(Token).where(col(Token.state) == TokenState.PENDING)
                         .values(state=TokenState.AUTHORIZED))
        raw = uow.session.execute(text(
            "SELECT type, state, state = 'authorized', type = 'request' FROM tokens "
            "WHERE token = 'vocab-token'")).one()
    assert tuple(raw) == ("request", "authorized", True, True)
    assert type(raw[1]) is str
    page = services(store).tokens.list(state=TokenState.AUTHORIZED)
    assert [(r.token, r.state, r.type) for r in page.rows] == [
        ("vocab-token", "authorized", "request")]
    if store.url.startswith("sqlite"):
        path = store.url.split("///", 1)[1]
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT typeof(state), state FROM tokens").fetchall() == [
                ("text", "authorized")]
