"""`tui-oauth info ...` and `tui-oauth providers ...` end to end (real program, real keyring)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import pytest

from tests.cli_support import Cli, add_held_tokens, provider_args

pytestmark = pytest.mark.secret_service

INFO_FIELDS = {"key", "name", "description", "callback_url", "public_key", "key_created_at",
               "created_at", "updated_at"}
PROVIDER_FIELDS = {"name", "description", "consumer_key", "signature_method",
                   "has_shared_secret", "request_token_url", "authorization_url",
                   "access_token_url", "allow_private", "held_tokens", "warnings", "created_at",
                   "updated_at"}
PROVIDER_SUMMARY_FIELDS = {"name", "consumer_key", "signature_method", "has_shared_secret",
                           "request_token_url", "token_count", "created_at"}
SECRET = "prov1der-Distinctive-secret-7Hq2"


def _db_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(tmp_path.glob("s.db*")))


# ---------------------------------------------------------------- info


def test_info_show_and_private_key_only_in_keyring(cli: Cli, keyring_backend: Any,
                                                   tmp_path: Path) -> None:
    shown = cli("info", "show", "--json").json()
    assert set(shown) == INFO_FIELDS
    assert shown["key"].startswith("tui-oauth:")
    pk = shown["public_key"]
    assert set(pk) == {"base64", "pem", "bits", "fingerprint"}
    assert pk["bits"] >= 2048 and pk["pem"].startswith("-----BEGIN PUBLIC KEY-----")
    text = cli("info", "show").stdout
    assert shown["key"] in text and pk["fingerprint"] in text and pk["base64"] in text
    assert cli("info", "show", "--json").json() == shown  # created once, then the same

    key_uid = cli.query("SELECT key_uid FROM consumer_info")[0][0]
    private = keyring_backend.get_password(cli.keyring_service(),
                                           f"consumer-info/{key_uid}/private-key")
    assert private is not None and "PRIVATE KEY-----" in private
    body = "".join(private.splitlines()[1:-1])
    assert body[:64].encode() not in _db_bytes(tmp_path)
    assert "PRIVATE KEY" not in cli.everything_printed()


def test_info_edit(cli: Cli) -> None:
    assert cli("info", "edit", "--name", "Our app", "--description", "Us",
               "--callback", "https://us.example.com/cb").stdout == "Updated the Consumer Info.\n"
    shown = cli("info", "show", "--json").json()
    assert (shown["name"], shown["description"], shown["callback_url"]) == (
        "Our app", "Us", "https://us.example.com/cb")
    r = cli("info", "edit", "--callback", "javascript:alert(1)", rc=1)
    assert r.stderr.startswith("error: --callback: ")
    r = cli("info", "edit", "--name", "", rc=1)
    assert r.stderr.startswith("error: --name: ")
    cli("info", "edit", "--callback", "")
    assert cli("info", "show", "--json").json()["callback_url"] is None


def test_info_export_formats(cli: Cli, tmp_path: Path) -> None:
    shown = cli("info", "show", "--json").json()
    xml = cli("info", "export").stdout
    assert xml == cli("info", "export", "--format", "xml").stdout
    root = SafeET.fromstring(xml.encode())
    assert root.tag == "consumer"
    assert root.findtext("key") == shown["key"] and root.findtext("name") == shown["name"]
    assert root.findtext("publicKey") == shown["public_key"]["base64"]
    assert cli("info", "export", "--format", "pem").stdout == shown["public_key"]["pem"]
    assert cli("info", "export", "--format", "base64").stdout == \
        shown["public_key"]["base64"] + "\n"

    out = tmp_path / "consumer-info.xml"
    r = cli("info", "export", "-o", str(out))
    assert r.stdout == "" and r.stderr == f"Wrote xml to {out}.\n"
    assert out.read_text() == xml
    r = cli("info", "export", "--format", "pem", "--output", str(out), rc=1)
    assert r.stderr == f"error: --output: {out} exists; add --force to overwrite it.\n"
    assert out.read_text() == xml
    cli("info", "export", "--format", "pem", "--output", str(out), "--force")
    assert out.read_text() == shown["public_key"]["pem"]
    r = cli("info", "export", "-o", str(tmp_path / "no-such-dir" / "x.xml"), rc=1)
    assert r.stderr.startswith("error: --output: cannot write ")


def test_info_rotate_key(cli: Cli, keyring_backend: Any) -> None:
    before = cli("info", "show", "--json").json()["public_key"]
    old_uid = cli.query("SELECT key_uid FROM consumer_info")[0][0]
    r = cli("info", "rotate-key", rc=1)  # no terminal, no --yes
    assert "refusing without --yes" in r.stderr.lower()
    assert cli("info", "show", "--json").json()["public_key"] == before

    r = cli("info", "rotate-key", "--yes")
    after = cli("info", "show", "--json").json()["public_key"]
    assert after["fingerprint"] != before["fingerprint"]
    assert f"New key: RSA 2048 bits, {after['fingerprint']} (was {before['fingerprint']})" \
        in r.stdout
    new_uid = cli.query("SELECT key_uid FROM consumer_info")[0][0]
    service = cli.keyring_service()
    assert keyring_backend.get_password(service, f"consumer-info/{old_uid}/private-key") is None
    assert keyring_backend.get_password(service, f"consumer-info/{new_uid}/private-key")
    entry = cli("audit", "--json", "--action", "consumer_info.rotate_key").json()["entries"][0]
    assert before["fingerprint"] in entry["detail"] and after["fingerprint"] in entry["detail"]


# ---------------------------------------------------------------- providers


def test_provider_add_list_show(cli: Cli, keyring_backend: Any, tmp_path: Path) -> None:
    r = cli("providers", "add", *provider_args("Twitter"), "--description", "tweets",
            "--secret-stdin", input=SECRET + "\n")
    assert r.stdout == "Added service provider 'Twitter'.\n" and r.stderr == ""
    listed = cli("providers", "list", "--json").json()
    assert [set(p) for p in listed] == [PROVIDER_SUMMARY_FIELDS]
    assert listed[0]["name"] == "Twitter" and listed[0]["has_shared_secret"] is True
    shown = cli("providers", "show", "Twitter", "--json").json()
    assert set(shown) == PROVIDER_FIELDS
    assert (shown["consumer_key"], shown["signature_method"], shown["held_tokens"],
            shown["warnings"]) == ("ck-Twitter", "HMAC-SHA1", 0, [])
    text = cli("providers", "show", "Twitter").stdout
    assert "set (in the keyring)" in text and "https://sp.example.com/oauth/authorize" in text
    assert cli("providers", "list").stdout.splitlines()[1].startswith("Twitter  ck-Twitter")

    uid = cli.uid("service_providers", "name", "Twitter")
    item = f"provider/{uid}/shared-secret"
    assert keyring_backend.get_password(cli.keyring_service(), item) == SECRET
    cli("audit", "--json")
    assert SECRET.encode() not in _db_bytes(tmp_path)
    assert SECRET not in cli.everything_printed()


def test_provider_http_warns_and_plaintext_needs_https(cli: Cli) -> None:
    r = cli("providers", "add", *provider_args("plain", scheme="http"), "--json",
            "--secret-stdin", input="s\n")
    added = r.json()  # the warning goes to stderr, stdout stays JSON
    assert added["warnings"] and "http, not https" in added["warnings"][0]
    assert r.stderr.startswith("warning: Request token URL, Authorization URL, Access token URL "
                               "use http, not https")
    assert "warning: " in cli("providers", "show", "plain").stderr

    r = cli("providers", "add", *provider_args("pt", scheme="http", method="PLAINTEXT"),
            "--secret-stdin", input="s\n", rc=1)
    assert r.stderr.startswith("error: --signature-method: PLAINTEXT sends the secret as is")
    r = cli("providers", "edit", "plain", "--signature-method", "PLAINTEXT", rc=1)
    assert r.stderr.startswith("error: --signature-method: ")
    cli("providers", "add", *provider_args("pts", method="PLAINTEXT"), "--secret-stdin",
        input="s\n")
    assert [p["name"] for p in cli("providers", "list", "--json").json()] == ["plain", "pts"]


def test_provider_validation_and_unknown(cli: Cli) -> None:
    r = cli("providers", "add", *provider_args("p"), rc=1)  # HMAC-SHA1 without the secret
    assert r.stderr.startswith("error: --secret-stdin/--secret-file: HMAC-SHA1 needs")
    r = cli("providers", "add", *provider_args("p", scheme="ftp"), "--secret-stdin",
            input="s\n", rc=1)
    assert {line.split(":")[1].strip() for line in r.stderr.splitlines()} == {
        "--request-token-url", "--authorization-url", "--access-token-url"}
    cli("providers", "add", *provider_args("p"), "--secret-stdin", input="s\n")
    r = cli("providers", "add", *provider_args("p"), "--secret-stdin", input="s\n", rc=1)
    assert r.stderr.startswith("error: --name: A service provider named 'p' already exists")
    # Another case of the same name: the one stored is named (finding 15).
    r = cli("providers", "add", *provider_args("P"), "--secret-stdin", input="s\n", rc=1)
    assert r.stderr == ("error: --name: A service provider named 'p' already exists, and names "
                        "are unique without regard to case ('P' is the same name); choose "
                        "another name, or edit that provider.\n")
    for args in (["show", "nope"], ["edit", "nope", "--description", "x"],
                 ["remove", "nope", "--yes"]):
        r = cli("providers", *args, rc=1)
        assert r.stderr.startswith("error: No service provider named 'nope'."), r.stderr


def test_provider_edit_rename_and_secret(cli: Cli, keyring_backend: Any, tmp_path: Path) -> None:
    cli("providers", "add", *provider_args("old"), "--secret-stdin", input=SECRET + "\n")
    uid = cli.uid("service_providers", "name", "old")
    item = f"provider/{uid}/shared-secret"
    edited = cli("providers", "edit", "old", "--new-name", "new", "--consumer-key", "ck2",
                 "--json").json()
    assert (edited["name"], edited["consumer_key"]) == ("new", "ck2")
    cli("providers", "show", "old", rc=1)
    assert cli.uid("service_providers", "name", "new") == uid
    assert keyring_backend.get_password(cli.keyring_service(), item) == SECRET

    secret_file = tmp_path / "s"
    secret_file.write_text("replaced-secret-3b9\n")
    cli("providers", "edit", "new", "--secret-file", str(secret_file))
    assert keyring_backend.get_password(cli.keyring_service(), item) == "replaced-secret-3b9"
    r = cli("providers", "edit", "new", "--remove-secret", rc=1)  # HMAC-SHA1 needs it
    assert r.stderr.startswith("error: --secret-stdin/--secret-file: ")
    # RSA-SHA1 signs with our Consumer Info key: no secret needed.
    after = cli("providers", "edit", "new", "--remove-secret", "--signature-method", "RSA-SHA1",
                "--json").json()
    assert after["signature_method"] == "RSA-SHA1" and after["has_shared_secret"] is False
    assert keyring_backend.get_password(cli.keyring_service(), item) is None
    r = cli("providers", "edit", "new", rc=2)
    assert "Nothing to change" in r.stderr
    actions = [e["action"] for e in cli("audit", "--json", "--target", "new").json()["entries"]]
    assert actions == ["provider.edit"] * 3


def test_provider_remove_asks_and_counts_held_tokens(cli: Cli, keyring_backend: Any) -> None:
    assert cli.db_url is not None
    cli("providers", "add", *provider_args("sp"), "--secret-stdin", input=SECRET + "\n")
    item = f"provider/{cli.uid('service_providers', 'name', 'sp')}/shared-secret"
    add_held_tokens(cli.db_url, "sp", 2)
    assert cli("providers", "show", "sp", "--json").json()["held_tokens"] == 2
    r = cli("providers", "remove", "sp", rc=1)
    assert r.stderr.startswith("error: Remove service provider 'sp' and the 2 token(s)")
    assert len(cli("providers", "list", "--json").json()) == 1
    assert keyring_backend.get_password(cli.keyring_service(), item) == SECRET

    r = cli("providers", "remove", "sp", "-y")
    assert r.stdout == "Removed service provider 'sp' and 2 token(s).\n"
    assert cli("providers", "list", "--json").json() == []
    assert cli.query("SELECT count(*) FROM held_tokens") == [(0,)]
    assert keyring_backend.get_password(cli.keyring_service(), item) is None
    assert "No service providers." in cli("providers", "list").stdout
