"""`tui-oauth consumers ...` end to end: the real program, the real Secret Service.

Each test runs the program (in-process through click's runner: tests/cli/test_cli.py
runs it as its own process, as a shell does) against a new SQLite store; secrets
go to the gnome-keyring of the D-Bus session ``make test`` starts.  By hand
without that session these skip (under make test they fail).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli_support import Cli, add_tokens

pytestmark = pytest.mark.secret_service

CONSUMER_FIELDS = {
    "key", "name", "description", "signature_method", "public_key", "has_shared_secret",
    "previous_secret_until",
    "allow_plaintext", "callback_url", "three_lo_allowed", "two_lo_allowed",
    "two_lo_execute_as", "two_lo_impersonation", "request_tokens", "access_tokens",
    "created_at", "updated_at",
}
SUMMARY_FIELDS = {"key", "name", "signature_method", "two_lo_allowed", "token_count",
                  "created_at", "has_public_key", "has_shared_secret"}


def test_add_by_hand_with_a_pem_public_key(cli: Cli, pem_file: Path,
                                           public_key: tuple[str, str]) -> None:
    added = cli("consumers", "add", "--key", "jira:13549426", "--name", "JIRA",
                "--description", "Atlassian JIRA", "--public-key-file", str(pem_file),
                "--callback", "https://jira.example.com/cb", "--json").json()
    assert set(added) == CONSUMER_FIELDS
    assert added["key"] == "jira:13549426" and added["signature_method"] == "RSA-SHA1"
    assert added["public_key"]["bits"] == 2048
    assert added["public_key"]["base64"] == public_key[1]
    assert added["public_key"]["fingerprint"].startswith("SHA256:")
    assert added["has_shared_secret"] is False and added["three_lo_allowed"] is True
    assert added["two_lo_allowed"] is False

    listed = cli("consumers", "list", "--json").json()
    assert [set(row) for row in listed] == [SUMMARY_FIELDS]
    assert listed[0]["key"] == "jira:13549426" and listed[0]["has_public_key"] is True

    shown = cli("consumers", "show", "jira:13549426", "--json").json()
    # show adds the clock and the refusals (none yet) to what add printed
    assert shown.pop("clock") is None
    assert shown.pop("refusals") == {"total": 0, "by_problem": {}, "last_at": None}
    assert shown == added
    text = cli("consumers", "show", "jira:13549426").stdout
    assert "RSA 2048 bits, SHA256:" in text and "https://jira.example.com/cb" in text
    pem = cli("consumers", "show", "jira:13549426", "--public-key").stdout
    assert pem.split() == public_key[0].split()

    table = cli("consumers", "list").stdout.splitlines()
    assert table[0].split() == ["KEY", "NAME", "SIGNATURE", "2LO", "TOKENS", "CREATED"]
    assert table[1].startswith("jira:13549426  JIRA")


def test_add_public_key_from_stdin(cli: Cli, public_key: tuple[str, str]) -> None:
    # Atlassian's own form: bare base64 of the DER SubjectPublicKeyInfo.
    added = cli("consumers", "add", "--key", "k", "--name", "K", "--public-key-file", "-",
                "--json", input=public_key[1] + "\n").json()
    assert added["public_key"]["base64"] == public_key[1]


def test_edit_changes_only_what_is_given(cli: Cli, pem_file: Path) -> None:
    cli("consumers", "add", "--key", "k", "--name", "K", "--public-key-file", str(pem_file),
        "--description", "keep me")
    before = cli("consumers", "show", "k", "--json").json()
    after = cli("consumers", "edit", "k", "--name", "Renamed", "--2lo", "--execute-as", "bot",
                "--impersonation", "--no-3lo", "--json").json()
    assert after["name"] == "Renamed" and after["description"] == "keep me"
    assert (after["two_lo_allowed"], after["two_lo_execute_as"], after["two_lo_impersonation"],
            after["three_lo_allowed"]) == (True, "bot", True, False)
    assert after["public_key"] == before["public_key"]
    assert after["created_at"] == before["created_at"]
    assert after["updated_at"] > before["updated_at"]
    out = cli("consumers", "edit", "k", "--description", "").stdout
    assert out == "Updated consumer 'k' (Renamed).\n"
    assert cli("consumers", "show", "k", "--json").json()["description"] is None


def test_validation_errors_name_the_flag(cli: Cli, pem_file: Path) -> None:
    r = cli("consumers", "add", "--key", "k", "--name", "K", "--public-key-file", str(pem_file),
            "--callback", "ftp://example.com/cb", rc=1)
    assert r.stderr.startswith("error: --callback: Callback URL"), r.stderr
    assert r.stdout == ""
    cli("consumers", "add", "--key", "k", "--name", "K", "--public-key-file", str(pem_file))
    r = cli("consumers", "edit", "k", "--callback", "not a url", rc=1)
    assert r.stderr.startswith("error: --callback: ")
    r = cli("consumers", "edit", "k", "--execute-as", "bob", rc=1)  # 2LO is off
    assert r.stderr.startswith("error: --execute-as: ")
    r = cli("consumers", "edit", "k", "--signature-method", "MD5", rc=1)
    assert r.stderr.startswith("error: --signature-method: ")
    assert cli("consumers", "show", "k", "--json").json()["callback_url"] is None


def test_unknown_consumer_exits_1(cli: Cli) -> None:
    for args in (["show", "nope"], ["show", "nope", "--json"], ["edit", "nope", "--name", "x"],
                 ["remove", "nope", "--yes"]):
        r = cli("consumers", *args, rc=1)
        assert r.stderr.startswith("error: No consumer with key 'nope'."), (args, r.stderr)
        assert len(r.stderr.splitlines()) == 1 and r.stdout == ""


def test_duplicate_key_is_refused(cli: Cli, pem_file: Path) -> None:
    cli("consumers", "add", "--key", "dup", "--name", "First", "--public-key-file", str(pem_file))
    r = cli("consumers", "add", "--key", "dup", "--name", "Second", "--secret-stdin",
            input="another-secret\n", rc=1)
    assert r.stderr.startswith("error: --key: A consumer with key 'dup' already exists")
    assert [c["name"] for c in cli("consumers", "list", "--json").json()] == ["First"]
    # The failed add left nothing in the keyring.
    assert cli("doctor", "--json").json()["secrets_without_row"] == []


def test_list_filter_and_sort(cli: Cli, pem_file: Path) -> None:
    for key, name in (("b:2", "Bamboo"), ("a:1", "Confluence"), ("c:3", "JIRA")):
        cli("consumers", "add", "--key", key, "--name", name, "--public-key-file", str(pem_file))
    assert [c["key"] for c in cli("consumers", "list", "--json").json()] == ["a:1", "b:2", "c:3"]
    rows = cli("consumers", "list", "--sort", "name", "--desc", "--json").json()
    assert [c["name"] for c in rows] == ["JIRA", "Confluence", "Bamboo"]
    assert [c["key"] for c in cli("consumers", "list", "--filter", "CONF", "--json").json()] \
        == ["a:1"]
    assert cli("consumers", "list", "--filter", "zzz", "--json").json() == []
    assert "none match" in cli("consumers", "list", "--filter", "zzz").stdout


def _sigint_as_on_a_terminal() -> None:
    """In the child: SIGINT neither ignored nor blocked (a test worker may do either, and
    a child inherits both)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _interrupt_at_prompt(cli: Cli, *args: str) -> tuple[str, int]:
    """Run ``tui-oauth ARGS`` on a pseudo-terminal, press Ctrl-C (SIGINT, as the terminal
    sends it) once it asks, and return what it printed and its exit status."""
    import os
    import select
    import signal
    import subprocess
    import sys
    import time

    from tests.cli_support import REPO, base_env

    assert cli.db_url is not None
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tui_oauth", "--db", cli.db_url, *args],
                            cwd=REPO, env={**base_env(), "COLUMNS": "200"}, stdin=slave,
                            stdout=slave, stderr=slave,
                            preexec_fn=_sigint_as_on_a_terminal)
    os.close(slave)
    out = b""
    try:
        while b"[y/N]" not in out:
            ready, _, _ = select.select([master], [], [], 30)
            assert ready, f"no prompt: {out!r}"
            out += os.read(master, 4096)
        # readline prints the prompt, then waits for input: a SIGINT that lands between
        # the two is noted but does not end the wait (a person never hits that window;
        # one who did would press Ctrl-C again). So: a moment after the prompt, and
        # again if the first one fell in that window.
        time.sleep(0.2)
        for _ in range(10):
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(timeout=3)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            raise AssertionError(f"Ctrl-C did not end it: {out!r}")
        while select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            out += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return out.decode(errors="replace").replace("\r\n", "\n"), code


