"""The consumer-info XML document: parse, render, URL and fetch (against a local server)."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tui_oauth import __version__
from tui_oauth.core.consumer_info_doc import (
    ConsumerInfoDoc,
    consumer_info_url,
    parse_consumer_info,
    render_consumer_info,
)
from tui_oauth.core.consumer_info_fetch import (
    FetchRefusedError,
    FetchResult,
    fetch_consumer_info,
)
from tui_oauth.core.errors import FetchError, ValidationError
from tui_oauth.core.keys import generate_key_pair, parse_public_key

PATH = "/plugins/servlet/oauth/consumer-info"
_, PUBLIC_B64 = generate_key_pair()
WRAPPED_KEY = "\n      ".join(PUBLIC_B64[i : i + 64] for i in range(0, len(PUBLIC_B64), 64))

GOOD = f"""<?xml version="1.0" encoding="UTF-8"?>
<consumer>
  <key> jira:13549426 </key>
  <name>
    JIRA
  </name>
  <publicKey>
      {WRAPPED_KEY}
  </publicKey>
  <description>Atlassian JIRA at https://jira.example.com</description>
  <callback>https://jira.example.com/plugins/servlet/oauth/callback</callback>
</consumer>
""".encode()

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<consumer><key>&lol4;</key><name>x</name><publicKey>x</publicKey></consumer>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE consumer [ <!ENTITY x SYSTEM "file:///etc/passwd"> ]>
<consumer><key>k</key><name>&x;</name><publicKey>x</publicKey></consumer>"""


def doc(*, key: str | None = "jira:1", name: str | None = "JIRA",
        public_key: str | None = PUBLIC_B64, extra: str = "") -> bytes:
    pairs = (("key", key), ("name", name), ("publicKey", public_key))
    parts = "".join(f"<{tag}>{value}</{tag}>" for tag, value in pairs if value is not None)
    return f"<consumer>{parts}{extra}</consumer>".encode()


def errors_of(data: bytes) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        parse_consumer_info(data)
    return info.value


# --- parse ------------------------------------------------------------------------------


def test_good_document() -> None:
    parsed = parse_consumer_info(GOOD)
    assert isinstance(parsed, ConsumerInfoDoc)
    assert parsed.key == "jira:13549426"
    assert parsed.name == "JIRA"
    assert parsed.description == "Atlassian JIRA at https://jira.example.com"
    assert parsed.callback == "https://jira.example.com/plugins/servlet/oauth/callback"
    assert parsed.public_key.base64_der == PUBLIC_B64
    assert parsed.public_key.bits == 2048
    assert parsed.public_key.fingerprint == parse_public_key(PUBLIC_B64).fingerprint
    namespaced = doc().replace(b"<consumer>", b'<consumer xmlns="urn:x">')
    assert parse_consumer_info(namespaced).key == "jira:1"


def test_optional_fields_absent() -> None:
    parsed = parse_consumer_info(doc(extra="<description>  </description><unknown>x</unknown>"))
    assert parsed.description is None and parsed.callback is None


@pytest.mark.parametrize(("missing", "field"),
                         [("key", "key"), ("name", "name"), ("public_key", "public_key")])
def test_each_missing_field(missing: str, field: str) -> None:
    err = errors_of(doc(**{missing: None}))  # type: ignore[arg-type]
    assert [e.field for e in err.errors] == [field]
    assert "missing" in err.errors[0].message


def test_all_missing_and_empty() -> None:
    err = errors_of(b"<consumer><key> </key></consumer>")
    assert {e.field for e in err.errors} == {"key", "name", "public_key"}
    assert "<key> is empty" in (err.for_field("key") or "")
    assert "<name> is missing" in (err.for_field("name") or "")


def test_bad_values() -> None:
    err = errors_of(doc(key="has space", name="x" * 256, public_key="not-a-key",
                        extra="<callback>javascript:alert(1)</callback>"))
    assert "spaces" in (err.for_field("key") or "")
    assert "255" in (err.for_field("name") or "")
    assert "base64" in (err.for_field("public_key") or "")
    assert "http" in (err.for_field("callback") or "")
    assert "no host" in (errors_of(doc(extra="<callback>https:///cb</callback>"))
                         .for_field("callback") or "")
    assert errors_of(doc(key="k" * 256)).for_field("key")
    err = errors_of(doc(public_key="-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"))
    assert "private key" in (err.for_field("public_key") or "")
    assert "more than once" in (errors_of(doc(extra="<key>other</key>")).for_field("key") or "")


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_entities_and_dtds_are_refused(data: bytes) -> None:
    started = time.monotonic()
    err = errors_of(data)
    assert time.monotonic() - started < 1
    assert err.field == "document"
    message = err.for_field("document") or ""
    assert "refused" in message and "DTD" in message and "entit" in message
    assert "root:" not in message and "lollol" not in message


