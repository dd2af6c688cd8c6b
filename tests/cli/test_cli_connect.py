"""`providers connect|call|tokens|forget|test` (issue 8) over real HTTP on 127.0.0.1.

Two stores, A and B, each served in-process; A is B's consumer, B is A's service
provider, as two Atlassian applications trust each other.  A connect that must wait
for B's approval runs as its own process (it prints the URL, then waits)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.cli_support import REPO, Cli, base_env, delete_store_secrets
from tests.e2e.test_consumer_side import answer, tiny_server
from tests.helpers import pem_body_lines
from tests.provider_support import OAUTH, Server, running_server
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store, open_store


@dataclass
class Pair:
    a: Cli
    b: Cli
    store_a: Store
    store_b: Store
    srv_a: Server
    srv_b: Server
    key: str  # A's Consumer Info key


def urls(base: str) -> list[str]:
    return ["--request-token-url", base + OAUTH + "/request-token",
            "--authorization-url", base + OAUTH + "/authorize",
            "--access-token-url", base + OAUTH + "/access-token"]


@pytest.fixture
def pair(tmp_path: Path, keyring_backend: Any) -> Iterator[Pair]:
    """B has A as a consumer (added by URL); A has B as an RSA-SHA1 service provider."""
    a, b = Cli(f"sqlite:///{tmp_path / 'a.db'}"), Cli(f"sqlite:///{tmp_path / 'b.db'}")
    assert a.db_url and b.db_url
    store_a = open_store(a.db_url, secrets_backend=keyring_backend)
    store_b = open_store(b.db_url, secrets_backend=keyring_backend)
    try:
        with running_server(store_a) as srv_a, running_server(store_b) as srv_b:
            key = a("info", "show", "--json").json()["key"]
            b("consumers", "add", "--from-url", srv_a.base, "--allow-private", "--yes")
            a("providers", "add", "--name", "B", "--consumer-key", key,
              "--signature-method", "RSA-SHA1", "--allow-private", *urls(srv_b.base))
            yield Pair(a, b, store_a, store_b, srv_a, srv_b, key)
    finally:
        store_a.close()
        store_b.close()
        delete_store_secrets(a.db_url, keyring_backend)
        delete_store_secrets(b.db_url, keyring_backend)


def start(cli: Cli, *args: str) -> subprocess.Popen[str]:
    assert cli.db_url
    return subprocess.Popen([sys.executable, "-m", "tui_oauth", "--db", cli.db_url, *args],
                            cwd=REPO, env=base_env(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["oauth_token"][0]


def test_atlassian_to_atlassian(pair: Pair) -> None:
    """The README's walkthrough: test, connect (oob, B's admin approves), call whoami."""
    a, b = pair.a, pair.b
    checks = a("providers", "test", "B").stdout.splitlines()
    assert len(checks) == 5 and all(line.startswith("ok  ") for line in checks), checks

    proc = start(a, "providers", "connect", "B", "--user", "ops")
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    assert url.startswith(pair.srv_b.base + OAUTH + "/authorize?oauth_token=")
    verifier = b("tokens", "authorize", "--user", "alice", "--", token_of(url)).stdout.strip()
    out, err = proc.communicate(verifier + "\n", timeout=60)
    assert proc.returncode == 0, err
    assert "Connected to 'B': a token is held for local user 'ops'" in out

    who = a("providers", "call", "B", "/rest/whoami", "--user", "ops", "--json").json()
    assert who["status"] == 200
    assert who["body"]["consumer_key"] == pair.key and who["body"]["user"] == "alice"
    text = a("providers", "call", "B", "GET", pair.srv_b.base + "/rest/whoami",
             "--user", "ops", "--include").stdout
    assert text.startswith("200 OK\n") and "content-type: application/json" in text.lower()
    assert '"user": "alice"' in text  # pretty-printed

    [held] = a("providers", "tokens", "B", "--json").json()
    assert held["user"] == "ops" and held["renewable"] and held["last_used_at"]
    assert "provider.connect" in a("audit", "--json").stdout

    # No secret anywhere: the held token's secret, A's private key.
    side_a = services(pair.store_a)
    _, secret = side_a.consumer_side._held(side_a.providers.get("B"), "ops")
    pem = services(pair.store_a).consumer_info.private_key_pem()
    assert a.db_url
    db = Path(a.db_url.removeprefix("sqlite:///"))
    raw = b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())
    printed = a.everything_printed() + b.everything_printed() + out + err
    for needle in [secret, *pem_body_lines(pem)]:
        assert needle.encode() not in raw and needle not in printed

    # Revocation on B is seen as token_revoked, with advice and exit 1.
    b("tokens", "revoke", "--yes", "--", services(pair.store_a).consumer_side._held(
        services(pair.store_a).providers.get("B"), "ops")[0].token)
    r = a("providers", "call", "B", "/rest/whoami", "--user", "ops", rc=1)
    assert "error: B refused the request: token_revoked (" in r.stderr

    # forget asks first, refuses without a terminal, then drops the token
    r = a("providers", "forget", "B", rc=1)
    assert "Refusing without --yes" in r.stderr
    assert a("providers", "forget", "B", "--user", "ops", "--yes").stdout == (
        "Forgot 1 token(s) held from 'B' for local user 'ops'.\n")
    assert a("providers", "tokens", "B", "--json").json() == []


def test_connect_with_callback_listener_and_2lo(pair: Pair) -> None:
    proc = start(pair.a, "providers", "connect", "B", "--callback-listen", "127.0.0.1:0",
                 "--wait", "30")
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    decision = services(pair.store_b).tokens.authorize(token_of(url), "bob")
    callback = decision.redirect_url()
    assert callback and callback.startswith("http://127.0.0.1:")
    with requests.Session() as s:
        s.trust_env = False
        assert s.get(callback, timeout=10).status_code == 200
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Connected to 'B'" in out
    who = pair.a("providers", "call", "B", "/rest/whoami", "--json").json()
    assert who["body"]["user"] == "bob"

    # 2-legged, acting as a user of B (one fixture for both: it costs two servers)
    pair.b("consumers", "edit", pair.key, "--2lo", "--impersonation")
    who = pair.a("providers", "call", "B", "/rest/whoami", "--2lo", "--as", "carol",
                 "--json").json()
    assert who["status"] == 200 and who["body"]["user"] == "carol"
    r = pair.a("providers", "call", "B", "/rest/whoami", "--as", "carol", rc=2)
    assert "--as needs --2lo" in r.stderr


def test_failures_exit_1_in_words(cli: Cli) -> None:
    with tiny_server(answer(200, b"<html><body>Please log in</body></html>",
                            "text/html")) as base:
        cli("providers", "add", "--name", "Web", "--consumer-key", "k",
            "--signature-method", "RSA-SHA1", "--allow-private", *urls(base))
        r = cli("providers", "connect", "Web", input="x\n", rc=1)
        assert "HTML page (a login page?)" in r.stderr and r.stdout == ""
        r = cli("providers", "test", "Web", rc=1)
        lines = r.stdout.splitlines()
        assert [line[:4] for line in lines] == ["ok  "] * 4 + ["FAIL"]
        assert "error: 1 check(s) failed for 'Web'." in r.stderr
    r = cli("providers", "test", "Web", rc=1)  # nothing listens there now
    assert r.stdout.count("FAIL") == 5 and "Connection refused" in r.stdout
    r = cli("providers", "call", "Web", "/x", rc=1)
    assert "No token is held from Web" in r.stderr
    r = cli("providers", "tokens", "Web")
    assert "No tokens held from Web" in r.stdout
    r = cli("providers", "connect", "Web", "--callback-listen", "192.0.2.1:80", rc=2)
    assert "not a loopback address" in r.stderr
    cli("providers", "edit", "Web", "--no-allow-private")
    assert cli("providers", "show", "Web", "--json").json()["allow_private"] is False
    r = cli("providers", "test", "Web", rc=1)  # refused before connecting, and says why
    assert r.stdout.count("FAIL") == 5 and "a loopback address" in r.stdout
    assert "--allow-private" in r.stdout
