"""`tui-oauth export`, `import` and `keyring export-data-key|import-data-key`, run as
the program, with secrets in the real Secret Service; the target store is SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_support import Cli, delete_store_secrets, provider_args, rsa_public_key
from tests.conftest import secret_service_backend
from tui_oauth.core.consumer_info_doc import render_consumer_info

PASS = "a passphrase long enough"
CONSUMER_SECRET = "cli-consumer-secret-7e1d"
PROVIDER_SECRET = "cli-provider-secret-44ab"


@pytest.fixture
def passfile(tmp_path: Path) -> Path:
    path = tmp_path / "pass.txt"
    path.write_text(PASS + "\n")
    return path


@pytest.fixture
def filled(cli: Cli, tmp_path: Path) -> Cli:
    """The source store: an RSA and an HMAC consumer, a provider, Consumer Info, a setting."""
    pem = tmp_path / "jira.pem"
    pem.write_text(rsa_public_key()[0])
    cli("consumers", "add", "--key", "jira:1", "--name", "JIRA", "--public-key-file", str(pem))
    cli("consumers", "add", "--key", "partner", "--name", "Partner", "--signature-method",
        "HMAC-SHA1", "--secret-stdin", input=CONSUMER_SECRET + "\n")
    cli("providers", "add", *provider_args("Example"), "--secret-stdin",
        input=PROVIDER_SECRET + "\n")
    cli("info", "show")
    cli("settings", "set", "timestamp_window", "120")
    return cli


@pytest.fixture
def target(db_url: str, keyring_backend: Any) -> Iterator[Cli]:
    runner = Cli(db_url)
    yield runner
    delete_store_secrets(db_url, keyring_backend)


def private_key_lines(cli: Cli) -> list[str]:
    backend: Any = secret_service_backend()
    uid = cli.query("SELECT key_uid FROM consumer_info")[0][0]
    pem = backend.get_password(cli.keyring_service(), f"consumer-info/{uid}/private-key")
    assert pem and "PRIVATE KEY" in pem
    return [line for line in pem.splitlines() if not line.startswith("-----")]


def test_export_without_secrets_says_so(filled: Cli) -> None:
    doc = filled("export").json()
    assert doc["format"] == "tui-oauth-config" and doc["version"] == 1
    assert doc["secrets"] == "excluded"
    assert [c["key"] for c in doc["consumers"]] == ["jira:1", "partner"]
    assert doc["consumers"][1]["has_shared_secret"] is True
    assert doc["settings"] == {"timestamp_window": 120}
    assert "store_id" not in json.dumps(doc)
    assert CONSUMER_SECRET not in filled.everything_printed()


def test_round_trip_through_the_program(filled: Cli, target: Cli, tmp_path: Path,
                                        passfile: Path) -> None:
    out = tmp_path / "config.json"
    r = filled("export", "--with-secrets", "--passphrase-file", str(passfile), "-o", str(out))
    assert "secrets encrypted" in r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text()
    for secret in (CONSUMER_SECRET, PROVIDER_SECRET, PASS, *private_key_lines(filled)):
        assert secret not in text, "a secret is in clear in the export"

    dry = target("import", "--dry-run", "--passphrase-file", str(passfile), str(out))
    assert "would add" in dry.stdout and "nothing was written" in dry.stdout
    assert target.query("SELECT count(*) FROM consumers") == [(0,)]
    assert target.query("SELECT count(*) FROM audit_log") == [(0,)]

    r = target("import", "--passphrase-file", str(passfile), str(out))
    assert "added        consumer 'partner'" in r.stdout.splitlines()
    assert "Imported in one transaction: 5 added" in r.stdout  # no data key made yet
    shown = target("consumers", "show", "partner", "--json").json()
    assert shown["signature_method"] == "HMAC-SHA1" and shown["has_shared_secret"]
    uid = target.uid("service_providers", "name", "Example")
    backend: Any = secret_service_backend()
    assert backend.get_password(target.keyring_service(),
                                f"provider/{uid}/shared-secret") == PROVIDER_SECRET
    assert target("info", "show", "--json").json()["key"] == \
        filled("info", "show", "--json").json()["key"]

    audit = target("audit", "list", "--json", "--filter", "config.import").stdout
    assert "5 added, 0 changed, 0 skipped, 0 unchanged" in audit
    for secret in (CONSUMER_SECRET, PROVIDER_SECRET, PASS):
        assert secret not in target.everything_printed()
        assert secret not in json.dumps(target.query("SELECT * FROM audit_log"), default=str)

    again = target("import", "--passphrase-file", str(passfile), str(out))
    assert "0 added, 0 changed, 0 skipped, 5 unchanged" in again.stdout


def test_differences_are_skipped_unless_replace(filled: Cli, target: Cli, tmp_path: Path,
                                                passfile: Path) -> None:
    out = tmp_path / "config.json"
    filled("export", "-o", str(out))
    pem = tmp_path / "other.pem"
    pem.write_text(rsa_public_key()[0])
    target("consumers", "add", "--key", "jira:1", "--name", "Other", "--public-key-file",
           str(pem))
    r = target("import", str(out))
    assert "skipped      consumer 'jira:1' (differs in name, public_key; --replace to " \
           "overwrite)" in r.stdout
    assert "skipped      consumer 'partner' (its shared secret is not in the file" in r.stdout
    assert target("consumers", "show", "jira:1", "--json").json()["name"] == "Other"
    r = target("import", "--replace", str(out))
    assert "changed      consumer 'jira:1' (name, public_key)" in r.stdout
    assert target("consumers", "show", "jira:1", "--json").json()["name"] == "JIRA"


def test_export_never_replaces_a_file_unless_force(filled: Cli, tmp_path: Path) -> None:
    """Finding 10: `export -o FILE` as `info export -o`: an existing FILE needs --force,
    and is refused before a passphrase is asked."""
    out = tmp_path / "config.json"
    out.write_text("keep me")
    for extra in ((), ("--with-secrets",)):
        r = filled("export", *extra, "-o", str(out), rc=1)
        assert r.stderr == f"error: --output: {out} exists; add --force to overwrite it.\n"
        assert out.read_text() == "keep me"
    filled("export", "-o", str(out), "--force")
    assert json.loads(out.read_text())["format"] == "tui-oauth-config"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_wrong_passphrase_writes_nothing(filled: Cli, target: Cli, tmp_path: Path,
                                           passfile: Path) -> None:
    out = tmp_path / "config.json"
    filled("export", "--with-secrets", "--passphrase-file", str(passfile), "-o", str(out))
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the passphrase\n")
    r = target("import", "--passphrase-file", str(wrong), str(out), rc=1)
    assert "passphrase does not open" in r.stderr and "nothing was changed" in r.stderr
    assert target.query("SELECT count(*) FROM consumers") == [(0,)]
    assert target.query("SELECT count(*) FROM audit_log") == [(0,)]
    # No terminal and no file: said, not asked.
    r = target("import", str(out), rc=1)
    assert "--passphrase-file" in r.stderr


def test_hostile_file_is_refused_with_its_place(target: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "tui-oauth-config", "version": 1, "consumers": [
        {"key": "ok", "name": "OK", "signature_method": "RSA-SHA1",
         "public_key": rsa_public_key()[1]},
        {"key": "k2", "name": "bad\u202ename", "public_key": rsa_public_key()[1]},
    ], "secrets": "excluded"}))
    r = target("import", str(bad), rc=1)
    assert f"error: {bad}: consumers[1].name: Name contains control characters" in r.stderr
    assert "\u202e" not in r.stderr
    bad.write_text(json.dumps({"format": "tui-oauth-config", "version": 7}))
    r = target("import", str(bad), rc=1)
    assert f"{bad}: version: is 7; this tui-oauth reads version 1 only" in r.stderr
    assert target.query("SELECT count(*) FROM consumers") == [(0,)]


def test_consumer_info_xml_documents_import_as_consumers(target: Cli, tmp_path: Path) -> None:
    files = []
    for key in ("jira:a", "confluence:b"):
        path = tmp_path / f"{key.split(':')[0]}.xml"
        path.write_bytes(render_consumer_info(key, key.upper(), "from XML", None,
                                              rsa_public_key()[1]))
        files.append(str(path))
    r = target("import", *files)
    assert "2 added" in r.stdout
    keys = sorted(c["key"] for c in target("consumers", "list", "--json").json())
    assert keys == ["confluence:b", "jira:a"]
    broken = tmp_path / "broken.xml"
    broken.write_text("<consumer><key>x</key></consumer>")
    r = target("import", files[0], str(broken), rc=1)
    assert f"{broken}: name:" in r.stderr


def test_passphrase_file_goes_with_secrets(cli: Cli, passfile: Path) -> None:
    r = cli("export", "--passphrase-file", str(passfile), rc=2)
    assert "--with-secrets" in r.stderr


def test_data_key_export_and_import(cli: Cli, tmp_path: Path, passfile: Path,
                                    keyring_backend: Any) -> None:
    from tui_oauth.core.models import KeyringItem
    from tui_oauth.core.provider.crypto import DataKey, load_data_key
    from tui_oauth.core.sealed import seal
    from tui_oauth.core.store import open_store
    from tui_oauth.core.transfer import DATA_KEY_PURPOSE

    r = cli("keyring", "export-data-key", "--passphrase-file", str(passfile), rc=1)
    assert "no data key yet" in r.stderr
    store = open_store(cli.db_url, secrets_backend=keyring_backend)
    try:
        key = load_data_key(store).to_text()
        out = tmp_path / "key.json"
        cli("keyring", "export-data-key", "--passphrase-file", str(passfile), "-o", str(out))
        assert key not in out.read_text() and stat.S_IMODE(out.stat().st_mode) == 0o600
        written = out.read_text()
        r = cli("keyring", "export-data-key", "--passphrase-file", str(passfile), "-o",
                str(out), rc=1)
        assert r.stderr == f"error: --output: {out} exists; add --force to overwrite it.\n"
        assert out.read_text() == written
        cli("keyring", "export-data-key", "--passphrase-file", str(passfile), "-o", str(out),
            "--force")
        assert out.read_text() != written  # sealed again (a new salt)
        # A second host: the same store, an empty keyring.
        keyring_backend.delete_password(cli.keyring_service(), KeyringItem.DATA_KEY)
        r = cli("keyring", "import-data-key", "--passphrase-file", str(passfile), str(out))
        assert "Imported the data key" in r.stderr
        assert keyring_backend.get_password(cli.keyring_service(), KeyringItem.DATA_KEY) == key
        cli("keyring", "import-data-key", "--passphrase-file", str(passfile), str(out))

        other = tmp_path / "other.json"
        other.write_text(json.dumps({  # another store's key, as export-data-key writes it
            "format": "tui-oauth-data-key", "version": 1,
            "data_key": seal(DataKey.generate().to_text().encode(), PASS,
                             purpose=DATA_KEY_PURPOSE)}))
        r = cli("keyring", "import-data-key", "--passphrase-file", str(passfile), str(other),
                rc=1)
        assert "different data key" in r.stderr and "--replace" in r.stderr
        assert keyring_backend.get_password(cli.keyring_service(), KeyringItem.DATA_KEY) == key
        r = cli("keyring", "import-data-key", "--replace", "--passphrase-file", str(passfile),
                str(other), rc=1)
        assert "Refusing without --yes" in r.stderr
        r = cli("keyring", "import-data-key", "--replace", "--yes", "--passphrase-file",
                str(passfile), str(other))
        assert "unreadable" in r.stderr
        assert keyring_backend.get_password(cli.keyring_service(), KeyringItem.DATA_KEY) != key
    finally:
        store.close()
    assert key not in cli.everything_printed()
