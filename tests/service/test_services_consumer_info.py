"""ConsumerInfoService: who we are when we consume (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import Session, select

from tests.helpers import all_text, audit_actions, count, db_state, keyring_items, pem_body_lines
from tests.keyring_backends import MemoryKeyring
from tui_oauth.core import keys
from tui_oauth.core.consumer_info_doc import parse_consumer_info
from tui_oauth.core.errors import NotFoundError, ReadOnlyError, ValidationError
from tui_oauth.core.models import AuditEntry, private_key_item
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store, open_store

KEY_RE = re.compile(r"^tui-oauth:([0-9a-f-]{36})$")


def audit_rows(store: Store) -> list[AuditEntry]:
    with Session(store.engine) as s:
        return list(s.exec(select(AuditEntry).order_by(AuditEntry.id)))  # type: ignore[arg-type]


def test_created_on_first_get(store: Store, memory_keyring: MemoryKeyring) -> None:
    assert count(store, "consumer_info") == 0
    info = services(store).consumer_info.get()
    match = KEY_RE.match(info.key)
    assert match, info.key
    uuid.UUID(match.group(1))
    described = keys.describe(info.public_key)
    assert described.bits >= 2048
    assert info.name and info.created_at.tzinfo is not None

    items = keyring_items(store, memory_keyring)
    assert list(items) == [private_key_item(info)]
    pem = items[private_key_item(info)]
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert keys.private_matches_public(pem, info.public_key)
    assert services(store).consumer_info.private_key_pem() == pem

    # The private half is nowhere in the database.
    text = all_text(store)
    assert "PRIVATE KEY" not in text
    assert not any(line in text for line in pem_body_lines(pem))

    [entry] = audit_rows(store)
    assert (entry.action, entry.target_type, entry.target) == (
        "consumer_info.create", "consumer_info", info.key)
    assert "2048-bit" in (entry.detail or "")


def test_second_get_returns_the_same(store: Store, memory_keyring: MemoryKeyring) -> None:
    first = services(store).consumer_info.get()
    second = services(store).consumer_info.get()
    assert (second.key, second.public_key, second.key_uid) == (
        first.key, first.public_key, first.key_uid)
    assert len(keyring_items(store, memory_keyring)) == 1
    assert audit_actions(store) == ["consumer_info.create"]
    assert services(store).consumer_info.view().fingerprint == keys.fingerprint_of(first.public_key)


def test_a_second_store_object_sees_the_same_record(
        store: Store, db_url: str, memory_keyring: MemoryKeyring) -> None:
    first = services(store).consumer_info.get()
    with open_store(db_url, secrets_backend=memory_keyring) as other:
        assert services(other).consumer_info.get().key == first.key
    assert len(keyring_items(store, memory_keyring)) == 1


def test_edit_fields(store: Store) -> None:
    info = services(store).consumer_info.get()
    edited = services(store).consumer_info.edit(name="Acme Portal",
                                                description="Line one\nline two",
                                                callback_url="https://portal.example.com/oauth/cb")
    assert edited.key == info.key and edited.public_key == info.public_key
    got = services(store).consumer_info.get()
    assert (got.name, got.description, got.callback_url) == (
        "Acme Portal", "Line one\nline two", "https://portal.example.com/oauth/cb")
    assert got.updated_at >= info.updated_at
    entry = audit_rows(store)[-1]
    assert entry.action == "consumer_info.edit"
    assert json.loads(entry.after or "")["name"] == "Acme Portal"
    assert json.loads(entry.before or "")["name"] == info.name

    # Only what is given changes; clearing optional fields is allowed.
    services(store).consumer_info.edit(callback_url=None, description="")
    got = services(store).consumer_info.get()
    assert (got.name, got.description, got.callback_url) == ("Acme Portal", None, None)


def test_edit_without_change_writes_no_audit(store: Store) -> None:
    info = services(store).consumer_info.get()
    services(store).consumer_info.edit(name=info.name)
    services(store).consumer_info.edit()
    assert audit_actions(store) == ["consumer_info.create"]


@pytest.mark.parametrize(("changes", "field"), [
    ({"name": ""}, "name"),
    ({"name": "x" * 256}, "name"),
    ({"name": "bad\x1bname"}, "name"),
    ({"description": "d" * 4001}, "description"),
    ({"callback_url": "ftp://portal.example.com/cb"}, "callback_url"),
    ({"callback_url": "https://portal.example.com/cb#frag"}, "callback_url"),
])
def test_edit_validation(store: Store, changes: dict[str, Any], field: str) -> None:
    services(store).consumer_info.get()
    before = db_state(store)
    with pytest.raises(ValidationError) as info:
        services(store).consumer_info.edit(**changes)
    assert [e.field for e in info.value.errors] == [field]
    assert db_state(store) == before


def test_edit_reports_all_errors(store: Store) -> None:
    with pytest.raises(ValidationError) as info:
        services(store).consumer_info.edit(name="", callback_url="nope")
    assert {e.field for e in info.value.errors} == {"name", "callback_url"}


def test_export_xml_round_trips(store: Store) -> None:
    services(store).consumer_info.edit(name="Acme & Co <portal>", description="Ünïcode desc",
                                       callback_url="https://portal.example.com/cb?x=1&y=2")
    info = services(store).consumer_info.get()
    doc = parse_consumer_info(services(store).consumer_info.export_xml())
    assert (doc.key, doc.name, doc.description, doc.callback) == (
        info.key, "Acme & Co <portal>", "Ünïcode desc", "https://portal.example.com/cb?x=1&y=2")
    assert doc.public_key.base64_der == info.public_key
    assert doc.public_key.fingerprint == services(store).consumer_info.view().fingerprint
    assert b"PRIVATE" not in services(store).consumer_info.export_xml()


def test_export_pem(store: Store) -> None:
    info = services(store).consumer_info.get()
    pem = services(store).consumer_info.export_pem()
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    parsed = keys.parse_public_key(pem)
    assert parsed.base64_der == info.public_key
    assert parsed.fingerprint == keys.fingerprint_of(info.public_key)


def test_rotate_key(store: Store, memory_keyring: MemoryKeyring) -> None:
    info = services(store).consumer_info.get()
    old_item, old_fp = private_key_item(info), keys.fingerprint_of(info.public_key)
    old_pem = services(store).consumer_info.private_key_pem()

    old, new = services(store).consumer_info.rotate_key()

    assert old.fingerprint == old_fp
    assert new.fingerprint != old_fp and new.bits >= 2048
    got = services(store).consumer_info.get()
    assert got.key == info.key  # the consumer key stays; only the key pair changes
    assert got.key_uid != info.key_uid
    assert got.public_key != info.public_key
    assert keys.fingerprint_of(got.public_key) == new.fingerprint
    assert got.key_created_at > info.key_created_at

    items = keyring_items(store, memory_keyring)
    assert list(items) == [private_key_item(got)]  # exactly one private key item
    assert old_item not in items
    assert keys.private_matches_public(services(store).consumer_info.private_key_pem(),
                                       got.public_key)
    assert not keys.private_matches_public(old_pem, got.public_key)

    entry = audit_rows(store)[-1]
    assert entry.action == "consumer_info.rotate_key"
    assert old.fingerprint in (entry.detail or "") and new.fingerprint in (entry.detail or "")
    assert json.loads(entry.before or "")["public_key"] == info.public_key
    assert json.loads(entry.after or "")["public_key"] == got.public_key

    # The XML others add us from now carries the new key.
    xml = services(store).consumer_info.export_xml()
    assert parse_consumer_info(xml).public_key.fingerprint == new.fingerprint


def test_rotate_key_with_bigger_key(store: Store, memory_keyring: MemoryKeyring) -> None:
    services(store).consumer_info.get()
    _, new = services(store).consumer_info.rotate_key(bits=3072)
    assert new.bits == 3072
    assert len(keyring_items(store, memory_keyring)) == 1


def test_rotate_key_refuses_weak_key(store: Store, memory_keyring: MemoryKeyring) -> None:
    services(store).consumer_info.get()
    before, items = db_state(store), keyring_items(store, memory_keyring)
    with pytest.raises(ValidationError) as info:
        services(store).consumer_info.rotate_key(bits=1024)
    assert info.value.field == "bits"
    assert db_state(store) == before
    assert keyring_items(store, memory_keyring) == items


def test_read_only_store_refuses_writes(store: Store, db_url: str,
                                       memory_keyring: MemoryKeyring) -> None:
    info = services(store).consumer_info.get()
    services(store).consumers.add(key="k1", name="K", public_key=info.public_key)
    store.secrets.set("consumer/orphan/shared-secret", "left over")  # for remove_orphan_secrets
    before, items = db_state(store), dict(memory_keyring.items)
    with open_store(db_url, secrets_backend=memory_keyring, read_only=True) as ro:
        assert ro.read_only
        assert services(ro).consumer_info.get().key == info.key  # reading works
        assert services(ro).consumers.get("k1").name == "K"
        writes: list[Callable[[], object]] = [
            lambda: services(ro).consumer_info.edit(name="new"),
            lambda: services(ro).consumer_info.rotate_key(),
            lambda: services(ro).consumers.add(key="k2", name="K2", public_key=info.public_key),
            lambda: services(ro).consumers.edit("k1", name="K1"),
            lambda: services(ro).consumers.remove("k1"),
            lambda: services(ro).providers.add(name="p", consumer_key="c", shared_secret="s",
                                               request_token_url="https://a.example/r",
                                               authorization_url="https://a.example/a",
                                               access_token_url="https://a.example/t"),
            lambda: services(ro).doctor.remove_orphan_secrets(),
        ]
        for write in writes:
            with pytest.raises(ReadOnlyError):
                write()
    assert db_state(store) == before
    assert memory_keyring.items == items


def test_read_only_store_without_consumer_info(store: Store, db_url: str,
                                               memory_keyring: MemoryKeyring) -> None:
    with open_store(db_url, secrets_backend=memory_keyring, read_only=True) as ro, \
            pytest.raises(NotFoundError):
        services(ro).consumer_info.get()
    assert count(store, "consumer_info") == 0
    assert memory_keyring.items == {}
