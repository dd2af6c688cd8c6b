"""Outgoing fetches: the address policy, the checked connection and the one deadline.

No test here sends anything beyond 127.0.0.0/8: the ``net`` fixture answers DNS for
test host names (``*.test``) with any address, and replaces ``socket.socket.connect``
with a check that lets only loopback destinations through and fails the test on any
other, so a refusal test proves that the address was refused before any connection.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from textual.widgets import Checkbox

from tests.helpers import consumer_info_xml, rsa_key, spki_b64
from tests.tui_support import open_console, settle
from tui_oauth.core.consumer_info_fetch import FetchRefusedError, fetch_consumer_info
from tui_oauth.core.errors import FetchError
from tui_oauth.core.net import (
    AddressPolicy,
    Deadline,
    ProxyRefusedError,
    classify,
    guarded_session,
)
from tui_oauth.core.store import Store
from tui_oauth.tui.screens.consumer_by_url import ConsumerByUrlScreen
from tui_oauth.tui.widgets.field import Field

PATH = "/plugins/servlet/oauth/consumer-info"
KEY = "jira:guard-1"
GOOD = consumer_info_xml(KEY, "JIRA", spki_b64(rsa_key(0)))
SLACK = 2.5  # generous: the deadline is honoured, not 120 s later
ONLY_LOOPBACK = AddressPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))


# --- the address policy (pure) ---------------------------------------------------------

# address, rule, admitted by allow_private
TABLE = [
    ("127.0.0.1", "loopback", True),
    ("127.8.9.10", "loopback", True),
    ("10.0.0.1", "private", True),
    ("172.16.5.4", "private", True),
    ("172.31.255.255", "private", True),
    ("192.168.1.10", "private", True),
    ("100.64.0.1", "shared", True),
    ("169.254.1.1", "link-local", True),
    ("169.254.169.254", "cloud-metadata", False),
    ("169.254.170.2", "cloud-metadata", False),
    ("100.100.100.200", "cloud-metadata", False),
    ("0.0.0.0", "unspecified", False),  # noqa: S104
    ("0.1.2.3", "reserved", False),
    ("224.0.0.251", "multicast", False),
    ("239.255.255.250", "multicast", False),
    ("255.255.255.255", "broadcast", False),
    ("240.0.0.1", "reserved", False),
    ("192.0.0.8", "reserved", False),
    ("192.0.2.10", "documentation", False),
    ("198.18.0.1", "reserved", False),
    ("192.88.99.1", "transition", False),
    ("::1", "loopback", True),
    ("::", "unspecified", False),
    ("fd00::1", "unique-local", True),
    ("fc12:3456::1", "unique-local", True),
    ("fe80::1", "link-local", True),
    ("fe80::1%1", "link-local", True),
    ("fec0::1", "site-local", True),
    ("fd00:ec2::254", "cloud-metadata", False),
    ("ff02::1", "multicast", False),
    ("2001:db8::1", "documentation", False),
    ("100::1", "reserved", False),
    ("5f00::1", "reserved", False),
    ("::ffff:127.0.0.1", "loopback", True),
    ("::ffff:10.0.0.1", "private", True),
    ("::ffff:169.254.169.254", "cloud-metadata", False),
    ("64:ff9b::a9fe:a9fe", "cloud-metadata", False),  # NAT64 of 169.254.169.254
    ("64:ff9b::a00:1", "private", True),  # NAT64 of 10.0.0.1
    ("2002:7f00:1::1", "loopback", False),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::1", "cloud-metadata", False),  # 6to4 of 169.254.169.254
    ("2002:808:808::1", "transition", False),  # 6to4 of a public address: retired
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private", False),  # Teredo, client 10.0.0.1
    ("::a00:1", "private", False),  # IPv4-compatible 10.0.0.1
    ("::7f00:1", "loopback", False),  # IPv4-compatible 127.0.0.1
]
PUBLIC = ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450::1",
          "::ffff:8.8.8.8", "64:ff9b::808:808", "172.32.0.1", "100.128.0.1"]


@pytest.mark.parametrize(("address", "rule", "allowable"), TABLE)
def test_policy_refuses_each_kind(address: str, rule: str, allowable: bool) -> None:
    refusal = AddressPolicy().refusal(address)
    assert refusal is not None, address
    assert (refusal.rule, refusal.allowable) == (rule, allowable)
    assert refusal == classify(address)
    assert (AddressPolicy(allow_private=True).refusal(address) is None) == allowable
    message = refusal.describe("intranet.test")
    assert message.startswith(f"intranet.test resolves to {address}")
    assert "refused before connecting" in message
    assert "--" not in message  # no front end's option names in the core


@pytest.mark.parametrize("address", PUBLIC)
def test_policy_admits_public_addresses(address: str) -> None:
    assert classify(address) is None
    assert AddressPolicy().refusal(address) is None


def test_policy_allowed_networks_are_exact() -> None:
    assert ONLY_LOOPBACK.refusal("127.0.0.1") is None
    assert ONLY_LOOPBACK.refusal("127.0.0.2") is not None
    assert ONLY_LOOPBACK.refusal("::ffff:127.0.0.1") is not None  # another form: not listed
    assert ONLY_LOOPBACK.refusal("10.0.0.1") is not None


def test_metadata_message_says_where_credentials_live() -> None:
    refusal = classify("169.254.169.254")
    assert refusal is not None
    assert refusal.describe("169.254.169.254") == (
        "169.254.169.254 is link-local (169.254.0.0/16), where cloud instance metadata "
        "(AWS, GCP, Azure, OpenStack, Oracle) and its credentials live: refused before "
        "connecting (addresses like it are refused even when private addresses are allowed).")


# --- the fake network ------------------------------------------------------------------


@dataclass
class Net:
    """DNS answers for test names, and a record of every connection attempt."""

    names: dict[str, Callable[[], list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)
    connects: list[tuple[str, int]] = field(default_factory=list)
    refused_connects: list[tuple[str, int]] = field(default_factory=list)

    def answer(self, name: str, *addresses: str) -> None:
        self.names[name] = lambda: list(addresses)

    def getaddrinfo(self, host: str, port: Any, family: int = 0, type: int = 0,
                    proto: int = 0, flags: int = 0) -> list[tuple[Any, ...]]:
        self.lookups.append(host)
        try:
            ipaddress.ip_address(host)
            addresses = [host]
        except ValueError:
            if host not in self.names:
                raise AssertionError(
                    f"the test resolved a name it did not set up: {host}") from None
            addresses = self.names[host]()
        result: list[tuple[Any, ...]] = []
        for a in addresses:
            if ipaddress.ip_address(a).version == 6:
                result.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, int(port), 0, 0)))
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port))))
        return result


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> Iterator[Net]:
    fake = Net()
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        host, port = address[0], address[1]
        if isinstance(host, str) and ipaddress.ip_address(host.split("%")[0]).is_loopback \
                and not host.startswith("::ffff:"):
            fake.connects.append((host, port))
            real_connect(sock, address)
            return
        fake.refused_connects.append((host, port))
        raise AssertionError(f"a connection to {host}:{port} was attempted")

    def connect_ex(sock: socket.socket, address: Any) -> int:
        raise AssertionError(f"connect_ex({address}) was called")

    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield fake
    assert fake.refused_connects == []


# --- loopback servers ------------------------------------------------------------------


class Server:
    """An HTTP server on 127.0.0.1 with a few routes (below); it records requests."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        self.redirect_to = ""
        self.dripped = 0
        self.sni: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Host", "")))
                route = self.path.split("/")[1]
                if route == "redirect":
                    self.send_response(302)
                    self.send_header("Location", server.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif route == "drip":
                    self.drip()
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(GOOD)))
                    self.end_headers()
                    self.wfile.write(GOOD)

            def drip(self) -> None:
                """The status line and a header, one byte every 50 ms: for at most 8 s."""
                head = b"HTTP/1.1 200 OK\r\nX-Slow" + b"w" * 300 + b": 1\r\n"
                stop = time.monotonic() + 8
                with contextlib.suppress(OSError):
                    for byte in head:
                        if time.monotonic() > stop:
                            break
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        server.dripped += 1
                        time.sleep(0.05)

            def handle(self) -> None:
                with contextlib.suppress(OSError):
                    super().handle()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: self.sni.append(name)
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True,
                                                do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)

    def url(self, route: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}/{route}"


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def refused(url: str, **kwargs: Any) -> FetchRefusedError:
    with pytest.raises(FetchRefusedError) as info:
        fetch_consumer_info(url, **kwargs)
    assert info.value.field == "url"
    return info.value


