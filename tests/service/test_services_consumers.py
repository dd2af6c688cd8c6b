"""ConsumerService on SQLite and PostgreSQL, secrets in an in-memory keyring."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import Session, select

from tests.helpers import (
    add_tokens,
    all_text,
    audit_actions,
    consumer_info_xml,
    count,
    db_state,
    expected_fingerprint,
    keyring_items,
    pem_private,
    pem_spki,
    public_key_forms,
    rsa_key,
    serve_consumer_info,
    spki_b64,
)
from tests.keyring_backends import MemoryKeyring
from tui_oauth.core.errors import ConflictError, NotFoundError, ValidationError
from tui_oauth.core.models import AuditEntry, consumer_secret_item
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store

SECRET = "hmac-Sh4red-s3cret-for-jira"
OTHER_SECRET = "replacement-s3cret-42"


def add_rsa(store: Store, key: str = "jira:13549426", **kw: Any) -> Any:
    kw.setdefault("name", "JIRA")
    kw.setdefault("public_key", pem_spki(rsa_key(0)))
    return services(store).consumers.add(key=key, **kw)


def add_hmac(store: Store, key: str = "www.google.com", secret: str = SECRET, **kw: Any) -> Any:
    kw.setdefault("name", "Google")
    return services(store).consumers.add(key=key, shared_secret=secret,
                                         signature_method="HMAC-SHA1", **kw)


def last_audit(store: Store) -> AuditEntry:
    with Session(store.engine) as s:
        entry = s.exec(select(AuditEntry).order_by(AuditEntry.id.desc())).first()  # type: ignore[union-attr]
    assert entry is not None
    return entry


# --- adding ---------------------------------------------------------------------------

@pytest.mark.parametrize("form", sorted(public_key_forms(rsa_key(1))))
def test_add_rsa_accepts_each_public_key_form(store: Store, form: str) -> None:
    key = rsa_key(1)
    c = services(store).consumers.add(key="jira:6f1c9a", name="JIRA",
                                      public_key=public_key_forms(key)[form])
    assert c.public_key == spki_b64(key)  # normalized to Atlassian's bare base64
    assert c.signature_method == "RSA-SHA1"
    assert c.has_shared_secret is False
    detail = services(store).consumers.detail("jira:6f1c9a")
    assert detail.public_key is not None
    assert detail.public_key.bits == 2048
    assert detail.public_key.fingerprint == expected_fingerprint(key)
    assert detail.token_count == 0
    assert services(store).consumers.get("jira:6f1c9a").public_key == spki_b64(key)
    assert store.secrets.list_names() == []
    assert audit_actions(store) == ["consumer.add"]


def test_add_defaults(store: Store) -> None:
    c = add_rsa(store)
    assert (c.three_lo_allowed, c.two_lo_allowed, c.two_lo_impersonation) == (True, False, False)
    assert c.allow_plaintext is False
    assert c.created_at.tzinfo is not None
    assert services(store).consumers.get(c.key).created_at == c.created_at


def test_add_hmac_keeps_secret_in_keyring_only(store: Store,
                                               memory_keyring: MemoryKeyring) -> None:
    c = add_hmac(store, callback_url="https://www.google.com/oauth/cb")
    assert c.has_shared_secret is True
    assert c.signature_method == "HMAC-SHA1"
    items = keyring_items(store, memory_keyring)
    assert items == {consumer_secret_item(c): SECRET}
    assert consumer_secret_item(c) == f"consumer/{c.uid}/shared-secret"
    assert store.secrets.service_name == f"tui-oauth/{store.store_id}"
    assert services(store).consumers.shared_secret(c.key) == SECRET
    assert SECRET not in all_text(store)
    summary = services(store).consumers.list()[0]
    assert summary.has_shared_secret and not summary.has_public_key


def test_add_hmac_with_plaintext_allowance(store: Store) -> None:
    c = add_hmac(store, allow_plaintext=True)
    assert c.allow_plaintext is True


def test_add_2lo_with_execute_as_and_impersonation(store: Store) -> None:
    c = add_rsa(store, two_lo_allowed=True, two_lo_execute_as="svc-bot",
                two_lo_impersonation=True, three_lo_allowed=False)
    got = services(store).consumers.get(c.key)
    assert (got.two_lo_allowed, got.two_lo_execute_as, got.two_lo_impersonation) == (
        True, "svc-bot", True)
    assert got.three_lo_allowed is False


BASE: dict[str, Any] = {"key": "jira:1", "name": "JIRA"}
INVALID = [
    pytest.param({"key": ""}, "key", id="missing-key"),
    pytest.param({"key": "   "}, "key", id="blank-key"),
    pytest.param({"name": ""}, "name", id="missing-name"),
    pytest.param({"key": "jira 1"}, "key", id="key-with-space"),
    pytest.param({"key": "jira:\t1"}, "key", id="key-with-tab"),
    pytest.param({"key": "k" * 256}, "key", id="key-too-long"),
    pytest.param({"callback_url": "ftp://jira.example.com/cb"}, "callback_url", id="cb-ftp"),
    pytest.param({"callback_url": "jira.example.com/cb"}, "callback_url", id="cb-relative"),
    pytest.param({"callback_url": "https://u:p@jira.example.com/"}, "callback_url",
                 id="cb-credentials"),
    pytest.param({"callback_url": "https://jira.example.com/a b"}, "callback_url", id="cb-space"),
    pytest.param({"public_key": None, "signature_method": "RSA-SHA1"}, "public_key",
                 id="rsa-without-key"),
    pytest.param({"public_key": None}, "public_key", id="nothing-to-sign-with"),
    pytest.param({"public_key": None, "signature_method": "HMAC-SHA1"}, "shared_secret",
                 id="hmac-without-secret"),
    pytest.param({"allow_plaintext": True}, "allow_plaintext", id="plaintext-without-secret"),
    pytest.param({"two_lo_execute_as": "admin"}, "two_lo_execute_as",
                 id="execute-as-without-2lo"),
    pytest.param({"two_lo_impersonation": True}, "two_lo_impersonation",
                 id="impersonation-without-2lo"),
    pytest.param({"public_key": "not a key at all"}, "public_key", id="garbage-key"),
    pytest.param({"public_key": "<consumer/>"}, "public_key", id="xml-key"),
    pytest.param({"public_key": pem_private(rsa_key(0))}, "public_key", id="private-key"),
    pytest.param({"public_key": spki_b64(rsa_key(0))[:-20]}, "public_key", id="truncated-key"),
    pytest.param({"signature_method": "PLAINTEXT"}, "signature_method", id="plaintext-method"),
    pytest.param({"shared_secret": ""}, "shared_secret", id="empty-secret"),
    pytest.param({"shared_secret": "line\nbreak"}, "shared_secret", id="secret-control-char"),
]


@pytest.mark.parametrize(("changes", "field"), INVALID)
def test_add_invalid_reports_the_field_and_leaves_nothing(
        sqlite_store: Store, memory_keyring: MemoryKeyring, changes: dict[str, Any],
        field: str) -> None:
    """Checked before anything is written, the same on either engine: SQLite only (a
    database refusal, a duplicate key, is tried on both below)."""
    store = sqlite_store
    kwargs = {**BASE, "public_key": pem_spki(rsa_key(0)), **changes}
    with pytest.raises(ValidationError) as info:
        services(store).consumers.add(**kwargs)
    assert [e.field for e in info.value.errors] == [field], info.value.errors
    assert info.value.field == field
    assert info.value.for_field(field)
    assert count(store, "consumers") == 0
    assert count(store, "audit_log") == 0
    assert keyring_items(store, memory_keyring) == {}
    assert not any(op == "set" for op in memory_keyring.operations())


def test_secret_never_echoed_in_validation_message(store: Store) -> None:
    bad = "sekrit-with-\x07-bell"
    with pytest.raises(ValidationError) as info:
        services(store).consumers.add(key="k", name="n", shared_secret=bad,
                                      signature_method="HMAC-SHA1")
    assert bad not in str(info.value) and "sekrit" not in str(info.value)


def test_add_reports_several_errors_at_once(store: Store) -> None:
    with pytest.raises(ValidationError) as info:
        services(store).consumers.add(key="jira 1", name="", callback_url="nope",
                                      two_lo_impersonation=True, public_key="garbage")
    fields = {e.field for e in info.value.errors}
    assert fields == {"key", "name", "callback_url", "two_lo_impersonation", "public_key"}
    assert count(store, "consumers") == 0


def test_duplicate_key_is_a_conflict_and_changes_nothing(
        store: Store, memory_keyring: MemoryKeyring) -> None:
    first = add_hmac(store)
    before = db_state(store)
    with pytest.raises(ConflictError) as info:
        add_hmac(store, secret=OTHER_SECRET, name="Impostor")
    assert isinstance(info.value, ValidationError)
    assert info.value.field == "key"
    assert db_state(store) == before
    assert keyring_items(store, memory_keyring) == {consumer_secret_item(first): SECRET}


# --- editing --------------------------------------------------------------------------

def test_edit_changes_fields_but_not_key(store: Store) -> None:
    c = add_rsa(store, description="old")
    new_key = rsa_key(2)
    edited = services(store).consumers.edit(
        c.key, name="JIRA Prod", description="Production JIRA",
        callback_url="https://jira.example.com/cb", public_key=pem_spki(new_key),
        two_lo_allowed=True, two_lo_execute_as="robot",
    )
    assert edited.key == c.key and edited.uid == c.uid
    got = services(store).consumers.get(c.key)
    assert (got.name, got.description, got.callback_url) == (
        "JIRA Prod", "Production JIRA", "https://jira.example.com/cb")
    assert got.public_key == spki_b64(new_key)
    assert got.two_lo_execute_as == "robot"
    assert got.updated_at >= c.updated_at and got.created_at == c.created_at
    entry = last_audit(store)
    assert entry.action == "consumer.edit" and entry.target == c.key
    before, after = json.loads(entry.before or ""), json.loads(entry.after or "")
    assert (before["name"], after["name"]) == ("JIRA", "JIRA Prod")
    assert (before["description"], after["description"]) == ("old", "Production JIRA")


@pytest.mark.parametrize("new_key", ["jira:2", "jira:13549426"])
def test_edit_refuses_key_change(store: Store, new_key: str) -> None:
    c = add_rsa(store)
    before = db_state(store)
    with pytest.raises(ValidationError) as info:
        services(store).consumers.edit(c.key, key=new_key)
    assert info.value.field == "key"
    assert db_state(store) == before


def test_edit_unknown_field_and_missing_consumer(store: Store) -> None:
    add_rsa(store)
    with pytest.raises(ValidationError) as info:
        services(store).consumers.edit("jira:13549426", colour="red")
    assert info.value.field == "colour"
    with pytest.raises(NotFoundError):
        services(store).consumers.edit("no-such-key", name="x")
    with pytest.raises(NotFoundError):
        services(store).consumers.get("no-such-key")


@pytest.mark.parametrize(("changes", "field"), [
    ({"name": ""}, "name"),
    ({"callback_url": "mailto:a@b"}, "callback_url"),
    ({"public_key": None}, "public_key"),
    ({"two_lo_impersonation": True}, "two_lo_impersonation"),
    ({"shared_secret": "x\x00y"}, "shared_secret"),
])
def test_edit_invalid_changes_nothing(store: Store, memory_keyring: MemoryKeyring,
                                      changes: dict[str, Any], field: str) -> None:
    c = add_rsa(store)
    before, keyring_before = db_state(store), keyring_items(store, memory_keyring)
    with pytest.raises(ValidationError) as info:
        services(store).consumers.edit(c.key, **changes)
    assert info.value.field == field
    assert db_state(store) == before
    assert keyring_items(store, memory_keyring) == keyring_before


def test_edit_without_change_writes_no_audit(store: Store) -> None:
    c = add_rsa(store)
    services(store).consumers.edit(c.key, name="JIRA")
    assert audit_actions(store) == ["consumer.add"]


def test_edit_replaces_and_removes_secret(store: Store, memory_keyring: MemoryKeyring) -> None:
    c = add_hmac(store)
    item = consumer_secret_item(c)
    services(store).consumers.edit(c.key, shared_secret=OTHER_SECRET)
    assert keyring_items(store, memory_keyring) == {item: OTHER_SECRET}
    assert last_audit(store).detail == "shared secret replaced"

    # HMAC-SHA1 cannot lose its secret...
    with pytest.raises(ValidationError) as info:
        services(store).consumers.edit(c.key, shared_secret=None)
    assert info.value.field == "shared_secret"
    assert keyring_items(store, memory_keyring) == {item: OTHER_SECRET}

    # ...but a consumer that moves to RSA-SHA1 can.
    services(store).consumers.edit(c.key, shared_secret="", signature_method="RSA-SHA1",
                                   public_key=pem_spki(rsa_key(0)))
    got = services(store).consumers.get(c.key)
    assert got.has_shared_secret is False and got.signature_method == "RSA-SHA1"
    assert keyring_items(store, memory_keyring) == {}
    assert services(store).consumers.shared_secret(c.key) is None
    assert last_audit(store).detail == "shared secret removed"
    text = all_text(store)
    assert SECRET not in text and OTHER_SECRET not in text


def test_edit_adds_secret_to_rsa_consumer(store: Store, memory_keyring: MemoryKeyring) -> None:
    c = add_rsa(store)
    services(store).consumers.edit(c.key, signature_method="HMAC-SHA1", shared_secret=SECRET)
    got = services(store).consumers.get(c.key)
    assert got.has_shared_secret and got.signature_method == "HMAC-SHA1"
    assert keyring_items(store, memory_keyring) == {consumer_secret_item(c): SECRET}


# --- listing --------------------------------------------------------------------------

@pytest.fixture
def three(store: Store) -> Store:
    add_rsa(store, "jira:1", name="JIRA Prod", description="100% uptime")
    add_hmac(store, "conf_2", name="Confluence", description="wiki")
    add_rsa(store, "bamboo", name="Bamboo", description="Build server", two_lo_allowed=True,
            public_key=spki_b64(rsa_key(1)))
    return store


@pytest.mark.parametrize(("text", "keys"), [
    (None, ["bamboo", "conf_2", "jira:1"]),
    ("", ["bamboo", "conf_2", "jira:1"]),
    ("JIRA", ["jira:1"]),
    ("prod", ["jira:1"]),
    ("BUILD SERVER", ["bamboo"]),
    ("Wiki", ["conf_2"]),
    ("o", ["bamboo", "conf_2", "jira:1"]),
    ("%", ["jira:1"]),
    ("100%", ["jira:1"]),
    ("_", ["conf_2"]),
    ("f_2", ["conf_2"]),
    ("j%a", []),
    ("c_nf", []),
    ("\\", []),
])
def test_list_filter(three: Store, text: str | None, keys: list[str]) -> None:
    assert [c.key for c in services(three).consumers.list(text)] == keys


@pytest.mark.parametrize(("sort", "descending", "keys"), [
    ("key", False, ["bamboo", "conf_2", "jira:1"]),
    ("key", True, ["jira:1", "conf_2", "bamboo"]),
    ("name", False, ["bamboo", "conf_2", "jira:1"]),
    ("name", True, ["jira:1", "conf_2", "bamboo"]),
    ("created", False, ["jira:1", "conf_2", "bamboo"]),
    ("created", True, ["bamboo", "conf_2", "jira:1"]),
    ("signature_method", False, ["conf_2", "bamboo", "jira:1"]),
    ("two_lo", True, ["bamboo", "jira:1", "conf_2"]),  # ties by key, descending too
])
def test_list_sort(three: Store, sort: str, descending: bool, keys: list[str]) -> None:
    assert [c.key for c in services(three).consumers.list(sort=sort, descending=descending)] == keys


def test_list_sort_by_name_ignores_case(store: Store) -> None:
    for key, name in (("k1", "zeta"), ("k2", "Alpha"), ("k3", "beta"), ("k4", "Gamma")):
        add_rsa(store, key, name=name)
    assert [c.name for c in services(store).consumers.list(sort="name")] == [
        "Alpha", "beta", "Gamma", "zeta"]
    assert [c.name for c in services(store).consumers.list(sort="name", descending=True)] == [
        "zeta", "Gamma", "beta", "Alpha"]


def test_list_bad_sort(three: Store) -> None:
    with pytest.raises(ValidationError) as info:
        services(three).consumers.list(sort="secret")
    assert info.value.field == "sort"


def test_list_token_counts(three: Store) -> None:
    jira, bamboo = services(three).consumers.get("jira:1"), services(three).consumers.get("bamboo")
    add_tokens(three, jira.id, request=2, access=3)  # type: ignore[arg-type]
    add_tokens(three, bamboo.id, access=1)  # type: ignore[arg-type]
    counts = {c.key: c.token_count for c in services(three).consumers.list()}
    assert counts == {"jira:1": 5, "conf_2": 0, "bamboo": 1}
    detail = services(three).consumers.detail("jira:1")
    assert (detail.request_tokens, detail.access_tokens, detail.token_count) == (2, 3, 5)


# --- removing -------------------------------------------------------------------------

def test_remove_takes_tokens_secret_and_row(three: Store, memory_keyring: MemoryKeyring) -> None:
    conf, jira = services(three).consumers.get("conf_2"), services(three).consumers.get("jira:1")
    add_tokens(three, conf.id, request=1, access=3)  # type: ignore[arg-type]
    add_tokens(three, jira.id, access=2)  # type: ignore[arg-type]
    assert consumer_secret_item(conf) in keyring_items(three, memory_keyring)

    assert services(three).consumers.remove("conf_2") == 4

    assert count(three, "tokens", "consumer_id = :id", id=conf.id) == 0
    assert count(three, "tokens", "consumer_id = :id", id=jira.id) == 2
    assert keyring_items(three, memory_keyring) == {}
    with pytest.raises(NotFoundError):
        services(three).consumers.get("conf_2")
    entry = last_audit(three)
    assert (entry.action, entry.target_type, entry.target) == (
        "consumer.remove", "consumer", "conf_2")
    assert entry.detail == "4 token(s) removed with it"
    assert json.loads(entry.before or "")["name"] == "Confluence" and entry.after is None

    assert services(three).consumers.remove("jira:1") == 2
    assert count(three, "tokens") == 0
    with pytest.raises(NotFoundError):
        services(three).consumers.remove("jira:1")


def test_remove_when_secret_already_gone(store: Store, memory_keyring: MemoryKeyring) -> None:
    c = add_hmac(store)
    store.secrets.delete(consumer_secret_item(c))  # lost behind the store's back
    assert services(store).consumers.remove(c.key) == 0
    assert count(store, "consumers") == 0
    assert keyring_items(store, memory_keyring) == {}


# --- adding by URL --------------------------------------------------------------------

@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def test_preview_from_url_then_add(store: Store, no_proxy: None) -> None:
    key = rsa_key(3)
    doc = consumer_info_xml("jira:6f1c0d3e", "JIRA", spki_b64(key),
                            description="Atlassian JIRA at https://jira.example.com",
                            callback="https://jira.example.com/plugins/servlet/oauth/callback")
    with serve_consumer_info(doc) as base:
        preview = services(store).consumers.preview_from_url(base + "/", timeout=5,
                                                             allow_private=True)
        assert preview.key == "jira:6f1c0d3e"
        assert preview.existing is None
        assert preview.fetched.doc.public_key.fingerprint == expected_fingerprint(key)
        assert preview.fetched.final_url == base + "/plugins/servlet/oauth/consumer-info"
        assert count(store, "consumers") == 0  # a preview saves nothing

        c = services(store).consumers.add_from_preview(preview)
        assert (c.key, c.name, c.signature_method) == ("jira:6f1c0d3e", "JIRA", "RSA-SHA1")
        assert c.public_key == spki_b64(key)
        assert c.description == "Atlassian JIRA at https://jira.example.com"
        assert c.callback_url == "https://jira.example.com/plugins/servlet/oauth/callback"
        assert services(store).consumers.detail(c.key).public_key.fingerprint == (  # type: ignore[union-attr]
            expected_fingerprint(key))

        again = services(store).consumers.preview_from_url(base, timeout=5, allow_private=True)
        assert again.existing is not None and again.existing.key == c.key
        assert again.existing.uid == c.uid
        with pytest.raises(ConflictError) as info:
            services(store).consumers.add_from_preview(again)
        assert info.value.field == "key"
    assert audit_actions(store) == ["consumer.add"]


def test_add_from_preview_with_overrides(store: Store, no_proxy: None) -> None:
    doc = consumer_info_xml("confluence:77", "Confluence", spki_b64(rsa_key(1)))
    with serve_consumer_info(doc) as base:
        preview = services(store).consumers.preview_from_url(base, timeout=5, allow_private=True)
    c = services(store).consumers.add_from_preview(preview, name="Wiki", two_lo_allowed=True)
    assert (c.name, c.two_lo_allowed, c.description, c.callback_url) == (
        "Wiki", True, None, None)


def test_preview_refuses_non_xml(store: Store, no_proxy: None) -> None:
    doc = consumer_info_xml("confluence:77", "Confluence", spki_b64(rsa_key(1)))
    with serve_consumer_info(doc, content_type="text/html") as base, \
            pytest.raises(ValidationError) as info:
        services(store).consumers.preview_from_url(base, timeout=5, allow_private=True)
    assert info.value.field == "url"
    assert count(store, "consumers") == 0


@pytest.mark.parametrize("sort", ["key", "name", "signature_method", "created", "two_lo"])
def test_listing_a_page_at_a_time_gives_every_row_once_in_order(store: Store, sort: str) -> None:
    """Keyset paging (issue 9): pages of 3 over rows whose sort values repeat across page
    boundaries give exactly the rows of one query, in its order, with the right counts."""
    from sqlmodel import select as sql_select

    from tui_oauth.core.models import Consumer

    for i in range(11):
        add_rsa(store, key=f"k{i:02d}", name=["Beta", "alpha", "Alpha"][i % 3],
                two_lo_allowed=bool(i % 2))
    with Session(store.engine) as s:
        ids = {c.key: c.id for c in s.exec(sql_select(Consumer)).all()}
    k04 = ids["k04"]
    assert k04 is not None
    add_tokens(store, k04, request=2, access=3)
    for descending in (False, True):
        paged = list(services(store).consumers.iter_list(sort=sort, descending=descending,
                                                         page_size=3))
        assert sorted(r.key for r in paged) == sorted(ids)  # each row once
        values = [(_value(r, sort), r.key) for r in paged]
        # sorted by the column, ties by the key, both in the sort's direction
        assert values == sorted(values, reverse=descending)
        assert {r.key: r.token_count for r in paged}["k04"] == 5
    filtered = list(services(store).consumers.iter_list("alpha", sort="name", page_size=2))
    assert [r.name.lower() for r in filtered] == ["alpha"] * 7  # alpha and Alpha


@pytest.mark.parametrize("sort", ["key", "name", "signature_method", "created", "two_lo"])
def test_windows_are_slices_of_the_whole_list(store: Store, sort: str) -> None:
    """Windows (the console's list, issue 9): any window, from the front or read from
    the end, is the same slice of the one-query list; a key's position is its index;
    counts follow the filter."""
    for i in range(13):
        add_rsa(store, key=f"w{i:02d}", name=["Beta", "alpha", "Alpha"][i % 3],
                two_lo_allowed=bool(i % 2), description="special" if i % 4 == 0 else None)
    for descending in (False, True):
        whole = [r.key for r in services(store).consumers.list(sort=sort, descending=descending)]
        total = services(store).consumers.count()
        assert total == len(whole) == 13
        for start in (0, 1, 5, 8, 12, 13):
            for known in (None, total):
                got = services(store).consumers.window(sort=sort, descending=descending,
                                                       start=start,
                                                       size=4, total=known)
                assert [r.key for r in got] == whole[start:start + 4], (start, known)
        for i, key in enumerate(whole):
            assert services(store).consumers.position(key, sort=sort, descending=descending) == i
    assert services(store).consumers.position("nobody", sort=sort) is None
    assert services(store).consumers.count("SPECIAL") == 4
    special = [r.key for r in services(store).consumers.list("special", sort=sort)]
    assert [r.key for r in services(store).consumers.window("special", sort=sort, start=1, size=2,
                                                            total=4)] == special[1:3]
    assert services(store).consumers.position(special[2], "special", sort=sort) == 2
    assert services(store).consumers.position("w01", "special", sort=sort) is None  # filtered out


def test_token_windows_newest_first(three: Store) -> None:
    """A consumer's tokens a window at a time (the console's detail view)."""
    jira, bamboo = services(three).consumers.get("jira:1"), services(three).consumers.get("bamboo")
    add_tokens(three, jira.id, request=4, access=5)  # type: ignore[arg-type]
    add_tokens(three, bamboo.id, access=2)  # type: ignore[arg-type]
    whole = services(three).tokens.list(consumer_key="jira:1").rows  # newest first
    assert services(three).tokens.count_of("jira:1") == len(whole) == 9
    for start in range(10):
        for total in (None, 9):
            got = services(three).tokens.window("jira:1", start=start, size=4, total=total)
            assert [t.token for t in got] == [t.token for t in whole[start:start + 4]]
    assert [services(three).tokens.position("jira:1", t.token) for t in whole] == list(range(9))
    other = services(three).tokens.list(consumer_key="bamboo").rows[0].token
    assert services(three).tokens.position("jira:1", other) is None
    with pytest.raises(NotFoundError):
        services(three).tokens.window("nobody")


def _value(row: Any, sort: str) -> Any:
    return {"key": row.key, "name": row.name.lower(), "signature_method": row.signature_method,
            "created": row.created_at, "two_lo": row.two_lo_allowed}[sort]