@pytest.mark.parametrize(("data", "words"), [
    (b"<consumer><key>x</consumer>", "mismatched tag at line 1"),
    (b"<consumer>", "not well-formed xml"),
    (b"\x00\x01garbage", "not well-formed xml"),
    (b"<consumer><key>&nbsp;</key></consumer>", "undefined entity"),
    (b"", "empty"),
    (b"  \n", "empty"),
    (b"<html><body>Log in</body></html>", "root element is <html>, not <consumer>"),
    (b"<?xml version='1.0' encoding='klingon'?><consumer/>", "could not be read"),
])
def test_malformed_and_wrong_root(data: bytes, words: str) -> None:
    err = errors_of(data)
    assert err.field == "document"
    assert words in (err.for_field("document") or "").lower()


# --- render -----------------------------------------------------------------------------


def test_render_round_trip_with_escaping() -> None:
    name = 'Tom & Jerry\'s <"App"> — Größe ✓'
    description = "a < b && c > d; \"quoted\" 'single' ünïcødé\nsecond line"
    callback = "https://app.example.com/cb?a=1&b=<2>"
    data = render_consumer_info("app:ß&<>\"'", name, description, callback, PUBLIC_B64)
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert b"&amp;" in data and b"&lt;" in data
    parsed = parse_consumer_info(data)
    assert (parsed.key, parsed.name, parsed.description, parsed.callback) == (
        "app:ß&<>\"'", name, description, callback)
    assert parsed.public_key.base64_der == PUBLIC_B64


def test_render_omits_empty_optionals_and_normalizes_key() -> None:
    pem = parse_public_key(PUBLIC_B64).pem
    data = render_consumer_info("k", "n", None, "", pem)
    assert b"<description" not in data and b"<callback" not in data
    assert parse_consumer_info(data).public_key.base64_der == PUBLIC_B64


def test_render_refuses_bad_values() -> None:
    with pytest.raises(ValidationError) as info:
        render_consumer_info("", "bad\x01name", None, "ftp://x", "nope")
    assert {e.field for e in info.value.errors} == {"key", "name", "callback", "public_key"}


# --- consumer_info_url ------------------------------------------------------------------


@pytest.mark.parametrize(("given", "expected"), [
    ("https://jira.example.com", "https://jira.example.com" + PATH),
    (" https://jira.example.com/ ", "https://jira.example.com" + PATH),
    ("http://host:8080/jira/", "http://host:8080/jira" + PATH),
    ("HTTPS://Jira.Example.com/jira", "HTTPS://Jira.Example.com/jira" + PATH),
    ("https://jira.example.com" + PATH, "https://jira.example.com" + PATH),
    ("https://jira.example.com/jira" + PATH + "/", "https://jira.example.com/jira" + PATH),
])
def test_consumer_info_url(given: str, expected: str) -> None:
    assert consumer_info_url(given) == expected