# --- refusals happen before any connection ---------------------------------------------


@pytest.mark.parametrize(("address", "rule", "allowable"), TABLE)
def test_fetch_refuses_each_kind_before_connecting(net: Net, address: str, rule: str,
                                                   allowable: bool) -> None:
    net.answer("intranet.test", address)
    err = refused("http://intranet.test:8080", timeout=2)
    assert err.refusal.rule == rule and err.refusal.allowable == allowable
    assert f"intranet.test resolves to {address}" in str(err)
    assert net.lookups == ["intranet.test"] and net.connects == []
    if not allowable:  # private addresses allowed or not, never these
        err = refused("http://intranet.test:8080", timeout=2, allow_private=True)
        assert err.refusal.rule == rule
        assert net.connects == []


@pytest.mark.parametrize("literal", ["127.0.0.1", "[::1]", "169.254.169.254", "10.0.0.1",
                                     "[::ffff:169.254.169.254]", "0.0.0.0",  # noqa: S104
                                     "[fd00::1]"])
def test_fetch_refuses_literal_addresses(net: Net, literal: str) -> None:
    err = refused(f"http://{literal}:8080/jira")
    assert str(err).startswith(f"Did not fetch http://{literal}:8080/jira{PATH}: "
                               f"{literal.strip('[]')} ")
    assert " resolves to " not in str(err)
    assert net.connects == []


