"""End to end with the real program: `tui-oauth serve` in a subprocess, a consumer added
with the CLI, the oob dance approved by `tokens authorize`, then `tokens list/revoke/purge`
and `settings`."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests
from requests_oauthlib import OAuth1Session

from tests.cli_support import REPO, Cli
from tests.helpers import stop_process
from tests.provider_support import OAUTH, auth, problem_of

pytestmark = pytest.mark.secret_service

KEY, SECRET = "partner:1", "cli-e2e-Secret-7q"


@pytest.fixture
def served(cli: Cli) -> Iterator[tuple[Cli, str]]:
    cli("consumers", "add", "--key", KEY, "--name", "Partner", "--signature-method",
        "HMAC-SHA1", "--secret-stdin", input=SECRET + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert cli.db_url is not None
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui_oauth", "--db", cli.db_url, "serve", "--listen",
         f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=REPO, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(base + "/rest/ping", timeout=1).ok:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"serve did not start:\n{out}\n{err}")
        time.sleep(0.1)
    try:
        yield cli, base
    finally:
        err = stop_process(proc)
        assert "Traceback" not in err, err


def test_serve_dance_and_admin_revocation(served: tuple[Cli, str]) -> None:
    cli, base = served
    s = OAuth1Session(KEY, client_secret=SECRET, callback_uri="oob")
    rt = s.fetch_request_token(base + OAUTH + "/request-token")
    pending = cli("tokens", "list", "--type", "request", "--state", "pending", "--json").json()
    assert [t["token"] for t in pending["tokens"]] == [rt["oauth_token"]]
    verifier = cli("tokens", "authorize", rt["oauth_token"], "--user", "alice").stdout.strip()
    assert verifier
    s2 = OAuth1Session(KEY, client_secret=SECRET, resource_owner_key=rt["oauth_token"],
                       resource_owner_secret=rt["oauth_token_secret"], verifier=verifier)
    at = s2.fetch_access_token(base + OAUTH + "/access-token")
    a = auth(KEY, secret=SECRET, resource_owner_key=at["oauth_token"],
             resource_owner_secret=at["oauth_token_secret"])
    r = requests.get(base + "/rest/whoami", auth=a, timeout=10)
    assert r.status_code == 200 and r.json()["user"] == "alice"
    # Bulk revoke asks first; without a terminal it refuses unless --yes.
    refused = cli("tokens", "revoke", "--user", "alice", rc=1)
    assert "--yes" in refused.stderr
    done = cli("tokens", "revoke", "--user", "alice", "--yes", "--json").json()
    assert done == {"revoked": 1}
    r = requests.get(base + "/rest/whoami", auth=a, timeout=10)
    assert r.status_code == 401 and problem_of(r) == "token_revoked"
    purged = cli("tokens", "purge", "--json").json()
    assert purged["tokens"] >= 1
    # Removing the consumer: refused at once.
    cli("consumers", "remove", KEY, "--yes")
    r = requests.get(base + "/rest/whoami", auth=a, timeout=10)
    assert r.status_code == 401 and problem_of(r) == "consumer_key_unknown"
    doctor = cli("doctor").stdout
    assert "provider data key" not in doctor or "missing" not in doctor


def test_settings_show_and_set(cli: Cli) -> None:
    shown = cli("settings", "show", "--json").json()
    assert shown["access_token_ttl"] == 604800 and shown["timestamp_window"] == 300
    cli("settings", "set", "access_token_ttl", "3600")
    assert cli("settings", "show", "--json").json()["access_token_ttl"] == 3600
    bad = cli("settings", "set", "access_token_ttl", "1", rc=1)
    assert bad.stderr.startswith("error: access_token_ttl must be between ")
    # Each message names the setting once; NAME is an argument, not a --name option.
    bad = cli("settings", "set", "nope", "1", rc=1)
    assert bad.stderr.startswith("error: Unknown setting 'nope'; known: access_token_ttl, ")
    bad = cli("settings", "set", "problem_detail", "verbose", rc=1)
    assert bad.stderr == "error: problem_detail must be one of: full, minimal.\n"


def test_serve_refuses_a_bad_public_url(cli: Cli) -> None:
    r = cli("serve", "--public-url", "ftp://x", rc=1)
    assert "--public-url" in r.stderr


