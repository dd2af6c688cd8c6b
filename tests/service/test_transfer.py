"""Export and import of a configuration (core/transfer.py), the data key between hosts,
and the sealed form (core/sealed.py): SQLite to SQLite and SQLite to PostgreSQL, each
host with a keyring of its own."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring.errors
import pytest
from sqlmodel import select

from tests.conftest import new_sqlite_store
from tests.keyring_backends import MemoryKeyring
from tests.provider_support import add_hmac_consumer, add_rsa_consumer
from tui_oauth.core.consumer_info_doc import render_consumer_info
from tui_oauth.core.errors import ConflictError, SecretStoreError, ValidationError
from tui_oauth.core.models import AuditEntry, KeyringItem, StoreMeta
from tui_oauth.core.provider.crypto import DataKey, load_data_key
from tui_oauth.core.provider.settings import ProviderSettings, set_setting
from tui_oauth.core.registry import services
from tui_oauth.core.sealed import WrongPassphraseError, seal, unseal
from tui_oauth.core.store import Store, open_store
from tui_oauth.core.transfer import (
    export_config,
    export_data_key,
    import_config,
    import_data_key,
    open_data_key,
    open_secrets,
    read_config,
    read_consumer_info_xml,
    read_data_key_file,
)

PASS = "correct horse battery staple"
CONSUMER_SECRET = "hmac-consumer-secret-5c1f9e"
PROVIDER_SECRET = "provider-secret-8d2a7b"
PROVIDER_FIELDS = ("name", "description", "consumer_key", "signature_method",
                   "request_token_url", "authorization_url", "access_token_url",
                   "allow_private", "has_shared_secret")
CONSUMER_FIELDS = ("key", "name", "description", "public_key", "callback_url",
                   "signature_method", "allow_plaintext", "three_lo_allowed",
                   "two_lo_allowed", "two_lo_execute_as", "two_lo_impersonation",
                   "has_shared_secret")


def make_host_a(directory: Path) -> Store:
    """The source: a SQLite store with its own keyring, filled with one of everything."""
    directory.mkdir(exist_ok=True)
    url = f"sqlite:///{directory / 'a.db'}"
    new_sqlite_store(url)
    s = open_store(url, secrets_backend=MemoryKeyring())
    add_rsa_consumer(s, "jira:1", name="JIRA", description="line one\nline two",
                     callback_url="https://jira.example.com/cb", two_lo_allowed=True,
                     two_lo_execute_as="svc")
    add_hmac_consumer(s, "partner", secret=CONSUMER_SECRET, name="Partner",
                      allow_plaintext=True)
    add_rsa_consumer(s, "confluence", index=1, name="Confluence")
    services(s).consumer_info.get()
    services(s).providers.add(name="Example", consumer_key="ck-1", shared_secret=PROVIDER_SECRET,
                              request_token_url="https://sp.example/rt",
                              authorization_url="https://sp.example/auth",
                              access_token_url="https://sp.example/at")
    services(s).providers.add(name="Signed", consumer_key="ck-2", signature_method="RSA-SHA1",
                              description="RSA", request_token_url="https://sp2.example/rt",
                              authorization_url="https://sp2.example/auth",
                              access_token_url="https://sp2.example/at", allow_private=True)
    set_setting(s, "access_token_ttl", 3600)
    set_setting(s, "problem_detail", "minimal")
    load_data_key(s)
    return s


@pytest.fixture
def host_a(tmp_path: Path) -> Iterator[Store]:
    s = make_host_a(tmp_path / "a")
    yield s
    s.close()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """host_a's export (no secrets), made once for the tests that only read it."""
    s = make_host_a(tmp_path_factory.mktemp("exported") / "a")
    try:
        return export_config(s)
    finally:
        s.close()


def secrets_of(store: Store) -> list[str]:
    """Every secret value the store holds in its keyring (and the private key's lines)."""
    values = [v for (service, _), v in store.secrets._resolved().items.items()  # type: ignore[attr-defined]
              if service == store.secrets.service_name]
    lines = [line for v in values for line in v.splitlines()
             if len(line) > 20 and not line.startswith("-----")]
    return values + lines


def as_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def incoming(store: Store, doc: dict[str, Any], passphrase: str | None = PASS) -> Any:
    got = read_config(store, as_bytes(doc), source="x.json")
    if got.sealed is not None and passphrase is not None:
        open_secrets(got, passphrase)
    return got