def test_one_refused_answer_refuses_the_name(net: Net) -> None:
    # A public answer beside an internal one is what DNS rebinding looks like.
    net.answer("both.test", "93.184.216.34", "10.1.2.3")
    err = refused("https://both.test")
    assert err.refusal.rule == "private" and "10.1.2.3" in str(err)
    assert net.connects == []


def test_the_message_is_the_same_whether_the_port_is_open(net: Net, server: Server) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    net.answer("inside.test", "127.0.0.1")
    open_msg = str(refused(f"http://inside.test:{server.port}"))
    closed_msg = str(refused(f"http://inside.test:{closed}"))
    assert open_msg.replace(str(server.port), "PORT") == closed_msg.replace(str(closed), "PORT")
    assert net.connects == [] and server.requests == []


def test_dns_rebinding_cannot_slip_through(net: Net, server: Server) -> None:
    answers = iter([["127.0.0.1"]])
    net.names["rebind.test"] = lambda: next(answers, ["169.254.169.254"])
    result = fetch_consumer_info(f"http://rebind.test:{server.port}", policy=ONLY_LOOPBACK)
    assert result.doc.key == KEY
    assert net.lookups == ["rebind.test"]  # resolved once...
    assert net.connects == [("127.0.0.1", server.port)]  # ...and connected to what was checked
    assert server.requests == [(PATH, f"rebind.test:{server.port}")]  # the name, as Host


# --- redirects -------------------------------------------------------------------------


def test_redirect_to_metadata_is_refused_even_with_allow_private(net: Net,
                                                                  server: Server) -> None:
    net.answer("metadata.test", "169.254.169.254")
    server.redirect_to = "http://metadata.test/latest/meta-data/iam/"
    err = refused(server.url("redirect"), allow_private=True)
    assert str(err).startswith("Did not fetch http://metadata.test/latest/meta-data/iam/ "
                               f"(redirected from {server.url('redirect')}{PATH}): "
                               "metadata.test resolves to 169.254.169.254, which is link-local")
    assert err.refusal.rule == "cloud-metadata" and not err.refusal.allowable
    assert net.connects == [("127.0.0.1", server.port)]
    assert len(server.requests) == 1


def test_redirect_to_a_private_address_is_refused(net: Net, server: Server) -> None:
    net.answer("wiki.test", "10.20.30.40")
    server.redirect_to = "http://wiki.test:8090/"
    err = refused(server.url("redirect"), policy=ONLY_LOOPBACK)
    assert "wiki.test resolves to 10.20.30.40, which is a private address" in str(err)
    assert err.refusal.allowable
    assert net.connects == [("127.0.0.1", server.port)]


def test_redirect_to_a_mapped_loopback_literal_is_refused(net: Net, server: Server) -> None:
    server.redirect_to = f"http://[::ffff:127.0.0.1]:{server.port}/good"
    err = refused(server.url("redirect"), policy=ONLY_LOOPBACK)
    assert "::ffff:127.0.0.1 (the IPv4-mapped form of 127.0.0.1) is a loopback" in str(err)
    assert len(server.requests) == 1


def test_redirect_between_allowed_servers(net: Net, server: Server) -> None:
    net.answer("jira.test", "127.0.0.1")
    server.redirect_to = server.url("good", host="jira.test") + PATH
    result = fetch_consumer_info(server.url("redirect"), allow_private=True)
    assert result.final_url == server.url("good", host="jira.test") + PATH
    assert result.doc.key == KEY


# --- one deadline for the whole fetch --------------------------------------------------