@pytest.mark.parametrize(("given", "words"), [
    ("", "base url"),
    ("jira.example.com", "scheme"),
    ("ftp://jira.example.com", "http"),
    ("https://", "no host"),
    ("https://user:secret@jira.example.com", "user name or password"),
    ("https://jira.example.com/#frag", "fragment"),
    ("https://jira.example.com/?a=1", "query"),
    ("https://jira.example.com:99999", "port"),
    ("https://jira example.com", "spaces"),
])
def test_consumer_info_url_refusals(given: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        consumer_info_url(given)
    assert info.value.field == "url"
    assert words in str(info.value).lower()
    if "secret" in given:
        assert "secret" not in str(info.value)


# --- fetch against a local server -------------------------------------------------------


XML = "application/xml"
SIMPLE: dict[str, tuple[int, bytes, str, dict[str, str]]] = {
    "good": (200, GOOD, "application/xml; charset=UTF-8", {}),
    "textxml": (200, GOOD, "text/xml", {}),
    "atom": (200, GOOD, "application/vnd.example+xml", {}),
    "e404": (404, b"<html>Not found</html>", "text/html", {}),
    "e500": (500, b"oops", "text/plain", {}),
    "e401": (401, b"login", "text/plain", {}),
    "redirect": (302, b"", XML, {"Location": "/good" + PATH}),
    "html": (200, b"<html><form>Log in</form></html>", "text/html; charset=utf-8", {}),
    "json": (200, b"{}", "application/json", {}),
    "bigcl": (200, b"<consumer>" + b" " * (300 * 1024) + b"</consumer>", XML, {}),
    "gzip": (200, gzip.compress(GOOD), XML, {"Content-Encoding": "gzip"}),
    "gzipbomb": (200, gzip.compress(b" " * (20 * 1024 * 1024)), XML,
                 {"Content-Encoding": "gzip"}),
    "bomb": (200, BILLION_LAUGHS, XML, {}),
    "missing": (200, doc(name=None), XML, {}),
    "badkey": (200, doc(public_key="c3NoLXJzYSBub3QgYSBrZXk="), XML, {}),
}


class Handler(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send(self, status: int, body: bytes, ctype: str = "application/xml",
             headers: dict[str, str] | None = None, length: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length:
            self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        Handler.seen.append(dict(self.headers.items()))
        route = self.path.split("/")[1]
        if not self.path.endswith(PATH) and route not in ("loop",):
            self.send(404, b"nope", "text/plain")
        elif route in SIMPLE:
            status, body, ctype, headers = SIMPLE[route]
            self.send(status, body, ctype, headers)
        elif route == "loop":
            self.send(302, b"", headers={"Location": self.path})
        elif route == "noctype":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(GOOD)
        elif route == "bignocl":
            self.send(200, b"<consumer>" + b" " * (2 * 1024 * 1024), length=False)
        elif route in ("chunked", "bigchunked"):
            self.protocol_version = "HTTP/1.1"
            self.send(200, b"", headers={"Transfer-Encoding": "chunked", "Connection": "close"},
                      length=False)
            body = GOOD if route == "chunked" else b"<consumer>" + b" " * (1024 * 1024)
            for i in range(0, len(body), 100):
                piece = body[i : i + 100]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif route == "trickle":
            self.send(200, b"", headers={"Content-Length": str(len(GOOD))}, length=False)
            for byte in GOOD[:100]:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)
        elif route == "hang":
            time.sleep(2)
            self.send(200, GOOD)
        else:
            self.send(404, b"unknown route", "text/plain")

    def handle(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def fetch(url: str, **kwargs: float) -> FetchResult:
    """Fetch from the test server on loopback: private addresses allowed."""
    return fetch_consumer_info(url, allow_private=True, **kwargs)  # type: ignore[arg-type]


def fetch_error(url: str, **kwargs: float) -> str:
    with pytest.raises(FetchError) as info:
        fetch(url, **kwargs)
    assert info.value.field == "url"
    return str(info.value)


def test_fetch_from_loopback_is_refused_by_default(server: str) -> None:
    Handler.seen.clear()
    with pytest.raises(FetchRefusedError) as info:
        fetch_consumer_info(server + "/good")
    assert str(info.value) == (
        f"Did not fetch {server}/good{PATH}: 127.0.0.1 is a loopback address (this machine): "
        "refused before connecting (by default only public addresses are fetched from, so "
        "that a URL cannot reach services inside this network).")
    assert info.value.refusal.allowable
    assert Handler.seen == []


def test_fetch_good(server: str) -> None:
    Handler.seen.clear()
    result = fetch(server + "/good/")
    assert isinstance(result, FetchResult)
    assert result.url == result.final_url == server + "/good" + PATH
    assert result.status == 200
    assert result.content_type == "application/xml; charset=UTF-8"
    assert 0 <= result.elapsed < 5
    assert result.redirects == ()
    assert result.size == len(GOOD)
    assert result.doc.key == "jira:13549426"
    headers = {k.lower(): v for k, v in Handler.seen[-1].items()}
    assert headers["accept"] == "application/xml"
    assert headers["user-agent"] == f"tui-oauth/{__version__}"
    assert "authorization" not in headers and "cookie" not in headers


@pytest.mark.parametrize("route", ["textxml", "atom", "gzip", "chunked"])
def test_fetch_other_xml_types_and_gzip(server: str, route: str) -> None:
    assert fetch(f"{server}/{route}").doc.name == "JIRA"


def test_fetch_full_consumer_info_url_accepted(server: str) -> None:
    assert fetch(server + "/good" + PATH).doc.key == "jira:13549426"


def test_fetch_sends_no_credentials(server: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login admin password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    Handler.seen.clear()
    requests.get(server + "/good" + PATH, timeout=5)  # plain requests would send them
    assert "Authorization" in Handler.seen[-1]
    fetch(server + "/good")
    fetch(server + "/redirect")
    assert len(Handler.seen) == 4
    assert all("Authorization" not in h for h in Handler.seen[1:])


def test_fetch_redirect(server: str) -> None:
    result = fetch(server + "/redirect")
    assert result.url == server + "/redirect" + PATH
    assert result.final_url == server + "/good" + PATH
    assert result.redirects == (server + "/good" + PATH,)
    assert result.doc.name == "JIRA"


def test_fetch_redirect_loop(server: str) -> None:
    Handler.seen.clear()
    message = fetch_error(server + "/loop")
    assert "more than 5 redirects" in message.lower()
    assert len(Handler.seen) == 6


@pytest.mark.parametrize(("route", "words"), [
    ("e404", "404 Not Found"),
    ("e500", "500 Internal Server Error"),
    ("e401", "401 Unauthorized"),
])
def test_fetch_bad_status(server: str, route: str, words: str) -> None:
    message = fetch_error(f"{server}/{route}")
    assert words in message
    assert "base URL" in message


@pytest.mark.parametrize(("route", "words"), [
    ("html", "text/html"),
    ("json", "application/json"),
    ("noctype", "no Content-Type"),
])
def test_fetch_not_xml(server: str, route: str, words: str) -> None:
    message = fetch_error(f"{server}/{route}")
    assert f"Got {words}" in message and "instead of XML" in message
    assert "base URL" in message
    if route == "html":
        assert "login page or a proxy error?" in message


@pytest.mark.parametrize("route", ["bigcl", "bignocl", "gzipbomb", "bigchunked"])
def test_fetch_too_large(server: str, route: str) -> None:
    started = time.monotonic()
    message = fetch_error(f"{server}/{route}")
    assert "larger than 256 KiB" in message and "check the URL" in message
    assert time.monotonic() - started < 5


def test_fetch_small_limit(server: str) -> None:
    assert len(GOOD) > 200
    assert "larger than 200 bytes" in fetch_error(server + "/good", max_bytes=200)


def test_fetch_trickle_is_cut_at_the_timeout(server: str) -> None:
    started = time.monotonic()
    message = fetch_error(server + "/trickle", timeout=0.5)
    assert time.monotonic() - started < 2
    assert "did not send the whole document within 0.5 s" in message
    assert "try again" in message.lower()


def test_fetch_no_answer_times_out(server: str) -> None:
    started = time.monotonic()
    message = fetch_error(server + "/hang", timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert "did not send its answer's status line and headers within 0.5 s" in message


def test_fetch_entity_expansion(server: str) -> None:
    message = fetch_error(server + "/bomb")
    assert "DTD" in message and "refused" in message


def test_fetch_missing_fields_keep_their_field(server: str) -> None:
    with pytest.raises(ValidationError) as info:
        fetch(server + "/missing")
    assert not isinstance(info.value, FetchError)
    assert info.value.field == "name"
    assert "<name> is missing" in str(info.value)
    assert "/missing" + PATH in str(info.value)


def test_fetch_bad_key(server: str) -> None:
    with pytest.raises(ValidationError) as info:
        fetch(server + "/badkey")
    assert [e.field for e in info.value.errors] == ["public_key"]


def test_fetch_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    message = fetch_error(f"http://127.0.0.1:{port}")
    assert f"Connection refused by 127.0.0.1:{port}" in message
    assert "application is running" in message


def test_fetch_tls_error(server: str) -> None:
    message = fetch_error(server.replace("http://", "https://"), timeout=3)
    assert message.startswith("TLS error talking to 127.0.0.1")
    assert "http://" in message


def test_fetch_dns_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_name(host: str, *args: object, **kwargs: object) -> list[object]:
        assert host == "tui-oauth-test.invalid"
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)  # no real DNS query
    message = fetch_error("https://tui-oauth-test.invalid", timeout=5)
    assert "Could not resolve the host name tui-oauth-test.invalid" in message
    assert "DNS" in message


def test_fetch_validates_url_first() -> None:
    with pytest.raises(ValidationError) as info:
        fetch_consumer_info("https://user:pw@example.com")
    assert info.value.field == "url"