def fields(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {f: getattr(row, f) for f in names}


def test_round_trip_gives_the_same_configuration_and_working_secrets(
        host_a: Store, store: Store) -> None:
    doc = export_config(host_a, passphrase=PASS)
    text = json.dumps(doc)
    secrets = secrets_of(host_a)
    assert CONSUMER_SECRET in secrets and PROVIDER_SECRET in secrets and len(secrets) >= 5
    for value in secrets:
        assert value not in text, "a secret is in clear in the export"
    assert set(doc["secrets"]) >= {"kdf", "n", "r", "p", "salt", "nonce", "ciphertext"}
    assert doc["secrets"]["n"] >= 2**15

    report = import_config(store, incoming(store, doc))
    assert report.summary() == "9 added, 0 changed, 0 skipped, 0 unchanged"

    for key in ("jira:1", "partner", "confluence"):
        assert fields(services(store).consumers.get(key), CONSUMER_FIELDS) == \
            fields(services(host_a).consumers.get(key), CONSUMER_FIELDS)
    assert services(store).consumers.shared_secret("partner") == CONSUMER_SECRET
    for name in ("Example", "Signed"):
        assert fields(services(store).providers.get(name), PROVIDER_FIELDS) == \
            fields(services(host_a).providers.get(name), PROVIDER_FIELDS)
    assert services(store).providers.shared_secret("Example") == PROVIDER_SECRET
    a_info, b_info = services(host_a).consumer_info.get(), services(store).consumer_info.get()
    assert fields(a_info, ("key", "name", "description", "callback_url", "public_key")) == \
        fields(b_info, ("key", "name", "description", "callback_url", "public_key"))
    assert (services(store).consumer_info.private_key_pem()
            == services(host_a).consumer_info.private_key_pem())
    assert ProviderSettings.load(store) == ProviderSettings.load(host_a)
    blob = load_data_key(host_a).encrypt("token-secret", "tok-1")
    assert load_data_key(store).decrypt(blob, "tok-1") == "token-secret"

    with store.session() as s:
        audit = s.exec(select(AuditEntry)).all()
    summary = [e for e in audit if e.action == "config.import"]
    assert len(summary) == 1 and "9 added" in (summary[0].detail or "")
    assert json.loads(summary[0].after or "{}")["add"] == 9
    dump = json.dumps([e.model_dump(mode="json") for e in audit])
    for value in secrets:
        assert value not in dump, "a secret reached the audit log"

    again = import_config(store, incoming(store, export_config(host_a, passphrase=PASS)))
    assert again.summary() == "0 added, 0 changed, 0 skipped, 9 unchanged"


def test_dry_run_reports_and_writes_nothing(host_a: Store, store: Store,
                                            memory_keyring: MemoryKeyring) -> None:
    report = import_config(store, incoming(store, export_config(host_a, passphrase=PASS)),
                           dry_run=True)
    assert report.dry_run and report.count("add") == 9
    assert services(store).consumers.count() == 0 and services(store).providers.count() == 0
    with store.session() as s:
        assert s.exec(select(AuditEntry)).all() == []
        assert s.get(StoreMeta, "setting.access_token_ttl") is None
    assert memory_keyring.items == {}


def test_without_secrets_adds_what_needs_none_and_says_what_it_skips(
        host_a: Store, store: Store) -> None:
    doc = export_config(host_a)
    assert doc["secrets"] == "excluded"
    report = import_config(store, incoming(store, doc))
    by_name = {(c.kind, c.name): c for c in report.changes}
    assert by_name[("consumer", "jira:1")].action == "add"
    assert by_name[("consumer", "partner")].action == "skip"
    assert "not in the file" in (by_name[("consumer", "partner")].reason or "")
    assert by_name[("consumer_info", services(host_a).consumer_info.get().key)].action == "skip"
    assert by_name[("service_provider", "Example")].action == "skip"
    assert by_name[("service_provider", "Signed")].action == "add"
    assert services(store).consumers.count() == 2


def test_a_different_consumer_is_skipped_unless_replace(host_a: Store, store: Store) -> None:
    add_hmac_consumer(store, "partner", secret="other-secret-value", name="Someone else")
    doc = export_config(host_a, passphrase=PASS)
    report = import_config(store, incoming(store, doc))
    skipped = next(c for c in report.changes if c.name == "partner")
    assert skipped.action == "skip" and skipped.reason == "differs; --replace to overwrite"
    assert set(skipped.fields) == {"name", "allow_plaintext", "shared_secret"}
    assert services(store).consumers.get("partner").name == "Someone else"
    assert services(store).consumers.shared_secret("partner") == "other-secret-value"

    report = import_config(store, incoming(store, doc), replace=True)
    assert [c.action for c in report.changes if c.name == "partner"] == ["change"]
    assert services(store).consumers.get("partner").name == "Partner"
    assert services(store).consumers.shared_secret("partner") == CONSUMER_SECRET


class FailsOnThirdSet(MemoryKeyring):
    def __init__(self) -> None:
        super().__init__()
        self.sets = 0

    def set_password(self, service: str, username: str, password: str) -> None:
        self.sets += 1
        if self.sets == 3:
            raise keyring.errors.PasswordSetError("simulated failure")
        super().set_password(service, username, password)


def test_a_keyring_failure_leaves_no_row_and_no_secret(host_a: Store, db_url: str) -> None:
    backend = FailsOnThirdSet()
    target = open_store(db_url, secrets_backend=backend)
    try:
        got = incoming(target, export_config(host_a, passphrase=PASS))
        with pytest.raises(SecretStoreError):
            import_config(target, got)
        assert backend.sets == 3, "two secrets were written before the failure"
        assert backend.items == {}, "orphan secrets were left in the keyring"
        assert services(target).consumers.count() == 0 and services(target).providers.count() == 0
        with target.session() as s:
            assert s.exec(select(AuditEntry)).all() == []
    finally:
        target.close()


def test_a_wrong_passphrase_is_refused_before_anything(host_a: Store, store: Store) -> None:
    got = read_config(store, as_bytes(export_config(host_a, passphrase=PASS)), source="x.json")
    with pytest.raises(WrongPassphraseError) as exc:
        open_secrets(got, "not the passphrase")
    assert "passphrase" in str(exc.value) and exc.value.field == "x.json: secrets"
    with pytest.raises(ValidationError, match="give their passphrase"):
        import_config(store, got)
    assert services(store).consumers.count() == 0


def _set(doc: dict[str, Any], path: list[Any], value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


@pytest.mark.parametrize(("path", "value", "where"), [
    (["consumers", 1, "name"], 123, "x.json: consumers[1].name"),
    (["consumers", 1, "name"], "n" * 100_000, "x.json: consumers[1].name"),
    (["consumers", 2, "name"], "evil\x1b[31mred", "x.json: consumers[2].name"),
    (["consumers", 0, "name"], "", "x.json: consumers[0].name"),
    (["consumers", 0, "callback_url"], "ftp://x", "x.json: consumers[0].callback_url"),
    (["consumers", 0, "public_key"], "not a key", "x.json: consumers[0].public_key"),
    (["consumers", 0, "two_lo_allowed"], "yes", "x.json: consumers[0].two_lo_allowed"),
    (["consumers", 0, "colour"], "red", "x.json: consumers[0].colour"),
    (["consumers", 0, "key"], "partner", "x.json: consumers[2].key"),
    (["consumers", 0, "signature_method"], "PLAINTEXT", "x.json: consumers[0].signature_method"),
    (["consumers"], {"a": 1}, "x.json: consumers"),
    (["service_providers", 0, "request_token_url"], None,
     "x.json: service_providers[0].request_token_url"),
    (["consumer_info", "key"], "has space", "x.json: consumer_info.key"),
    (["settings", "timestamp_window"], 10**9, "x.json: settings.timestamp_window"),
    (["settings", "bogus"], 1, "x.json: settings.bogus"),
    (["version"], 2, "x.json: version"),
    (["format"], "something-else", "x.json: format"),
    (["surprise"], True, "x.json: surprise"),
    (["secrets"], "included", "x.json: secrets"),
])
def test_hostile_files_are_refused_naming_the_place(exported: dict[str, Any],
                                                    sqlite_store: Store, path: list[Any],
                                                    value: Any, where: str) -> None:
    """Checked before anything is written, the same on either engine: SQLite only."""
    store = sqlite_store
    doc = copy.deepcopy(exported)
    _set(doc, path, value)
    with pytest.raises(ValidationError) as exc:
        read_config(store, as_bytes(doc), source="x.json")
    assert exc.value.field == where, str(exc.value)
    assert "\x1b" not in str(exc.value)


@pytest.mark.parametrize("data", [b"", b"[1, 2]", b"{" * 100_000, b"\xff\xfe",
                                  b'{"version": 1' + b"9" * 5000 + b"}"])
def test_unreadable_documents_are_refused(sqlite_store: Store, data: bytes) -> None:
    store = sqlite_store
    with pytest.raises(ValidationError) as exc:
        read_config(store, data, source="x.json")
    assert (exc.value.field or "").startswith("x.json: ")


def test_a_tampered_sealed_box_is_refused(host_a: Store, store: Store) -> None:
    doc = export_config(host_a, passphrase=PASS)
    huge = copy.deepcopy(doc)
    huge["secrets"]["n"] = 2**30  # would need 1 TiB of memory
    with pytest.raises(ValidationError) as exc:
        open_secrets(read_config(store, as_bytes(huge), source="x.json"), PASS)
    assert exc.value.field == "x.json: secrets.n"
    flipped = copy.deepcopy(doc)
    raw = flipped["secrets"]["ciphertext"]
    flipped["secrets"]["ciphertext"] = ("A" if raw[0] != "A" else "B") + raw[1:]
    with pytest.raises(WrongPassphraseError):
        open_secrets(read_config(store, as_bytes(flipped), source="x.json"), PASS)


def test_sealed_box_is_bound_to_its_purpose() -> None:
    box = seal(b"payload", PASS, purpose="one")
    assert unseal(box, PASS, purpose="one", path="p") == b"payload"
    with pytest.raises(WrongPassphraseError):
        unseal(box, PASS, purpose="two", path="p")
    with pytest.raises(ValidationError, match="shorter"):
        seal(b"x", "short", purpose="one")


def test_consumer_info_xml_documents_become_consumers(host_a: Store, store: Store) -> None:
    docs = []
    for key in ("jira:1", "confluence"):
        c = services(host_a).consumers.get(key)
        docs.append(render_consumer_info(c.key, c.name, c.description, c.callback_url,
                                         c.public_key or ""))
    got = read_consumer_info_xml(docs[0], source="a.xml")
    got.extend(read_consumer_info_xml(docs[1], source="b.xml"))
    report = import_config(store, got)
    assert report.summary() == "2 added, 0 changed, 0 skipped, 0 unchanged"
    c = services(store).consumers.get("confluence")
    assert c.public_key == services(host_a).consumers.get("confluence").public_key
    assert c.signature_method == "RSA-SHA1"
    with pytest.raises(ValidationError, match=r"also in a\.xml"):
        got.extend(read_consumer_info_xml(docs[0], source="c.xml"))
    with pytest.raises(ValidationError) as exc:
        read_consumer_info_xml(b"<consumer><key>k</key></consumer>", source="d.xml")
    assert {e.field for e in exc.value.errors} >= {"d.xml: name", "d.xml: public_key"}


# The data key between hosts on one store ------------------------------------------


def test_data_key_moves_between_hosts_sharing_a_store(db_url: str) -> None:
    a = open_store(db_url, secrets_backend=MemoryKeyring())
    b_keyring = MemoryKeyring()
    b = open_store(db_url, secrets_backend=b_keyring)
    try:
        blob = load_data_key(a).encrypt("secret-of-a-token", "tok-1")
        with pytest.raises(SecretStoreError, match="missing from this host's keyring"):
            load_data_key(b)
        doc = export_data_key(a, PASS)
        text = json.dumps(doc)
        assert load_data_key(a).to_text() not in text
        box = read_data_key_file(text.encode(), source="k.json")
        with pytest.raises(WrongPassphraseError):
            open_data_key(box, "wrong passphrase", source="k.json")
        assert b_keyring.items == {}
        result = import_data_key(b, open_data_key(box, PASS, source="k.json"))
        assert result.action == "add"
        assert load_data_key(b).decrypt(blob, "tok-1") == "secret-of-a-token"
        assert import_data_key(b, open_data_key(box, PASS)).action == "unchanged"

        other = DataKey.generate()
        with pytest.raises(ConflictError, match="--replace"):
            import_data_key(b, other)
        assert load_data_key(b).decrypt(blob, "tok-1") == "secret-of-a-token"
        replaced = import_data_key(b, other, replace=True)
        assert replaced.action == "change"
        assert load_data_key(b).decrypt(blob, "tok-1") is None
        assert b.secrets.get(KeyringItem.DATA_KEY) == other.to_text()
    finally:
        a.close()
        b.close()
