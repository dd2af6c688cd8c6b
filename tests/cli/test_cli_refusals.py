"""`tui-oauth refusals list/show` and `tui-oauth debug signature`, in-process (click's
runner) against one store: refusal rows written as the provider writes them, a consumer
whose secret is in the real keyring, and hostile text from outside shown escaped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from oauthlib.oauth1 import Client

from tests.cli_support import Cli
from tui_oauth.core.provider.rfc5849 import parse_request
from tui_oauth.core.registry import services
from tui_oauth.core.timeutil import utcnow

SECRET = "s3cret-of-jira"
PUBLIC = "https://jira.example.com"
INTERNAL = "http://127.0.0.1:8080"
HOSTILE = "evil\x1b[31m\u202ekey"


def _signed_internal() -> tuple[str, dict[str, str]]:
    """A request jira:1 signed against the internal URL (the proxy mistake)."""
    uri, headers, _ = Client("jira:1", client_secret=SECRET).sign(
        f"{INTERNAL}/rest/api/2/myself", http_method="GET")
    return uri, headers


def _add_refusals(cli: Cli) -> None:
    from sqlmodel import Session

    from tui_oauth.core.database import make_engine
    from tui_oauth.core.models import ConsumerClock, Refusal

    _, headers = _signed_internal()
    request = parse_request(f"{PUBLIC}/rest/api/2/myself", "GET", b"", headers)
    now = utcnow()
    rows = [
        Refusal(at=now - timedelta(days=3), bucket="jira:1", consumer_key="jira:1",
                problem="timestamp_refused", answered="timestamp_refused", method="GET",
                url=f"{PUBLIC}/rest/x", seen_url=f"{INTERNAL}/rest/x", client_addr="10.0.0.9",
                signature_method="HMAC-SHA1", timestamp=1, offset=-432),
        Refusal(at=now - timedelta(minutes=5), bucket="", consumer_key=HOSTILE,
                problem="consumer_key_unknown", answered="signature_invalid", method="POST",
                url=f"{PUBLIC}/x\x1b]0;title\x07", seen_url=f"{PUBLIC}/x",
                client_addr="10.0.0.66", signature_method="HMAC-SHA1"),
        Refusal(at=now - timedelta(minutes=1), bucket="jira:1", consumer_key="jira:1",
                token_prefix="", problem="signature_invalid", answered="signature_invalid",
                method="GET", url=f"{PUBLIC}/rest/api/2/myself",
                seen_url=f"{INTERNAL}/rest/api/2/myself", client_addr="10.0.0.9",
                signature_method="HMAC-SHA1", timestamp=int(request.timestamp), offset=0,
                base_string=request.tui_base_strings[0], signature=request.signature),
    ]
    assert cli.db_url is not None
    engine = make_engine(cli.db_url)
    try:
        with Session(engine) as s:
            s.add_all(rows)
            s.add(ConsumerClock(consumer_key="jira:1", median_offset=-432, samples=40,
                                updated_at=now))
            s.commit()
    finally:
        engine.dispose()


def _add_tokens(cli: Cli, secrets: dict[str, str]) -> None:
    from sqlmodel import select

    from tests.conftest import secret_service_backend
    from tui_oauth.core.models import Consumer, Token
    from tui_oauth.core.provider.crypto import load_data_key
    from tui_oauth.core.store import open_store

    with open_store(cli.db_url, secrets_backend=secret_service_backend()) as store:
        key = load_data_key(store)
        with store.transaction() as uow:
            consumer = uow.session.exec(select(Consumer).where(Consumer.key == "jira:1")).one()
            assert consumer.id is not None
            for token, secret in secrets.items():
                uow.session.add(Token(token=token, secret_enc=key.encrypt(secret, token),
                                      consumer_id=consumer.id, type="access", state="active"))


def test_refusals_list_show_and_the_debugger(cli: Cli) -> None:
    cli("consumers", "add", "--key", "jira:1", "--name", "JIRA", "--secret-stdin",
        "--signature-method", "HMAC-SHA1", input=SECRET + "\n")
    _add_refusals(cli)

    # list: newest first, streamed, filters, every output form
    table = cli("refusals", "list").stdout
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["ID", "AT", "(UTC)"]
    assert [line.split()[0] for line in lines[1:]] == ["3", "2", "1"]
    assert "\x1b" not in table and "\u202e" not in table and "\\x1b" in table
    assert "(unknown)" in table and "consumer_key_unknown (answered signature_invalid)" in table
    assert cli("refusals", "list", "-q", "--since", "2h").stdout.split() == ["3", "2"]
    assert cli("refusals", "list", "-q", "--consumer", "jira:1",
               "--problem", "timestamp_refused").stdout.split() == ["1"]
    since = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert cli("refusals", "list", "-q", "--since", since).stdout.split() == ["3", "2"]
    doc = cli("refusals", "list", "-o", "json", "--limit", "2").json()
    assert [r["id"] for r in doc["refusals"]] == [3, 2]
    assert doc["refusals"][0]["advice"] and doc["refusals"][1]["consumer_key"] == HOSTILE
    jsonl = cli("refusals", "list", "-o", "jsonl", "--filter", "10.0.0.66").stdout
    assert len(jsonl.splitlines()) == 1 and "\\u001b" in jsonl and "\x1b" not in jsonl
    assert cli("refusals", "list", "--problem", "nonce_used").stdout.strip() == \
        "No refusals match."
    # --filter searches the URL the request reached too (an internal port)
    assert cli("refusals", "list", "-q", "--filter", "127.0.0.1:8080").stdout.split() == [
        "3", "1"]
    assert "-o json/jsonl gives every field with the record's" in cli(
        "refusals", "list", "--help").stdout.replace("\n", " ").replace("  ", " ")
    bad = cli("refusals", "list", "--since", "yesterday", rc=2)
    assert "neither a time" in bad.stderr and "2h" in bad.stderr
    bad = cli("refusals", "list", "--since", "99999d", rc=2)  # a duration, too long
    assert "'99999d' is longer than ten years. Give a shorter duration" in bad.stderr
    assert "neither" not in bad.stderr

    # show: the record, its advice, and for signature_invalid the debugger's finding
    shown = cli("refusals", "show", "3").stdout
    assert "internal_url" in shown and f"{INTERNAL}/rest/api/2/myself" in shown
    assert "Checked against the stored key" in shown and SECRET not in shown
    assert "Finding:          not checked when recorded" in shown  # written by hand
    one = cli("refusals", "show", "3", "-o", "json").json()
    assert one["check"]["mistake"]["code"] == "internal_url" and one["check_error"] is None
    clock = cli("refusals", "show", "1", "-o", "json").json()
    assert clock["check"] is None and "7 min 12 s" in clock["advice"]
    assert "\x1b" not in cli("refusals", "show", "2").stdout
    missing = cli("refusals", "show", "99", rc=1)
    assert missing.error_lines and "refusals list" in missing.stderr

    # debug signature: stdin (curl with continuations), a file, the public URL given
    uri, headers = _signed_internal()
    curl = f"curl -sS \\\n  -H 'Authorization: {headers['Authorization']}' \\\n  '{uri}'\n"
    found = cli("debug", "signature", "--public-url", PUBLIC, input=curl, rc=1).stdout
    assert "does not match" in found and "internal_url" in found
    assert f"{PUBLIC}/rest/api/2/myself" in found and SECRET not in found
    ok = cli("debug", "signature", "-o", "json", input=curl,
             env={"TUI_OAUTH_SERVE_PUBLIC_URL": INTERNAL}).json()
    assert ok["matches"] is True and ok["public_url"] == INTERNAL
    verdict = cli("debug", "signature", "-q", "--public-url", PUBLIC, input=curl, rc=1)
    assert verdict.stdout.strip() == "internal_url"
    unreadable = cli("debug", "signature", input="hello\x1b[2J world\n", rc=1)
    assert unreadable.error_lines and "curl command line" in unreadable.stderr
    assert "\x1b" not in unreadable.stderr
    # the token's secret and the consumer's other tokens', sealed under the data key
    _add_tokens(cli, {"tok-now": "secret-now", "tok-old": "secret-old"})
    stale = Client("jira:1", client_secret=SECRET, resource_owner_key="tok-now",
                   resource_owner_secret="secret-old").sign(f"{PUBLIC}/rest/x")
    short = f"GET {stale[0]}\nAuthorization: {stale[1]['Authorization']}\n"
    found = cli("debug", "signature", "--public-url", PUBLIC, input=short, rc=1).stdout
    assert "stale_token" in found and "tok-old" in found and "secret-old" not in found
    good = Client("jira:1", client_secret=SECRET, resource_owner_key="tok-now",
                  resource_owner_secret="secret-now").sign(f"{PUBLIC}/rest/x")
    short = f"GET {good[0]}\nAuthorization: {good[1]['Authorization']}\n"
    assert cli("debug", "signature", "-q", "--public-url", PUBLIC,
               input=short).stdout.strip() == "match"
    unknown: Any = cli("debug", "signature", "--consumer", "nope", "--public-url", PUBLIC,
                       input=curl, rc=1)
    assert "No consumer with key 'nope'" in unknown.stderr

    # Without --public-url: serve's default (the internal URL: it matches), until serve
    # has noted the public URL it serves in the store; then that one (and says so)
    fallback = cli("debug", "signature", "-o", "json", input=curl).json()
    assert fallback["matches"] and "serve's default" in fallback["public_url_from"]
    # ... and a no-match then says the assumed public URL may be the cause
    wrong = Client("jira:1", client_secret="not-it").sign(f"{INTERNAL}/rest/x")
    text = f"GET {wrong[0]}\nAuthorization: {wrong[1]['Authorization']}\n"
    assumed = " ".join(cli("debug", "signature", input=text, rc=1).stdout.split())
    assert f"the public URL {INTERNAL} was only assumed" in assumed
    assert "Pass --public-url" in assumed and "a wrong key or secret?" not in assumed
    given = " ".join(cli("debug", "signature", "--public-url", INTERNAL, input=text,
                         rc=1).stdout.split())
    assert "only assumed" not in given and "(a wrong key or secret?)" in given
    _note_public_url(cli, PUBLIC)
    noted = cli("debug", "signature", "-o", "json", input=curl, rc=1).json()
    assert noted["public_url"] == PUBLIC and noted["mistake"]["code"] == "internal_url"
    assert noted["public_url_from"] == "the one `serve` last served this store with"
    # A proxy that keeps Host: jira.example.com, the consumer signed the listen address:
    # found with --internal-url, or with the listen URL serve noted in the store
    raw = ("GET /rest/api/2/myself HTTP/1.1\r\nHost: jira.example.com\r\n"
           f"Authorization: {headers['Authorization']}\r\n\r\n")
    assert cli("debug", "signature", "-q", input=raw, rc=1).stdout.strip() == "no-match"
    assert cli("debug", "signature", "-q", "--internal-url", "http://10.9.9.9:1",
               "--internal-url", f"{INTERNAL}/", input=raw, rc=1).stdout.strip() \
        == "internal_url"
    bad = cli("debug", "signature", "--internal-url", "ftp://x", input=raw, rc=2)
    assert "--internal-url" in bad.stderr and "http(s) URL" in bad.stderr
    _note_public_url(cli, PUBLIC, listen=INTERNAL)
    listened = cli("debug", "signature", input=raw, rc=1).stdout
    assert "internal_url" in listened and f"{INTERNAL}/rest/api/2/myself" in listened
    # Two servers on one store (or one moved): a request is checked against the public
    # URL of the one it was sent to, not the one that started last
    first, second = "http://127.0.0.1:42583", "http://127.0.0.1:36817"
    _note_public_url(cli, first, listen=first)
    _note_public_url(cli, second, listen=second)
    sent = Client("jira:1", client_secret=SECRET).sign(f"{first}/rest/x")
    short = f"GET {sent[0]}\nAuthorization: {sent[1]['Authorization']}\n"
    reached = cli("debug", "signature", "-o", "json", input=short).json()
    assert reached["matches"] and reached["public_url"] == first, reached
    assert reached["public_url_from"] == "the one of the `serve` this request was sent to"

    # consumers show: the clock and the refusals (count by problem, the last one)
    text = cli("consumers", "show", "jira:1").stdout
    assert "7 min 12 s behind, from 40 request(s)" in text
    assert "Refusals:" in text and "2 (1 signature_invalid, 1 timestamp_refused)" in text
    doc = cli("consumers", "show", "jira:1", "-o", "json").json()
    assert doc["clock"]["median_offset"] == -432 and doc["clock"]["samples"] == 40
    assert doc["refusals"]["total"] == 2 and doc["refusals"]["by_problem"] == {
        "signature_invalid": 1, "timestamp_refused": 1}
    assert doc["refusals"]["last_at"] is not None


def _note_public_url(cli: Cli, url: str, listen: str | None = None) -> None:
    from tests.conftest import secret_service_backend
    from tui_oauth.core.services.diagnostics import remember_public_url
    from tui_oauth.core.store import open_store

    with open_store(cli.db_url, secrets_backend=secret_service_backend()) as store:
        assert remember_public_url(store, url, listen) is True
        assert remember_public_url(store, url, listen) is False  # only when it changed
        assert services(store).diagnostics.served_listen_url() == listen
