"""`tui-oauth audit`, `doctor`, `db upgrade`, `--read-only`, and PostgreSQL, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli_support import Cli, delete_store_secrets, provider_args
from tui_oauth.core.migrations import HEAD
from tui_oauth.core.registry import services
from tui_oauth.core.store import open_store

pytestmark = pytest.mark.secret_service

SECRET = "audit-Distinctive-s3cret-41xq"
ENTRY_FIELDS = {"id", "at", "actor", "client_addr", "action", "target_type", "target",
                "before", "after", "detail"}


def _populate(cli: Cli, pem: Path) -> None:
    """Five audited changes, made by the program."""
    cli("consumers", "add", "--key", "hmac:1", "--name", "H", "--secret-stdin",
        input=SECRET + "\n")
    cli("consumers", "add", "--key", "rsa:1", "--name", "R", "--public-key-file", str(pem))
    cli("consumers", "edit", "rsa:1", "--name", "R2")
    cli("providers", "add", *provider_args("sp"), "--secret-stdin", input=SECRET + "\n")
    cli("consumers", "remove", "rsa:1", "--yes")


@pytest.fixture
def populated(cli: Cli, keyring_backend: Any, public_key: tuple[str, str]) -> Cli:
    """The same five changes made in-process (faster), for the tests that only read them."""
    assert cli.db_url is not None
    cli("db", "upgrade")
    with open_store(cli.db_url, secrets_backend=keyring_backend) as store:
        services(store).consumers.add(key="hmac:1", name="H", shared_secret=SECRET)
        services(store).consumers.add(key="rsa:1", name="R", public_key=public_key[0])
        services(store).consumers.edit("rsa:1", name="R2")
        services(store).providers.add(name="sp", consumer_key="ck-sp", shared_secret=SECRET,
                                      request_token_url="https://sp.example.com/r",
                                      authorization_url="https://sp.example.com/a",
                                      access_token_url="https://sp.example.com/t")
        services(store).consumers.remove("rsa:1")
    return cli


# ---------------------------------------------------------------- audit


def test_audit_shows_the_changes(cli: Cli, pem_file: Path) -> None:
    _populate(cli, pem_file)
    page = cli("audit", "--json").json()
    assert set(page) == {"entries", "next_before"} and page["next_before"] is None
    entries = page["entries"]
    assert all(set(e) == ENTRY_FIELDS for e in entries)
    assert [(e["action"], e["target"]) for e in entries] == [
        ("consumer.remove", "rsa:1"), ("provider.add", "sp"), ("consumer.edit", "rsa:1"),
        ("consumer.add", "rsa:1"), ("consumer.add", "hmac:1")]
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids, reverse=True)
    edit = entries[2]
    assert (edit["before"]["name"], edit["after"]["name"]) == ("R", "R2")
    assert entries[0]["detail"] == "0 token(s) removed with it" and entries[0]["after"] is None
    assert entries[4]["after"]["has_shared_secret"] is True
    assert SECRET not in cli("audit", "--json").stdout

    text = cli("audit").stdout.splitlines()
    assert text[0].split() == ["ID", "AT", "(UTC)", "WHO", "ACTION", "TARGET", "DETAIL"]
    assert "consumer.remove" in text[1] and "rsa:1" in text[1]


def test_audit_filters(populated: Cli) -> None:
    cli = populated

    def actions(*args: str) -> list[str]:
        return [e["action"] for e in cli("audit", "--json", *args).json()["entries"]]

    assert actions("--filter", "HMAC") == ["consumer.add"]
    assert actions("--filter", "removed with") == ["consumer.remove"]
    assert actions("--action", "provider.") == ["provider.add"]
    assert actions("--target", "rsa:1") == ["consumer.remove", "consumer.edit", "consumer.add"]
    actor = cli("audit", "--json").json()["entries"][0]["actor"]
    assert len(actions("--actor", actor)) == 5
    assert actions("--actor", "nobody-at-all") == []
    assert actions("--since", "2999-01-01") == []
    assert len(actions("--since", "2000-01-01T00:00:00")) == 5
    assert cli("audit", "--filter", "zzz").stdout == "No audit entries match.\n"
    r = cli("audit", "--since", "yesterday", rc=2)
    assert "--since" in r.stderr


def test_audit_paging(populated: Cli) -> None:
    cli = populated
    everything = [e["id"] for e in cli("audit", "--json").json()["entries"]]
    seen: list[int] = []
    before: int | None = None
    while True:
        args = ["audit", "--json", "--limit", "2"]
        if before is not None:
            args += ["--before", str(before)]
        page = cli(*args).json()
        assert 1 <= len(page["entries"]) <= 2
        seen += [e["id"] for e in page["entries"]]
        before = page["next_before"]
        if before is None:
            break
        assert before == seen[-1]
    assert seen == everything
    r = cli("audit", "--limit", "2")
    assert r.stderr == f"(older entries: --before {everything[1]})\n"
    assert len(r.stdout.splitlines()) == 3


# ---------------------------------------------------------------- doctor


def _statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


def test_doctor_on_a_healthy_store(populated: Cli) -> None:
    cli = populated
    cli("info", "show")
    report = cli("doctor", "--json").json()
    assert set(report) == {"ok", "checks", "rows_without_secret", "secrets_without_row"}
    assert report["ok"] is True
    assert all(set(c) == {"name", "status", "message", "fix"} for c in report["checks"])
    statuses = _statuses(report)
    assert statuses["keyring"] == "ok"
    assert statuses["rows without secret"] == "ok" and statuses["secrets without row"] == "ok"
    assert "fail" not in statuses.values()
    assert report["rows_without_secret"] == [] and report["secrets_without_row"] == []
    keyring_check = next(c for c in report["checks"] if c["name"] == "keyring")
    assert "SecretService" in keyring_check["message"]
    assert "all 3 secret(s) present" in cli("doctor").stdout


def test_doctor_finds_missing_and_orphaned_secrets(cli: Cli, keyring_backend: Any) -> None:
    cli("consumers", "add", "--key", "h", "--name", "H", "--secret-stdin", input=SECRET + "\n")
    service = cli.keyring_service()
    keyring_backend.set_password(service, "consumer/no-such-row/shared-secret", "orphan")
    report = cli("doctor", "--json").json()
    assert _statuses(report)["secrets without row"] == "warn"
    assert report["secrets_without_row"] == ["consumer/no-such-row/shared-secret"]
    r = cli("doctor", "--fix", rc=1)  # no terminal, no --yes
    assert "refusing without --yes" in r.stderr.lower()
    r = cli("doctor", "--fix", "--yes")
    assert "Deleted 1 orphaned keyring item(s)." in r.stdout
    assert keyring_backend.get_password(service, "consumer/no-such-row/shared-secret") is None
    assert keyring_backend.get_password(
        service, f"consumer/{cli.uid('consumers', 'key', 'h')}/shared-secret") == SECRET

    # A row whose secret went missing is a failure: exit 1, still JSON on stdout.
    keyring_backend.delete_password(
        service, f"consumer/{cli.uid('consumers', 'key', 'h')}/shared-secret")
    r = cli("doctor", "--json", rc=1)
    assert r.json()["rows_without_secret"] == ["consumer 'h' shared secret"]
    assert "[FAIL] rows without secret: 1: consumer 'h' shared secret" in \
        cli("doctor", rc=1).stdout


# ---------------------------------------------------------------- db upgrade, --read-only


def test_db_init_then_upgrade_then_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "new.db"
    path.parent.mkdir()
    run = Cli(str(path), init=False)  # a plain path is a SQLite file
    r = run("db", "upgrade", rc=1)
    assert "There is no store at" in r.stderr and "tui-oauth db init" in r.stderr
    assert not path.exists()
    r = run("db", "init")
    assert r.stdout.startswith(f"Created a new, empty store at sqlite:///{path} (id ")
    assert "is already a tui-oauth store" in run("db", "init").stdout
    assert run("db", "upgrade").stdout == f"sqlite:///{path} is up to date (revision {HEAD}).\n"
    r = run("--read-only", "db", "upgrade", rc=1)
    assert r.stderr == "error: db upgrade changes the schema; drop --read-only.\n"
    assert run("--read-only", "consumers", "list", "--json").json() == []


def test_a_store_is_made_only_on_purpose(tmp_path: Path) -> None:
    """A mistyped --db (or a store removed meanwhile) is an error, not a new empty store."""
    run = Cli(f"sqlite:///{tmp_path / 'typo.db'}", init=False)
    for args in (["consumers", "list"], ["--read-only", "consumers", "list"],
                 ["tokens", "revoke", "--yes", "--consumer", "k"]):
        r = run(*args, rc=1)
        assert r.stderr.startswith("error: There is no tui-oauth store at "), r.stderr
        assert "tui-oauth db init" in r.stderr
    assert not (tmp_path / "typo.db").exists()
    # An empty PostgreSQL database or an empty file is no store either.
    (tmp_path / "empty.db").touch()
    r = Cli(f"sqlite:///{tmp_path / 'empty.db'}", init=False)("consumers", "list", rc=1)
    assert "has no tui-oauth tables" in r.stderr


def test_read_only_on_a_store_never_upgraded(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    Cli(str(path))  # made from the template
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = '0000'")
    conn.close()
    r = Cli(f"sqlite:///{path}")("--read-only", "consumers", "list", rc=1)
    assert r.stderr.startswith("error: The database schema is at 0000")
    assert "tui-oauth db upgrade" in r.stderr


def test_read_only_refuses_every_change(populated: Cli) -> None:
    cli = populated
    cli("info", "show")
    count = cli.query("SELECT count(*) FROM audit_log")
    refusal = "error: This store is open read-only. Start without --read-only to change it.\n"
    for args, stdin in [
        (["consumers", "add", "--key", "n", "--name", "N", "--secret-stdin"], "s\n"),
        (["consumers", "edit", "hmac:1", "--name", "X"], None),
        (["consumers", "remove", "hmac:1", "--yes"], None),
        (["consumers", "remove", "hmac:1"], None),  # refused before asking for --yes
        (["providers", "add", *provider_args("p2"), "--secret-stdin"], "s\n"),
        (["providers", "edit", "sp", "--new-name", "sp2"], None),
        (["providers", "remove", "sp", "--yes"], None),
        (["info", "edit", "--name", "X"], None),
        (["info", "rotate-key", "--yes"], None),
        (["info", "rotate-key"], None),
    ]:
        r = cli("--read-only", *args, input=stdin, rc=1)
        assert r.stderr == refusal, (args, r.stderr)
    assert cli.query("SELECT count(*) FROM audit_log") == count
    # Reading still works, also through TUI_OAUTH_DB.
    assert cli.db_url is not None
    env_run = Cli(None)
    r = env_run("--read-only", "consumers", "list", "--json", env={"TUI_OAUTH_DB": cli.db_url})
    assert [c["key"] for c in r.json()] == ["hmac:1"]
    cli("--read-only", "providers", "show", "sp", "--json")
    cli("--read-only", "info", "export", "--format", "pem")
    cli("--read-only", "doctor")


# ---------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_on_postgresql(db_url: str, keyring_backend: Any) -> None:
    run = Cli(None)
    env = {"TUI_OAUTH_DB": db_url}  # the password stays out of the command line
    try:
        run("consumers", "add", "--key", "pg:1", "--name", "PG", "--secret-stdin",
            input=SECRET + "\n", env=env)
        assert run("consumers", "show", "pg:1", "--json", env=env).json()["has_shared_secret"]
        run("providers", "add", *provider_args("sp"), "--secret-stdin", input="s\n", env=env)
        assert _statuses(run("doctor", "--json", env=env).json())["keyring"] == "ok"
        r = run("consumers", "remove", "pg:1", "--yes", env=env)
        assert r.stdout == "Removed consumer 'pg:1' and 0 token(s).\n"
        assert [e["action"] for e in run("audit", "--json", env=env).json()["entries"]] == [
            "consumer.remove", "provider.add", "consumer.add"]
        assert "is up to date" in run("db", "upgrade", env=env).stdout
        assert SECRET not in run.everything_printed()
        assert db_url.split("@")[0] not in run.everything_printed()  # no password shown
    finally:
        delete_store_secrets(db_url, keyring_backend)