def test_remove_asks_then_removes_with_its_tokens(cli: Cli, pem_file: Path) -> None:
    assert cli.db_url is not None
    cli("consumers", "add", "--key", "gone", "--name", "Gone", "--public-key-file", str(pem_file))
    add_tokens(cli.db_url, "gone", ["access", "access", "request"])
    assert cli("consumers", "list", "--json").json()[0]["token_count"] == 3
    shown = cli("consumers", "show", "gone", "--json").json()
    assert (shown["access_tokens"], shown["request_tokens"]) == (2, 1)

    r = cli("consumers", "remove", "gone", rc=1)  # stdin is not a terminal
    assert r.stderr.startswith("error: Remove consumer 'gone' (Gone) and its 3 token(s)")
    assert "refusing without --yes" in r.stderr.lower()
    assert len(cli("consumers", "list", "--json").json()) == 1
    assert cli.query("SELECT count(*) FROM tokens") == [(3,)]

    # Ctrl-C at the [y/N] prompt (on a terminal): said as any other interrupt (finding 15).
    out, code = _interrupt_at_prompt(cli, "consumers", "remove", "gone")
    assert "[y/N]" in out and "Aborted!" not in out, out
    assert out.rstrip().endswith("Interrupted; nothing more was changed."), out
    assert code == 130
    assert cli.query("SELECT count(*) FROM tokens") == [(3,)]

    r = cli("consumers", "remove", "gone", "--yes")
    assert r.stdout == "Removed consumer 'gone' and 3 token(s).\n"
    assert cli("consumers", "list", "--json").json() == []
    assert cli.query("SELECT count(*) FROM tokens") == [(0,)]
    cli("consumers", "show", "gone", rc=1)


