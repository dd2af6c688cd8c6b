"""ServiceProviderService: third parties whose resources we consume."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import (
    HTTPS,
    add_held_tokens,
    all_text,
    audit_actions,
    count,
    db_state,
    keyring_items,
)
from tests.keyring_backends import MemoryKeyring
from tui_oauth.core import keys
from tui_oauth.core.errors import ConflictError, NotFoundError, ValidationError
from tui_oauth.core.models import private_key_item, provider_secret_item
from tui_oauth.core.registry import services
from tui_oauth.core.services.providers import provider_warnings
from tui_oauth.core.store import Store

SECRET = "prov1der-Shared-S3cret"
NEW_SECRET = "rotated-prov1der-S3cret"
HTTP = {f: u.replace("https://", "http://") for f, u in HTTPS.items()}


def add(store: Store, name: str = "Twitter", **kw: Any) -> Any:
    kw.setdefault("consumer_key", "ck-123")
    kw.setdefault("shared_secret", SECRET)
    for f, u in HTTPS.items():
        kw.setdefault(f, u)
    return services(store).providers.add(name=name, **kw)


@pytest.mark.parametrize(("method", "secret"), [
    ("HMAC-SHA1", SECRET), ("PLAINTEXT", SECRET), ("RSA-SHA1", None), (None, SECRET),
])
def test_add_each_signature_method(store: Store, memory_keyring: MemoryKeyring,
                                   method: str | None, secret: str | None) -> None:
    p = add(store, signature_method=method, shared_secret=secret, description="Tweets")
    assert p.signature_method == (method or "HMAC-SHA1")
    assert p.has_shared_secret is (secret is not None)
    got = services(store).providers.get("Twitter")
    assert (got.consumer_key, got.description, got.request_token_url) == (
        "ck-123", "Tweets", HTTPS["request_token_url"])
    assert services(store).providers.shared_secret("Twitter") == secret
    items = keyring_items(store, memory_keyring)
    if secret is not None:
        assert items[provider_secret_item(p)] == secret
    else:
        assert provider_secret_item(p) not in items
    assert SECRET not in all_text(store)
    assert provider_warnings(got) == []
    assert audit_actions(store)[-1] == "provider.add"


def test_rsa_sha1_creates_consumer_info(store: Store, memory_keyring: MemoryKeyring) -> None:
    assert count(store, "consumer_info") == 0
    add(store, signature_method="RSA-SHA1", shared_secret=None)
    assert count(store, "consumer_info") == 1
    info = services(store).consumer_info.get()
    pem = keyring_items(store, memory_keyring)[private_key_item(info)]
    assert keys.private_matches_public(pem, info.public_key)
    assert audit_actions(store) == ["consumer_info.create", "provider.add"]
    # A second RSA provider reuses the same key pair.
    add(store, "Other", signature_method="RSA-SHA1", shared_secret=None)
    assert services(store).consumer_info.get().key_uid == info.key_uid
    assert len(keyring_items(store, memory_keyring)) == 1


@pytest.mark.parametrize("http_field", sorted(HTTPS))
def test_plaintext_refused_with_any_http_url(store: Store, http_field: str) -> None:
    with pytest.raises(ValidationError) as info:
        add(store, signature_method="PLAINTEXT", **{http_field: HTTP[http_field]})
    assert [e.field for e in info.value.errors] == ["signature_method"]
    assert "https" in info.value.errors[0].message
    assert count(store, "service_providers") == 0


def test_http_urls_are_saved_with_warnings(store: Store) -> None:
    p = add(store, **HTTP)
    [warning] = provider_warnings(p)
    for label in ("Request token URL", "Authorization URL", "Access token URL"):
        assert label in warning
    q = add(store, "Half", access_token_url=HTTP["access_token_url"])
    [warning] = provider_warnings(q)
    assert "Access token URL uses http" in warning and "Request token" not in warning


INVALID = [
    pytest.param({"name": ""}, "name", id="missing-name"),
    pytest.param({"consumer_key": ""}, "consumer_key", id="missing-consumer-key"),
    pytest.param({"consumer_key": "ck 1"}, "consumer_key", id="consumer-key-space"),
    pytest.param({"request_token_url": ""}, "request_token_url", id="missing-request-url"),
    pytest.param({"authorization_url": "sp.example.com/auth"}, "authorization_url",
                 id="relative-auth-url"),
    pytest.param({"access_token_url": "ftp://sp.example.com/t"}, "access_token_url",
                 id="ftp-access-url"),
    pytest.param({"shared_secret": None}, "shared_secret", id="hmac-without-secret"),
    pytest.param({"shared_secret": None, "signature_method": "PLAINTEXT"}, "shared_secret",
                 id="plaintext-without-secret"),
    pytest.param({"shared_secret": ""}, "shared_secret", id="empty-secret"),
    pytest.param({"signature_method": "MD5"}, "signature_method", id="unknown-method"),
]


@pytest.mark.parametrize(("changes", "field"), INVALID)
def test_add_invalid_leaves_nothing(store: Store, memory_keyring: MemoryKeyring,
                                    changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        add(store, **changes)
    assert [e.field for e in info.value.errors] == [field]
    assert db_state(store) == {t: [] for t in db_state(store)}
    assert keyring_items(store, memory_keyring) == {}


def test_duplicate_name_conflicts(store: Store, memory_keyring: MemoryKeyring) -> None:
    first = add(store)
    before = db_state(store)
    with pytest.raises(ConflictError) as info:
        add(store, shared_secret=NEW_SECRET, consumer_key="other")
    assert info.value.field == "name"
    assert db_state(store) == before
    assert keyring_items(store, memory_keyring) == {provider_secret_item(first): SECRET}


def test_edit_fields_and_rename(store: Store, memory_keyring: MemoryKeyring) -> None:
    p = add(store)
    services(store).providers.edit("Twitter", name="X", consumer_key="ck-999",
                                   description="renamed",
                                   access_token_url="https://api.x.com/oauth/access_token")
    with pytest.raises(NotFoundError):
        services(store).providers.get("Twitter")
    got = services(store).providers.get("X")
    assert (got.uid, got.consumer_key, got.description, got.access_token_url) == (
        p.uid, "ck-999", "renamed", "https://api.x.com/oauth/access_token")
    # the item follows the row, not the name
    assert services(store).providers.shared_secret("X") == SECRET
    entry_actions = audit_actions(store)
    assert entry_actions == ["provider.add", "provider.edit"]
    assert keyring_items(store, memory_keyring) == {provider_secret_item(p): SECRET}


def test_edit_rename_to_taken_name(store: Store, memory_keyring: MemoryKeyring) -> None:
    a = add(store, "A")
    add(store, "B", shared_secret=NEW_SECRET)
    before, items = db_state(store), keyring_items(store, memory_keyring)
    with pytest.raises(ConflictError) as info:
        services(store).providers.edit("A", name="B", shared_secret="would-be-new")
    assert info.value.field == "name"
    assert db_state(store) == before
    assert keyring_items(store, memory_keyring) == items
    assert services(store).providers.shared_secret("A") == SECRET
    assert items[provider_secret_item(a)] == SECRET


def test_edit_secret_replace_and_remove(store: Store, memory_keyring: MemoryKeyring) -> None:
    p = add(store)
    services(store).providers.edit("Twitter", shared_secret=NEW_SECRET)
    assert keyring_items(store, memory_keyring) == {provider_secret_item(p): NEW_SECRET}
    entry_detail = services(store).audit.list(limit=1).entries[0].detail
    assert entry_detail == "shared secret replaced"

    with pytest.raises(ValidationError) as info:
        services(store).providers.edit("Twitter", shared_secret=None)  # HMAC-SHA1 needs it
    assert info.value.field == "shared_secret"
    assert keyring_items(store, memory_keyring) == {provider_secret_item(p): NEW_SECRET}

    services(store).providers.edit("Twitter", shared_secret=None, signature_method="RSA-SHA1")
    got = services(store).providers.get("Twitter")
    assert (got.signature_method, got.has_shared_secret) == ("RSA-SHA1", False)
    assert provider_secret_item(p) not in keyring_items(store, memory_keyring)
    assert count(store, "consumer_info") == 1  # RSA-SHA1 made our key pair
    assert services(store).providers.shared_secret("Twitter") is None
    text = all_text(store)
    assert SECRET not in text and NEW_SECRET not in text


@pytest.mark.parametrize(("changes", "field"), [
    ({"signature_method": "PLAINTEXT", "authorization_url": HTTP["authorization_url"]},
     "signature_method"),
    ({"request_token_url": "not a url"}, "request_token_url"),
    ({"name": " "}, "name"),
    ({"signature_method": "RSA-SHA2"}, "signature_method"),
])
def test_edit_invalid_changes_nothing(store: Store, memory_keyring: MemoryKeyring,
                                      changes: dict[str, Any], field: str) -> None:
    add(store)
    before, items = db_state(store), keyring_items(store, memory_keyring)
    with pytest.raises(ValidationError) as info:
        services(store).providers.edit("Twitter", **changes)
    assert info.value.field == field
    assert db_state(store) == before
    assert keyring_items(store, memory_keyring) == items


def test_edit_plaintext_existing_http_refused(store: Store) -> None:
    add(store, **HTTP)
    with pytest.raises(ValidationError) as info:
        services(store).providers.edit("Twitter", signature_method="PLAINTEXT")
    assert info.value.field == "signature_method"
    services(store).providers.edit("Twitter", signature_method="PLAINTEXT",
                                   request_token_url=HTTPS["request_token_url"],
                                   authorization_url=HTTPS["authorization_url"],
                                   access_token_url=HTTPS["access_token_url"])
    assert services(store).providers.get("Twitter").signature_method == "PLAINTEXT"


def test_edit_missing_unknown_and_noop(store: Store) -> None:
    with pytest.raises(NotFoundError):
        services(store).providers.edit("nobody", description="x")
    add(store)
    with pytest.raises(ValidationError) as info:
        services(store).providers.edit("Twitter", uid="x")
    assert info.value.field == "uid"
    services(store).providers.edit("Twitter", consumer_key="ck-123")
    assert audit_actions(store) == ["provider.add"]


def test_list_filter_and_token_counts(store: Store) -> None:
    a = add(store, "Twitter", description="micro 100%")
    b = add(store, "flickr_photos", consumer_key="fl-key")
    add(store, "Etsy")
    add_held_tokens(store, a.id, 3)
    add_held_tokens(store, b.id, 1)
    assert [(p.name, p.token_count) for p in services(store).providers.list()] == [
        ("Etsy", 0), ("flickr_photos", 1), ("Twitter", 3)]
    assert [p.name for p in services(store).providers.list("FL-KEY")] == ["flickr_photos"]
    assert [p.name for p in services(store).providers.list("_")] == ["flickr_photos"]
    assert [p.name for p in services(store).providers.list("%")] == ["Twitter"]
    assert [p.name for p in services(store).providers.list("t")] == ["Etsy", "flickr_photos",
                                                                     "Twitter"]
    assert services(store).providers.token_count("Twitter") == 3


def test_remove_takes_held_tokens_and_secret(store: Store,
                                             memory_keyring: MemoryKeyring) -> None:
    a, b = add(store, "A"), add(store, "B", shared_secret=NEW_SECRET)
    add_held_tokens(store, a.id, 4)
    add_held_tokens(store, b.id, 2)
    assert services(store).providers.remove("A") == 4
    assert count(store, "held_tokens", "provider_id = :id", id=a.id) == 0
    assert count(store, "held_tokens", "provider_id = :id", id=b.id) == 2
    assert keyring_items(store, memory_keyring) == {provider_secret_item(b): NEW_SECRET}
    with pytest.raises(NotFoundError):
        services(store).providers.get("A")
    entry = services(store).audit.list(limit=1).entries[0]
    assert (entry.action, entry.target, entry.detail) == (
        "provider.remove", "A", "4 held token(s) removed with it")
    assert json.loads(entry.before or "")["consumer_key"] == "ck-123"
    with pytest.raises(NotFoundError):
        services(store).providers.remove("A")


def test_reveal_is_audited(store: Store) -> None:
    add(store)
    assert services(store).providers.shared_secret("Twitter") == SECRET
    services(store).providers.record_reveal("Twitter")
    entry = services(store).audit.list(limit=1).entries[0]
    assert entry.action == "provider.reveal_secret"
    assert SECRET not in f"{entry.before}{entry.after}{entry.detail}"


def test_names_are_unique_without_regard_to_case(store: Store) -> None:
    """Issue 9: "Example" and "example" are one name (an index on lower(name) too)."""
    from tui_oauth.core.errors import ConflictError

    urls = dict(request_token_url="https://sp.example/r", authorization_url="https://sp.example/a",
                access_token_url="https://sp.example/t")
    services(store).providers.add(name="Example", consumer_key="ck", shared_secret="s", **urls)
    with pytest.raises(ConflictError, match="without regard to case"):
        services(store).providers.add(name="EXAMPLE", consumer_key="ck", shared_secret="s", **urls)
    services(store).providers.add(name="Other", consumer_key="ck", shared_secret="s", **urls)
    with pytest.raises(ConflictError):
        services(store).providers.edit("Other", name="example")
    assert services(store).providers.get("example").name == "Example"  # found whatever the case
    services(store).providers.edit("example", description="found by any case")
    services(store).providers.edit("Example", name="EXAMPLE")  # its own name in another case: fine
    assert [p.name for p in services(store).providers.list()] == ["EXAMPLE", "Other"]
    # The database refuses it too, whatever writes it.
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(text("UPDATE service_providers SET name = 'other' WHERE name = 'EXAMPLE'"))


def test_windows_of_providers_by_name_ignoring_case(store: Store) -> None:
    """The console's providers list (issue 9): windows are slices of the list by name
    without regard to case; positions and filtered counts agree with it."""
    for name in ("delta", "Alpha", "charlie", "Bravo", "echo", "Foxtrot"):
        add(store, name, description="legacy" if name in ("delta", "Bravo") else None)
    whole = [p.name for p in services(store).providers.list()]
    assert whole == ["Alpha", "Bravo", "charlie", "delta", "echo", "Foxtrot"]
    assert services(store).providers.count() == 6
    for start in range(7):
        for total in (None, 6):
            assert [p.name for p in services(store).providers.window(start=start, size=3,
                                                                     total=total)
                    ] == whole[start:start + 3]
    assert [services(store).providers.position(n.upper()) for n in whole] == list(range(6))
    assert services(store).providers.count("LEGACY") == 2
    assert [p.name for p in services(store).providers.window("legacy")] == ["Bravo", "delta"]
    assert services(store).providers.position("delta", "legacy") == 1
    assert services(store).providers.position("echo", "legacy") is None