def test_headers_dripped_a_byte_at_a_time_end_at_the_deadline(
        net: Net, server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetch_consumer_info(server.url("drip"), timeout=1.5, allow_private=True)
    took = time.monotonic() - started
    assert took < 1.5 + SLACK, took
    assert str(info.value) == (
        "127.0.0.1 accepted the connection but did not send its answer's status line and "
        "headers within 1.5 s: it may be overloaded or deliberately slow, or the URL points "
        "at the wrong service. Try again, or allow a longer timeout.")
    assert server.dripped > 5  # it did send something, slowly
    # The cut-off headers are the fetch's to report, not urllib3's (a logged traceback).
    assert "Failed to parse headers" not in caplog.text


def test_slow_dns_ends_at_the_deadline(net: Net) -> None:
    def slow() -> list[str]:
        time.sleep(4)  # bounded: the abandoned lookup ends by itself
        return ["93.184.216.34"]

    net.names["slow.test"] = slow
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetch_consumer_info("https://slow.test", timeout=1)
    assert time.monotonic() - started < 1 + SLACK
    assert str(info.value).startswith(
        "Could not resolve the host name slow.test within 1 s (the DNS lookup did not finish)")
    assert net.connects == []


def test_tls_handshake_dripped_ends_at_the_deadline(net: Net) -> None:
    sent = [0]
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def drip() -> None:  # a TLS record header, then a byte every 50 ms: at most 8 s
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                stop = time.monotonic() + 8
                for byte in b"\x16\x03\x03\x40\x00" + b"\x02" * 400:
                    if time.monotonic() > stop:
                        break
                    conn.sendall(bytes([byte]))
                    sent[0] += 1
                    time.sleep(0.05)

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(FetchError) as info:
            fetch_consumer_info(f"https://127.0.0.1:{port}", timeout=1.5, allow_private=True)
    finally:
        listener.close()
    assert time.monotonic() - started < 1.5 + SLACK
    assert "did not complete the TLS handshake within 1.5 s" in str(info.value)
    assert sent[0] > 5


def test_deadline_shuts_down_what_it_watches() -> None:
    a, b = socket.socketpair()
    with a, b, Deadline(0.3) as deadline:
        deadline.watch(a)
        a.settimeout(5)
        started = time.monotonic()
        assert a.recv(10) == b""  # woken by the shutdown, not by the 5 s timeout
        assert time.monotonic() - started < 0.3 + SLACK
        assert deadline.expired and deadline.fired


# --- no proxy --------------------------------------------------------------------------


def test_environment_proxies_are_not_used(net: Net, server: Server,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = Server()
    proxy.thread.start()
    try:
        for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(var, f"http://127.0.0.1:{proxy.port}")
        for var in ("no_proxy", "NO_PROXY"):
            monkeypatch.delenv(var, raising=False)
        assert fetch_consumer_info(server.url("good"), allow_private=True).doc.key == KEY
    finally:
        proxy.httpd.shutdown()
        proxy.httpd.server_close()
    assert proxy.requests == [] and len(server.requests) == 1


def test_an_explicit_proxy_is_refused(net: Net) -> None:
    with Deadline(2) as deadline, guarded_session(AddressPolicy(), deadline) as session, \
            pytest.raises(ProxyRefusedError):
        session.get("http://127.0.0.1:9/", proxies={"http": "http://127.0.0.1:9"}, timeout=1)
    assert net.connects == []


# --- TLS still checks the host name ----------------------------------------------------


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_tls_verifies_the_host_name_not_the_address(net: Net, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = _self_signed(tmp_path, "consumer.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv = Server(tls=context)
    srv.thread.start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    net.answer("consumer.test", "127.0.0.1")
    net.answer("other.test", "127.0.0.1")
    try:
        result = fetch_consumer_info(srv.url("good", "consumer.test", "https"),
                                     allow_private=True, timeout=5)
        assert result.doc.key == KEY
        assert srv.sni[-1] == "consumer.test"
        with pytest.raises(FetchError) as info:
            fetch_consumer_info(srv.url("good", "other.test", "https"), allow_private=True,
                                timeout=5)
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
    assert str(info.value).startswith("TLS error talking to other.test: certificate verify "
                                      "failed (Hostname mismatch")
    assert srv.sni[-1] == "other.test"


# --- the console's option --------------------------------------------------------------


async def test_console_names_its_own_option(tui_store: Store, server: Server) -> None:
    async with open_console(tui_store, size=(100, 40)) as (app, pilot):
        await pilot.press("a", "u")
        assert isinstance(app.screen, ConsumerByUrlScreen)
        await pilot.press(*server.url("good"), "enter")
        await settle(pilot)
        error = app.screen.query_one("#field-url", Field).error
        assert "127.0.0.1 is a loopback address (this machine): refused before connecting" \
            in error
        assert "tick 'Allow private addresses (an intranet server)' and fetch again" in error
        assert "--allow-private" not in error
        assert server.requests == []
        app.screen.query_one("#allow_private", Checkbox).value = True
        await pilot.press("ctrl+f")
        await settle(pilot)
        assert app.screen.query_one("#field-url", Field).error == ""
        assert not app.screen.query_one("#save").disabled
    assert len(server.requests) == 1