# ---------------------------------------------------------------- secrets


SECRET = "Zq7-distinctive-Sh4red-s3cret-\u00e9t\u00e9"
SECRET_2 = "second-distinctive-secret-9f2c1"


def _keyring_value(cli: Cli, backend: Any, key: str) -> str | None:
    uid = cli.uid("consumers", "key", key)
    value = backend.get_password(cli.keyring_service(), f"consumer/{uid}/shared-secret")
    return None if value is None else str(value)


def _db_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(tmp_path.glob("s.db*")))


def test_hmac_secret_lives_only_in_the_keyring(cli: Cli, keyring_backend: Any,
                                               tmp_path: Path) -> None:
    added = cli("consumers", "add", "--key", "hmac:1", "--name", "HMAC consumer",
                "--secret-stdin", "--allow-plaintext", "--json", input=SECRET + "\n").json()
    assert added["signature_method"] == "HMAC-SHA1"
    assert added["has_shared_secret"] is True and added["allow_plaintext"] is True
    assert _keyring_value(cli, keyring_backend, "hmac:1") == SECRET

    # Every way of looking at it says "set", never the value.
    cli("consumers", "show", "hmac:1")
    cli("consumers", "show", "hmac:1", "--json")
    cli("consumers", "list")
    cli("consumers", "list", "--json")
    cli("audit")
    audit = cli("audit", "--json")
    assert "consumer.add" in [e["action"] for e in audit.json()["entries"]]
    cli("doctor")
    cli("doctor", "--json")
    assert "set (in the keyring)" in cli("consumers", "show", "hmac:1").stdout

    # Replace it from a file; the old value is gone from the keyring.
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET_2 + "\n")
    secret_file.chmod(0o600)
    cli("consumers", "edit", "hmac:1", "--secret-file", str(secret_file))
    assert _keyring_value(cli, keyring_backend, "hmac:1") == SECRET_2
    edits = cli("audit", "--json", "--action", "consumer.edit").json()["entries"]
    assert edits[0]["detail"] == "shared secret replaced"

    for value in (SECRET, SECRET_2):
        assert value.encode() not in _db_bytes(tmp_path)
        assert value not in cli.everything_printed()
    assert SECRET.encode("utf-8") not in _db_bytes(tmp_path)

    uid = cli.uid("consumers", "key", "hmac:1")
    cli("consumers", "remove", "hmac:1", "--yes")
    assert keyring_backend.get_password(cli.keyring_service(),
                                        f"consumer/{uid}/shared-secret") is None


def test_remove_secret_switching_to_rsa(cli: Cli, keyring_backend: Any, pem_file: Path) -> None:
    cli("consumers", "add", "--key", "h", "--name", "H", "--secret-stdin", input=SECRET + "\n")
    r = cli("consumers", "edit", "h", "--remove-secret", rc=1)  # HMAC-SHA1 needs one
    assert r.stderr.startswith("error: --secret-stdin/--secret-file: HMAC-SHA1 needs")
    assert _keyring_value(cli, keyring_backend, "h") == SECRET
    r = cli("consumers", "edit", "h", "--remove-secret", "--secret-stdin", input="x\n", rc=2)
    assert "--remove-secret cannot go with" in r.stderr
    after = cli("consumers", "edit", "h", "--remove-secret", "--signature-method", "RSA-SHA1",
                "--public-key-file", str(pem_file), "--json").json()
    assert after["has_shared_secret"] is False and after["signature_method"] == "RSA-SHA1"
    assert _keyring_value(cli, keyring_backend, "h") is None
    assert SECRET not in cli.everything_printed()


def test_a_weak_key_warns_when_it_is_added(cli: Cli, tmp_path: Path) -> None:
    """Issue 9: the warning comes when the key is added, not only in the detail view."""
    from tests.helpers import pem_spki, rsa_key

    weak = tmp_path / "weak.pem"
    weak.write_text(pem_spki(rsa_key(0, bits=1024)))
    r = cli("consumers", "add", "--key", "old", "--name", "Old", "--public-key-file", str(weak))
    assert "warning: its public key has 1024 bits" in r.stderr
    r = cli("consumers", "edit", "old", "--name", "Old app", "--json")
    assert "warning: its public key has 1024 bits" in r.stderr
    assert r.json()["name"] == "Old app"  # stdout stays pure JSON
