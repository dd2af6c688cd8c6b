"""`tui-oauth consumers add --from-url` end to end, against a real local HTTP server.

The server (http.server on 127.0.0.1, port 0, in a thread) answers
``/<mode>/plugins/servlet/oauth/consumer-info`` according to ``<mode>``: a good
consumer-info document, a 404, an HTML login page, broken XML, a document
without its key.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.cli_support import Cli

pytestmark = pytest.mark.secret_service

INFO_PATH = "/plugins/servlet/oauth/consumer-info"
KEY = "jira:6f1c2a4e-1b7d-4e8a-9c3f-0d2b5e6a7f81"


def consumer_info(public_key_b64: str, *, key: str | None = KEY) -> bytes:
    key_element = f"  <key>{key}</key>\n" if key is not None else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<consumer>\n' + key_element +
        "  <name>JIRA</name>\n"
        f"  <publicKey>{public_key_b64}</publicKey>\n"
        "  <description>Atlassian JIRA at https://jira.example.com</description>\n"
        "  <callback>https://jira.example.com/plugins/servlet/oauth/callback</callback>\n"
        "</consumer>\n"
    ).encode()


class Server:
    def __init__(self, public_key_b64: str) -> None:
        self.pages: dict[str, tuple[int, str, bytes]] = {
            "good": (200, "application/xml;charset=UTF-8", consumer_info(public_key_b64)),
            "html": (200, "text/html; charset=utf-8", b"<html><body>Log in</body></html>"),
            "badxml": (200, "application/xml", b"<consumer><key>x</key><name>"),
            "nokey": (200, "text/xml", consumer_info(public_key_b64, key=None)),
            "error": (500, "text/plain", b"boom"),
            "badkey": (200, "application/xml", consumer_info("QUJDRA==")),
        }
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                mode, _, rest = self.path.lstrip("/").partition("/")
                status, ctype, body = server.pages.get(mode, (404, "text/plain", b"not found"))
                if "/" + rest != INFO_PATH:
                    status, ctype, body = 404, "text/plain", b"not found"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)

    def url(self, mode: str) -> str:
        return f"{self.base}/{mode}"


@pytest.fixture
def server(public_key: tuple[str, str]) -> Iterator[Server]:
    srv = Server(public_key[1])
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def test_add_from_url_with_yes(cli: Cli, server: Server, public_key: tuple[str, str]) -> None:
    r = cli("consumers", "add", "--allow-private", "--from-url", server.url("good") + "/",
            "--yes")
    assert r.stdout.startswith(f"Fetched {server.url('good')}{INFO_PATH} (200, application/xml")
    assert KEY in r.stdout and "RSA 2048 bits, SHA256:" in r.stdout
    assert r.stdout.rstrip().endswith(f"Added consumer '{KEY}' (JIRA).")
    path, headers = server.requests[-1]
    assert path == "/good" + INFO_PATH and headers["Accept"] == "application/xml"

    shown = cli("consumers", "show", KEY, "--json").json()
    assert shown["name"] == "JIRA" and shown["signature_method"] == "RSA-SHA1"
    assert shown["public_key"]["base64"] == public_key[1]
    assert shown["callback_url"] == "https://jira.example.com/plugins/servlet/oauth/callback"
    assert shown["description"] == "Atlassian JIRA at https://jira.example.com"


def test_add_from_url_json_is_pure_json(cli: Cli, server: Server) -> None:
    added = cli("consumers", "add", "--allow-private", "--from-url", server.url("good"), "--yes",
                "--2lo", "--json").json()
    assert added["key"] == KEY and added["two_lo_allowed"] is True


def test_add_from_url_without_yes_and_no_terminal_is_refused(cli: Cli, server: Server) -> None:
    r = cli("consumers", "add", "--allow-private", "--from-url", server.url("good"), rc=1)
    assert KEY in r.stdout  # what was fetched is shown first
    assert r.stderr == ("error: Add this consumer? Refusing without --yes: not on a terminal "
                        "to ask. Nothing was changed.\n")
    assert cli("consumers", "list", "--json").json() == []
    assert len(server.requests) == 1


def test_add_from_url_duplicate_key(cli: Cli, server: Server) -> None:
    cli("consumers", "add", "--allow-private", "--from-url", server.url("good"), "--yes")
    r = cli("consumers", "add", "--allow-private", "--from-url", server.url("good"), "--yes",
            rc=1)
    assert r.stderr == (f"error: A consumer with key '{KEY}' already exists (named 'JIRA') "
                        "with this same public key: nothing to add. Change its other fields "
                        f"with `tui-oauth consumers edit --name NAME -- {KEY}` (or the other "
                        "options of `consumers edit`).\n")
    assert len(cli("consumers", "list", "--json").json()) == 1


def test_add_from_url_over_a_key_with_another_public_key_points_to_edit(
        cli: Cli, server: Server, tmp_path: Any) -> None:
    """Finding 9: the way out keeps the consumer and its tokens (edit), not remove."""
    from tests.helpers import pem_spki, rsa_key

    (tmp_path / "old.pem").write_text(pem_spki(rsa_key(1)), encoding="utf-8")
    cli("consumers", "add", "--key", KEY, "--name", "Old", "--public-key-file",
        str(tmp_path / "old.pem"))
    r = cli("consumers", "add", "--allow-private", "--from-url", server.url("good"), "--yes",
            rc=1)
    (line,) = r.stderr.splitlines()
    assert line.startswith(f"error: A consumer with key '{KEY}' already exists (named 'Old') "
                           "with another public key; the fetched one is SHA256:"), line
    assert line.endswith("To give it the fetched key and keep its tokens, save the key (the "
                         "document's <publicKey>) to FILE and run `tui-oauth consumers edit "
                         f"--public-key-file FILE -- {KEY}`."), line
    assert "remove" not in line
    assert [c["name"] for c in cli("consumers", "list", "--json").json()] == ["Old"]


@pytest.mark.parametrize(("mode", "message"), [
    ("missing", "answered 404 Not Found"),
    ("error", "answered 500 Internal Server Error"),
    ("html", "Got text/html from"),
    ("badxml", "did not return a usable consumer-info document"),
])
def test_add_from_url_bad_answers(cli: Cli, server: Server, mode: str, message: str) -> None:
    r = cli("consumers", "add", "--allow-private", "--from-url", server.url(mode), "--yes", rc=1)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: --from-url: {server.url(mode)}{INFO_PATH}") or \
        lines[0].startswith("error: --from-url: Got text/html"), r.stderr
    assert message in lines[0]
    assert cli("consumers", "list", "--json").json() == []


@pytest.mark.parametrize(("mode", "message"), [
    ("nokey", "error: --from-url: <key> is missing"),
    ("badkey", "error: --from-url: <publicKey> in the fetched document: "),
])
def test_add_from_url_unusable_document(cli: Cli, server: Server, mode: str,
                                        message: str) -> None:
    r = cli("consumers", "add", "--allow-private", "--from-url", server.url(mode), "--yes", rc=1)
    # About the document fetched by --from-url, not about the --key / --public-key-file flags.
    assert r.stderr.startswith(message), r.stderr
    assert "--key" not in r.stderr and "--public-key-file" not in r.stderr
    assert cli("consumers", "list", "--json").json() == []


def test_add_from_url_nothing_listening(cli: Cli, server: Server) -> None:
    server.httpd.shutdown()
    server.httpd.server_close()
    r = cli("consumers", "add", "--allow-private", "--from-url", server.url("good"), "--yes",
            "--timeout", "5", rc=1)
    assert r.stderr.startswith("error: --from-url: Connection refused by 127.0.0.1:")


def test_add_from_url_refuses_loopback_by_default(cli: Cli, server: Server) -> None:
    r = cli("consumers", "add", "--from-url", server.url("good"), "--yes", rc=1)
    assert r.stdout == ""
    assert r.stderr == (
        f"error: --from-url: Did not fetch {server.url('good')}{INFO_PATH}: 127.0.0.1 is a "
        "loopback address (this machine): refused before connecting (by default only public "
        "addresses are fetched from, so that a URL cannot reach services inside this "
        "network). If this server is on your intranet, use --allow-private.\n")
    assert server.requests == []
    assert cli("consumers", "list", "--json").json() == []


def test_add_from_url_unspecified_is_refused_even_with_allow_private(cli: Cli) -> None:
    # 0.0.0.0 would reach this machine: safe to try even if the check were broken.
    r = cli("consumers", "add", "--allow-private", "--from-url", "http://0.0.0.0:9", "--yes",
            rc=1)
    assert r.stderr == (
        f"error: --from-url: Did not fetch http://0.0.0.0:9{INFO_PATH}: 0.0.0.0 is the "
        "unspecified address (it reaches this machine): refused before connecting (addresses "
        "like it are refused even when private addresses are allowed).\n")


def test_add_from_url_usage_errors(cli: Cli, server: Server, tmp_path: Any) -> None:
    r = cli("consumers", "add", "--allow-private", "--from-url", server.url("good"), "--key", "k",
            rc=2)
    assert "--key comes from the fetched document" in r.stderr
    r = cli("consumers", "add", "--from-url", "jira.example.com", "--yes", rc=1)
    assert r.stderr.startswith("error: --from-url: The URL needs its scheme")
    assert server.requests == []
