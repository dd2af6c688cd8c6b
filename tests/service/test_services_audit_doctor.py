"""The audit trail (what every change writes, append-only, paging, filters) and doctor."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from tests.helpers import HTTPS, pem_body_lines, pem_spki, rsa_key
from tests.keyring_backends import FailingKeyring, MemoryKeyring
from tui_oauth.core.audit import Actor
from tui_oauth.core.migrations import HEAD
from tui_oauth.core.models import (
    AuditEntry,
    consumer_secret_item,
    private_key_item,
    provider_secret_item,
)
from tui_oauth.core.registry import services
from tui_oauth.core.services.doctor import FAIL, OK, WARN
from tui_oauth.core.store import Store, open_store
from tui_oauth.core.timeutil import utcnow

C_SECRET, C_SECRET2 = "consumer-S3cret-a1", "consumer-S3cret-b2"
P_SECRET, P_SECRET2 = "provider-S3cret-c3", "provider-S3cret-d4"
SECRETS = (C_SECRET, C_SECRET2, P_SECRET, P_SECRET2)


def all_entries(store: Store) -> list[AuditEntry]:
    entries, before = [], None
    while True:
        page = services(store).audit.list(limit=1000, before_id=before)
        entries += page.entries
        if page.next_before_id is None:
            return entries
        before = page.next_before_id


# Each step: (action it must log, target, call, what before/after must show)
STEPS: list[tuple[str, str, Callable[[Store], Any], str | None, str | None]] = [
    ("consumer.add", "jira:1", lambda s: services(s).consumers.add(
        key="jira:1", name="JIRA", public_key=pem_spki(rsa_key(0))), None, "JIRA"),
    ("consumer.add", "hmac:1", lambda s: services(s).consumers.add(
        key="hmac:1", name="H", shared_secret=C_SECRET, signature_method="HMAC-SHA1"), None, "H"),
    ("consumer.edit", "jira:1", lambda s: services(s).consumers.edit("jira:1", name="JIRA 2"),
     "JIRA", "JIRA 2"),
    ("consumer.edit", "hmac:1", lambda s: services(s).consumers.edit("hmac:1",
                                                                     shared_secret=C_SECRET2),
     "H", "H"),
    ("consumer.remove", "hmac:1", lambda s: services(s).consumers.remove("hmac:1"), "H", None),
    ("provider.add", "P", lambda s: services(s).providers.add(
        name="P", consumer_key="ck", shared_secret=P_SECRET, **HTTPS), None, "P"),
    ("provider.edit", "Q", lambda s: services(s).providers.edit("P", name="Q",
                                                                shared_secret=P_SECRET2),
     "P", "Q"),
    ("provider.reveal_secret", "Q", lambda s: services(s).providers.record_reveal("Q"), None, None),
    ("provider.remove", "Q", lambda s: services(s).providers.remove("Q"), "Q", None),
    ("consumer_info.create", "", lambda s: services(s).consumer_info.get(), None, "*"),
    ("consumer_info.edit", "", lambda s: services(s).consumer_info.edit(name="Us"), "*", "Us"),
    ("consumer_info.rotate_key", "", lambda s: services(s).consumer_info.rotate_key(), "Us", "Us"),
    ("consumer.remove", "jira:1", lambda s: services(s).consumers.remove("jira:1"), "JIRA 2", None),
]


def test_every_change_writes_one_entry(db_url: str, memory_keyring: MemoryKeyring) -> None:
    actor = Actor("alice", "192.0.2.7")
    with open_store(db_url, secrets_backend=memory_keyring, actor=actor) as store:
        private_pems = []
        for action, target, call, before_name, after_name in STEPS:
            n = len(all_entries(store))
            if action == "consumer_info.rotate_key":
                private_pems.append(services(store).consumer_info.private_key_pem())
            call(store)
            entries = all_entries(store)
            assert len(entries) == n + 1, action
            e = entries[0]
            assert (e.action, e.actor, e.client_addr) == (action, "alice", "192.0.2.7")
            assert e.target == (target or services(store).consumer_info.get().key)
            assert e.at.tzinfo is not None and abs(utcnow() - e.at) < timedelta(minutes=1)
            for raw, name in ((e.before, before_name), (e.after, after_name)):
                if name is None:
                    assert raw is None, (action, raw)
                else:
                    data = json.loads(raw or "")
                    assert name == "*" or data["name"] == name, (action, data)
        private_pems.append(services(store).consumer_info.private_key_pem())

        dump = "\n".join(f"{e.before}{e.after}{e.detail}{e.target}" for e in all_entries(store))
        for secret in SECRETS:
            assert secret not in dump
        for pem in private_pems:
            assert not any(line in dump for line in pem_body_lines(pem))


def test_flags_about_secrets_are_recorded_and_secrets_are_not(store: Store) -> None:
    """allow_private (it controls the SSRF guard) is audited with its values, before and
    after; has_shared_secret and previous_secret_until too; a secret never."""
    svc = services(store)
    svc.providers.add(name="P", consumer_key="ck", shared_secret=P_SECRET, **HTTPS)
    n = len(all_entries(store))
    svc.providers.edit("P", allow_private=True)
    entries = all_entries(store)
    assert len(entries) == n + 1
    e = entries[0]
    assert e.action == "provider.edit"
    before, after = json.loads(e.before or ""), json.loads(e.after or "")
    assert (before["allow_private"], after["allow_private"]) == (False, True)
    assert after["has_shared_secret"] is True
    svc.consumers.add(key="h", name="H", shared_secret=C_SECRET, signature_method="HMAC-SHA1")
    svc.consumers.rotate_secret("h", secret=C_SECRET2, overlap=timedelta(hours=1))
    svc.consumers.edit("h", name="H2")
    e = all_entries(store)[0]
    assert json.loads(e.after or "")["previous_secret_until"] not in (None, "[redacted]")
    dump = "\n".join(f"{e.before}{e.after}{e.detail}" for e in all_entries(store))
    assert "[redacted]" not in dump
    for secret in SECRETS:
        assert secret not in dump


def test_default_actor_is_the_os_user(store: Store) -> None:
    services(store).consumers.add(key="k", name="n", public_key=pem_spki(rsa_key(0)))
    entry = services(store).audit.list().entries[0]
    assert entry.actor == store.actor.user == Actor.from_environment().user


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET actor = 'mallory'",
    "UPDATE audit_log SET detail = NULL WHERE id = (SELECT MAX(id) FROM audit_log)",
    "DELETE FROM audit_log",
    "DELETE FROM audit_log WHERE action = 'consumer.add'",
])
def test_audit_log_is_append_only(store: Store, statement: str) -> None:
    services(store).consumers.add(key="k", name="n", public_key=pem_spki(rsa_key(0)))
    before = [(e.id, e.actor, e.detail) for e in all_entries(store)]
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text(statement))
    assert [(e.id, e.actor, e.detail) for e in all_entries(store)] == before


# --- reading: paging and filters -----------------------------------------------------------

@pytest.fixture
def many(store: Store) -> Store:
    """120 entries: 3 actors, 4 actions, 10 targets; ids ascending with time."""
    actions = ("consumer.add", "consumer.edit", "consumer_info.edit", "provider.remove")
    base = utcnow() - timedelta(hours=120)
    with Session(store.engine) as s:
        for i in range(120):
            s.add(AuditEntry(
                at=base + timedelta(hours=i), actor=("alice", "bob", "carol")[i % 3],
                action=actions[i % 4], target_type="consumer", target=f"target-{i % 10}",
                detail=f"entry {i}" + (" 50% off" if i == 77 else ""),
            ))
        s.commit()
    return store


@pytest.mark.parametrize("limit", [1, 7, 25, 40, 119, 120, 121, 1000])
def test_paging_returns_each_entry_once_newest_first(many: Store, limit: int) -> None:
    seen: list[int] = []
    before, pages = None, 0
    while True:
        page = services(many).audit.list(limit=limit, before_id=before)
        pages += 1
        assert len(page.entries) <= limit
        seen += [e.id for e in page.entries]  # type: ignore[misc]
        if page.next_before_id is None:
            break
        assert page.next_before_id == page.entries[-1].id
        before = page.next_before_id
    assert len(seen) == 120
    assert seen == sorted(seen, reverse=True)
    assert len(set(seen)) == 120
    assert pages == -(-120 // limit)


def test_limit_is_clamped(many: Store) -> None:
    assert len(services(many).audit.list(limit=0).entries) == 1
    assert len(services(many).audit.list(limit=-5).entries) == 1


def details(page: Any) -> list[str]:
    return [e.detail for e in page.entries]


def numbers(page: Any) -> list[int]:
    return [int(e.detail.split()[1]) for e in page.entries]


def test_filters(many: Store) -> None:
    a = services(many).audit
    # text: case-insensitive over action, target, actor, detail; % is literal
    assert numbers(a.list(text="ENTRY 7", limit=200)) == [*range(79, 69, -1), 7]
    assert len(a.list(text="ENTRY 11", limit=200).entries) == 11  # 11, 110..119
    assert details(a.list(text="50%")) == ["entry 77 50% off"]
    assert a.list(text="5_%").entries == []
    assert len(a.list(text="CAROL", limit=200).entries) == 40
    assert len(a.list(text="target-3", limit=200).entries) == 12
    # action is a prefix
    assert len(a.list(action="consumer.", limit=200).entries) == 60
    assert len(a.list(action="consumer", limit=200).entries) == 90
    assert len(a.list(action="consumer.edit", limit=200).entries) == 30
    assert {e.action for e in a.list(action="consumer_", limit=200).entries} == {
        "consumer_info.edit"}  # _ and % are literal, not LIKE wildcards
    assert a.list(action="consumer_%", limit=200).entries == []
    assert a.list(action="%").entries == []
    # target and actor are exact
    assert {e.target for e in a.list(target="target-1", limit=200).entries} == {"target-1"}
    assert len(a.list(target="target-1", limit=200).entries) == 12
    assert a.list(target="target-").entries == []
    assert {e.actor for e in a.list(actor="bob", limit=200).entries} == {"bob"}
    assert a.list(actor="BOB").entries == []
    # since: the 10 newest are within the last 10 hours
    recent = a.list(since=utcnow() - timedelta(hours=10, minutes=30), limit=200)
    assert numbers(recent) == list(range(119, 109, -1))
    # combined, and paged
    combo = [e for e in a.list(actor="alice", action="consumer.add", limit=200).entries]
    assert {(e.actor, e.action) for e in combo} == {("alice", "consumer.add")}
    assert len(combo) == 10  # i % 3 == 0 and i % 4 == 0
    first = a.list(actor="alice", action="consumer.add", limit=4)
    second = a.list(actor="alice", action="consumer.add", limit=4,
                    before_id=first.next_before_id)
    assert [e.id for e in first.entries + second.entries] == [e.id for e in combo[:8]]


# --- doctor --------------------------------------------------------------------------

@pytest.fixture(params=["memory", "secret-service"])
def any_store(request: pytest.FixtureRequest, db_url: str) -> Iterator[Store]:
    """A store with an in-memory keyring, and one on the real Secret Service."""
    real = request.param == "secret-service"
    backend = request.getfixturevalue("secret_service") if real else MemoryKeyring()
    store = open_store(db_url, secrets_backend=backend)
    yield store
    if real:
        for name in store.secrets.list_names() or []:
            store.secrets.delete(name)
    store.close()


def populate(store: Store) -> tuple[Any, Any]:
    c = services(store).consumers.add(key="hmac:1", name="H", shared_secret=C_SECRET,
                                      signature_method="HMAC-SHA1")
    p = services(store).providers.add(name="P", consumer_key="ck", shared_secret=P_SECRET, **HTTPS)
    services(store).consumer_info.get()
    return c, p


def checks(report: Any) -> dict[str, Any]:
    return {c.name: c for c in report.checks}


def test_doctor_healthy_store(any_store: Store) -> None:
    c, p = populate(any_store)
    report = services(any_store).doctor.run()
    by_name = checks(report)
    assert report.ok, report.checks
    assert by_name["store"].message.startswith(any_store.display_url)
    assert any_store.dialect in by_name["store"].message
    assert "secretpw" not in " ".join(ch.message for ch in report.checks)
    assert any_store.store_id in by_name["store id"].message
    assert f"revision {HEAD}" in by_name["schema"].message
    assert by_name["keyring"].status == OK
    assert by_name["keyring"].message == any_store.secrets.backend_name
    assert by_name["keyring"].message.startswith(
        ("SecretService", "tests.keyring_backends.MemoryKeyring"))
    assert f"tui-oauth/{any_store.store_id}" in by_name["store id"].message
    assert by_name["rows without secret"].status == OK
    assert "3 secret(s)" in by_name["rows without secret"].message
    assert by_name["secrets without row"].status == OK
    assert report.rows_without_secret == [] and report.secrets_without_row == []
    assert sorted(any_store.secrets.list_names() or []) == sorted(
        [consumer_secret_item(c), provider_secret_item(p),
         private_key_item(services(any_store).consumer_info.get())])


def test_doctor_sqlite_file_mode(sqlite_url: str, memory_keyring: MemoryKeyring) -> None:
    with open_store(sqlite_url, secrets_backend=memory_keyring) as store:
        populate(store)
        path = Path(make_url(sqlite_url).database or "")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        report = services(store).doctor.run()
        mode_checks = [c for c in report.checks if c.name.startswith("database file")]
        assert mode_checks and all(c.status == OK for c in mode_checks)
        assert "0o600" in checks(report)["database file"].message
        path.chmod(0o644)
        warned = checks(services(store).doctor.run())["database file"]
        assert warned.status == WARN and warned.fix == f"chmod 600 {path}"


def test_doctor_row_without_secret(any_store: Store) -> None:
    c, _ = populate(any_store)
    any_store.secrets.delete(consumer_secret_item(c))  # behind the store's back
    report = services(any_store).doctor.run()
    assert not report.ok
    assert report.rows_without_secret == ["consumer 'hmac:1' shared secret"]
    check = checks(report)["rows without secret"]
    assert check.status == FAIL and "hmac:1" in check.message and check.fix

    any_store.secrets.delete(private_key_item(services(any_store).consumer_info.get()))
    report = services(any_store).doctor.run()
    assert report.rows_without_secret == ["Consumer Info private key",
                                          "consumer 'hmac:1' shared secret"]
    services(any_store).consumer_info.rotate_key()
    services(any_store).consumers.edit("hmac:1", shared_secret=C_SECRET2)
    assert services(any_store).doctor.run().ok


def test_doctor_secret_without_row(any_store: Store) -> None:
    c, p = populate(any_store)
    orphan = "consumer/00000000-dead-beef-0000-000000000000/shared-secret"
    any_store.secrets.set(orphan, "left behind")
    report = services(any_store).doctor.run()
    assert report.secrets_without_row == [orphan]
    check = checks(report)["secrets without row"]
    assert check.status == WARN and orphan in check.message
    assert report.ok  # a warning, not a failure

    assert services(any_store).doctor.remove_orphan_secrets() == [orphan]
    assert any_store.secrets.get(orphan) is None
    assert any_store.secrets.get(consumer_secret_item(c)) == C_SECRET
    assert any_store.secrets.get(provider_secret_item(p)) == P_SECRET
    entry = services(any_store).audit.list(limit=1).entries[0]
    assert entry.action == "doctor.remove_orphans" and orphan in (entry.detail or "")
    report = services(any_store).doctor.run()
    assert report.secrets_without_row == [] and report.ok
    assert services(any_store).doctor.remove_orphan_secrets() == []


def test_doctor_keyring_failure(db_url: str) -> None:
    with open_store(db_url, secrets_backend=FailingKeyring(fail_on={"get"})) as store:
        report = services(store).doctor.run()
    assert not report.ok
    assert checks(report)["keyring"].status == FAIL


def test_doctor_reports_a_failing_listing(db_url: str) -> None:
    """Doctor diagnoses a broken keyring: it reports the failure instead of raising it."""
    keyring = FailingKeyring(MemoryKeyring(), fail_on=())
    with open_store(db_url, secrets_backend=keyring) as store:
        populate(store)
        keyring.fail_on = frozenset({"names"})
        report = services(store).doctor.run()
    assert not report.ok
    check = checks(report)["secrets without row"]
    assert check.status == FAIL and "simulated failure listing" in check.message
    assert checks(report)["rows without secret"].status == OK


def test_doctor_backend_that_cannot_list(db_url: str) -> None:
    class NoNames(MemoryKeyring):
        names = None  # type: ignore[assignment]

    with open_store(db_url, secrets_backend=NoNames()) as store:
        populate(store)
        report = services(store).doctor.run()
    assert report.ok
    assert "cannot list" in checks(report)["secrets without row"].message


def test_a_bounded_audit_search_goes_on_where_it_stopped(store: Store) -> None:
    """A filter searches at most ``scan`` entries a page (issue 9: a filter matching
    nothing read a million entries for one page); following next_before_id page after
    page finds exactly what one unbounded search finds, in the same order."""
    with Session(store.engine) as s:
        for i in range(40):
            s.add(AuditEntry(actor="admin", action="consumer.add", target_type="consumer",
                             target=f"app-{i}", detail="needle" if i % 9 == 0 else "hay"))
        s.commit()
    everything = [e.id for e in services(store).audit.list(limit=1000, text="needle").entries]
    assert len(everything) == 5
    found: list[int | None] = []
    before, pages, partial = None, 0, 0
    while True:
        page = services(store).audit.list(limit=2, before_id=before, text="needle", scan=7)
        pages += 1
        found += [e.id for e in page.entries]
        partial += page.searched_to_id is not None
        if page.next_before_id is None:
            break
        before = page.next_before_id
    assert found == everything
    assert partial >= 4 and pages < 20
    nothing = services(store).audit.list(text="absent", scan=7)
    assert nothing.entries == [] and nothing.searched_to_id is not None
    assert services(store).audit.list(text="absent").next_before_id is None  # unbounded: the end
