"""The consumer side (issue 8) over real HTTP on 127.0.0.1: tui-oauth as a consumer of
tui-oauth's own provider, and of tiny loopback servers that misbehave."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlmodel import select

from tests.helpers import all_text, audit_actions
from tests.keyring_backends import MemoryKeyring
from tests.provider_support import OAUTH, Server, add_hmac_consumer, running_server
from tui_oauth.core.errors import (
    ProviderError,
    ProviderProblemError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnreachableError,
)
from tui_oauth.core.models import HeldToken
from tui_oauth.core.provider.settings import ProviderSettings
from tui_oauth.core.registry import services
from tui_oauth.core.services.connect import ConnectStep
from tui_oauth.core.store import Store, open_store
from tui_oauth.core.timeutil import utcnow

SECRET = "kd94hf93k423kf44"


def endpoints(base: str) -> dict[str, str]:
    return {"request_token_url": base + OAUTH + "/request-token",
            "authorization_url": base + OAUTH + "/authorize?x=1",
            "access_token_url": base + OAUTH + "/access-token"}


def add_rsa_pair(store: Store, srv: Server, name: str = "self") -> None:
    """The store trusts itself: our Consumer Info as a consumer, the server as provider."""
    info = services(store).consumer_info.get()
    services(store).consumers.add(key=info.key, name="Ourselves", public_key=info.public_key,
                                  two_lo_allowed=True, two_lo_impersonation=True)
    services(store).providers.add(name=name, consumer_key=info.key, signature_method="RSA-SHA1",
                                  allow_private=True, **endpoints(srv.base))


def add_hmac_pair(store: Store, srv: Server, name: str = "hmac") -> None:
    add_hmac_consumer(store, "partner", SECRET)
    services(store).providers.add(name=name, consumer_key="partner", shared_secret=SECRET,
                                  allow_private=True, **endpoints(srv.base))


def connect(store: Store, name: str, user: str = "alice", local: str = "ops") -> ConnectStep:
    side = services(store).consumer_side
    step = side.request_token(name)
    decision = services(store).tokens.authorize(step.token, user)
    side.exchange(step, decision.verifier, local)
    return step


def test_rsa_connect_and_call(sqlite_store: Store, server: Server) -> None:
    add_rsa_pair(sqlite_store, server)
    side = services(sqlite_store).consumer_side
    step = side.request_token("self")
    assert step.authorization_url.startswith(server.base + OAUTH + "/authorize?x=1&oauth_token=")
    decision = services(sqlite_store).tokens.authorize(step.token, "alice")
    held = side.exchange(step, decision.verifier, "ops")
    assert held.user == "ops" and held.renewable and held.expires_at is not None
    r = side.call("self", "GET", "/rest/whoami", local_user="ops")
    assert r.status == 200, r.body
    who = json.loads(r.body)
    info_key = services(sqlite_store).consumer_info.get().key
    assert who["user"] == "alice" and who["consumer_key"] == info_key
    [t] = side.tokens("self")
    assert t.user == "ops" and t.last_used_at is not None
    assert "provider.connect" in audit_actions(sqlite_store)
    # re-connecting replaces that user's token
    connect(sqlite_store, "self", "bob", "ops")
    [t2] = side.tokens("self")
    assert t2.issued_at >= t.issued_at
    assert json.loads(side.call("self", "GET", "/rest/whoami", local_user="ops").body)[
        "user"] == "bob"


def test_hmac_connect_form_call_and_secrets_kept_out(sqlite_store: Store,
                                                      server: Server) -> None:
    add_hmac_pair(sqlite_store, server)
    connect(sqlite_store, "hmac")
    r = services(sqlite_store).consumer_side.call("hmac", "POST", server.base + "/rest/whoami",
                                                  data=[("a", "b c")], local_user="ops")
    assert r.status == 200 and json.loads(r.body)["consumer_key"] == "partner"
    with sqlite_store.session() as s:
        row = s.exec(select(HeldToken)).one()
    secret = services(sqlite_store).consumer_side._held(
        services(sqlite_store).providers.get("hmac"), "ops")[1]
    text = all_text(sqlite_store)
    assert secret not in text and SECRET not in text and row.token in text


def test_renewal_with_session_handle(sqlite_store: Store, server: Server) -> None:
    add_rsa_pair(sqlite_store, server)
    connect(sqlite_store, "self")
    side = services(sqlite_store).consumer_side
    with sqlite_store.transaction() as uow:  # our copy says it expired: renewed first
        row = uow.session.exec(select(HeldToken)).one()
        old = row.token
        row.expires_at = utcnow() - timedelta(seconds=1)
        uow.session.add(row)
    r = side.call("self", "GET", "/rest/whoami", local_user="ops")
    assert r.status == 200 and r.renewed
    with sqlite_store.session() as s:
        assert s.exec(select(HeldToken)).one().token != old
    assert "provider.renew" in audit_actions(sqlite_store)


def test_renewal_when_the_provider_says_expired(sqlite_url: str,
                                                memory_keyring: MemoryKeyring) -> None:
    store = open_store(sqlite_url, secrets_backend=memory_keyring)
    with running_server(store, settings=ProviderSettings(access_token_ttl=60)) as srv:
        add_rsa_pair(store, srv)
        connect(store, "self")
        from tui_oauth.core.models import Token
        with store.transaction() as uow:  # the provider's copy expires; ours does not know
            for t in uow.session.exec(select(Token).where(Token.type == "access")).all():
                t.expires_at = utcnow() - timedelta(seconds=1)
                uow.session.add(t)
        r = services(store).consumer_side.call("self", "GET", "/rest/whoami", local_user="ops")
        assert r.status == 200 and r.renewed
    store.close()


def test_revocation_seen_as_token_revoked(sqlite_store: Store, server: Server) -> None:
    add_rsa_pair(sqlite_store, server)
    connect(sqlite_store, "self")
    with sqlite_store.session() as s:
        token = s.exec(select(HeldToken)).one().token
    services(sqlite_store).tokens.revoke(token)
    r = services(sqlite_store).consumer_side.call("self", "GET", "/rest/whoami", local_user="ops")
    assert r.status == 401 and r.problem == "token_revoked" and r.advice


def test_two_legged_as_user(sqlite_store: Store, server: Server) -> None:
    add_rsa_pair(sqlite_store, server)
    r = services(sqlite_store).consumer_side.call("self", "GET", "/rest/whoami", two_legged=True,
                                                  as_user="carol")
    assert r.status == 200, r.body
    assert json.loads(r.body)["user"] == "carol"


def test_wrong_verifier_and_forget(sqlite_store: Store, server: Server) -> None:
    add_rsa_pair(sqlite_store, server)
    side = services(sqlite_store).consumer_side
    step = side.request_token("self")
    services(sqlite_store).tokens.authorize(step.token, "alice")
    with pytest.raises(ProviderProblemError) as err:
        side.exchange(step, "not-the-verifier", "ops")
    assert err.value.problem == "token_rejected" and "connect again" in str(err.value)
    # The provider's advice reads as words (it travels percent-encoded in the header).
    assert err.value.advice and " " in err.value.advice and "%20" not in str(err.value)
    # Not approved yet: says so, rather than blaming the verifier.
    pending = side.request_token("self")
    with pytest.raises(ProviderProblemError) as err:
        side.exchange(pending, "whatever", "ops")
    assert err.value.problem == "permission_unknown"
    assert "has not approved the request yet" in str(err.value) and "%20" not in str(err.value)
    connect(sqlite_store, "self")
    assert side.forget("self", "nobody") == 0
    assert side.forget("self") == 1 and side.tokens("self") == []


def test_signature_invalid_shows_base_string(sqlite_store: Store, server: Server) -> None:
    add_hmac_consumer(sqlite_store, "partner", SECRET)
    services(sqlite_store).providers.add(name="bad", consumer_key="partner", shared_secret="wrong",
                                         allow_private=True, **endpoints(server.base))
    with pytest.raises(ProviderProblemError) as err:
        services(sqlite_store).consumer_side.request_token("bad")
    assert err.value.problem == "signature_invalid"
    assert err.value.base_string and err.value.base_string.startswith("POST&http%3A%2F%2F127")
    assert err.value.base_string in str(err.value) and "wrong" not in err.value.base_string


def test_test_connection(sqlite_store: Store, server: Server) -> None:
    add_rsa_pair(sqlite_store, server)
    results = list(services(sqlite_store).consumer_side.test("self"))
    assert [r.passed for r in results] == [True] * 5, results
    assert results[3].name == "Clock"
    # The URL checks ask whether each URL answers, unsigned: the provider (here ours)
    # records no refusal against our consumer key for them (the unsigned ones are no
    # consumer's, in its log of unknown keys).
    server.engine.refusal_log.flush()
    key = services(sqlite_store).consumer_info.get().key
    refused = list(services(sqlite_store).refusals.iter())
    assert refused and not [r for r in refused if r.consumer_key == key], refused


def test_private_address_refused_without_allow_private(sqlite_store: Store,
                                                       server: Server) -> None:
    info = services(sqlite_store).consumer_info.get()
    services(sqlite_store).providers.add(name="p", consumer_key=info.key,
                                         signature_method="RSA-SHA1",
                                         **endpoints(server.base))
    with pytest.raises(ProviderUnreachableError, match="loopback"):
        services(sqlite_store).consumer_side.request_token("p")
    results = list(services(sqlite_store).consumer_side.test("p"))
    assert not any(r.passed for r in results)


# --- misbehaving providers ------------------------------------------------------------

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


@contextmanager
def tiny_server(handle: Handler) -> Iterator[str]:
    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            handle(self)

        do_GET = do_POST

        def log_message(self, *args: object) -> None:
            pass

    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the client hung up on purpose (deadline, size limit)

    srv = S(("127.0.0.1", 0), H)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def answer(status: int, body: bytes, ctype: str = "application/x-www-form-urlencoded",
           headers: dict[str, str] | None = None) -> Handler:
    def handle(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response_only(status)
        if "Date" not in (headers or {}):
            h.send_header("Date", h.date_time_string())
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
    return handle


def provider_at(store: Store, base: str) -> None:
    services(store).providers.add(name="odd", consumer_key="k", shared_secret=SECRET,
                                  allow_private=True, **endpoints(base))


@pytest.mark.parametrize(("handler", "error", "words"), [
    (answer(500, b"Internal trouble here", "text/plain"), ProviderResponseError,
     "500 Internal Server Error to the request token request: Internal trouble here"),
    (answer(200, b"<!DOCTYPE html><html><body>Log in</body></html>", "text/html"),
     ProviderResponseError, "HTML page (a login page?)"),
    (answer(200, b"oauth_token_secret=x&oauth_callback_confirmed=true"),
     ProviderResponseError, "has no oauth_token"),
    (answer(200, b"oauth_token=t&oauth_token_secret=x"), ProviderResponseError,
     "oauth_callback_confirmed=true is missing"),
    (answer(401, b"oauth_problem=timestamp_refused&oauth_problem_advice=Check+clock",
            headers={"Date": "Mon, 01 Jan 2001 00:00:00 GMT"}), ProviderProblemError,
     "timestamp_refused (Check clock). From its Date header, our clock is about"),
    (answer(401, b"", headers={"WWW-Authenticate": 'OAuth realm="x", '
                               'oauth_problem="consumer_key_unknown"'}),
     ProviderProblemError, "consumer_key_unknown"),
])
def test_failures_in_words(sqlite_store: Store, handler: Handler, error: type[Exception],
                           words: str) -> None:
    with tiny_server(handler) as base:
        provider_at(sqlite_store, base)
        with pytest.raises(error) as err:
            services(sqlite_store).consumer_side.request_token("odd")
    assert words in str(err.value)


def test_expired_request_token(sqlite_url: str, memory_keyring: MemoryKeyring) -> None:
    store = open_store(sqlite_url, secrets_backend=memory_keyring)
    with running_server(store) as srv:
        add_rsa_pair(store, srv)
        step = services(store).consumer_side.request_token("self")
        decision = services(store).tokens.authorize(step.token, "alice")
        from tui_oauth.core.models import Token
        with store.transaction() as uow:
            row = uow.session.exec(select(Token).where(Token.token == step.token)).one()
            row.expires_at = utcnow() - timedelta(seconds=1)
            uow.session.add(row)
        with pytest.raises(ProviderProblemError) as err:
            services(store).consumer_side.exchange(step, decision.verifier, "ops")
        assert err.value.problem in ("token_expired", "token_rejected")
        assert "connect again" in str(err.value)
    store.close()


def test_slow_provider_hits_the_deadline(sqlite_store: Store) -> None:
    def slow(h: http.server.BaseHTTPRequestHandler) -> None:
        time.sleep(1.5)
        answer(200, b"oauth_token=t")(h)

    with tiny_server(slow) as base:
        provider_at(sqlite_store, base)
        started = time.monotonic()
        with pytest.raises(ProviderTimeoutError, match=r"0\.5 s"):
            services(sqlite_store).consumer_side.request_token("odd", timeout=0.5)
        assert time.monotonic() - started < 1.4


def test_huge_answer_hits_the_size_limit(sqlite_store: Store) -> None:
    def huge(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/x-www-form-urlencoded")
        h.end_headers()
        chunk = b"a" * 65536
        try:
            for _ in range(20):  # 1.25 MiB, no Content-Length
                h.wfile.write(chunk)
        except OSError:
            pass

    with tiny_server(huge) as base:
        provider_at(sqlite_store, base)
        with pytest.raises(ProviderResponseError, match="larger than 1 MiB"):
            services(sqlite_store).consumer_side.request_token("odd")
        # a call truncates instead
        services(sqlite_store).consumer_side.forget("odd")
        r = services(sqlite_store).consumer_side.call("odd", "GET", base + "/x", two_legged=True,
                                                      max_bytes=1000)
        assert r.truncated and len(r.body) == 1000


def test_unreachable(sqlite_store: Store) -> None:
    with tiny_server(answer(200, b"")) as base:
        pass  # closed: nothing listens there any more
    provider_at(sqlite_store, base)
    with pytest.raises(ProviderUnreachableError, match="refused"):
        services(sqlite_store).consumer_side.request_token("odd")


# --- an independent provider: Authlib's ----------------------------------------------


def test_against_authlib_provider(sqlite_store: Store) -> None:
    """Our HMAC-SHA1 and RSA-SHA1 signatures, token parsing and the dance, judged by
    Authlib's OAuth 1.0a server (tests/authlib_provider.py)."""
    import base64

    from tests.authlib_provider import authlib_provider, hmac_client, rsa_client

    info = services(sqlite_store).consumer_info.get()
    body = base64.b64decode(info.public_key)
    b64 = base64.encodebytes(body).decode().replace("\n", "")
    pem = ("-----BEGIN PUBLIC KEY-----\n"
           + "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
           + "\n-----END PUBLIC KEY-----\n")
    side = services(sqlite_store).consumer_side
    with authlib_provider(clients=[hmac_client("authlib-ck", SECRET),
                                   rsa_client(info.key, pem)]) as p:
        urls = {"request_token_url": p.request_token_url, "authorization_url": p.authorize_url,
                "access_token_url": p.access_token_url}
        services(sqlite_store).providers.add(name="al-hmac", consumer_key="authlib-ck",
                                             shared_secret=SECRET, allow_private=True, **urls)
        services(sqlite_store).providers.add(name="al-rsa", consumer_key=info.key,
                                             signature_method="RSA-SHA1", allow_private=True,
                                             **urls)
        for name in ("al-hmac", "al-rsa"):
            step = side.request_token(name)
            side.exchange(step, p.approve(step.token, "alice"), "ops")
            r = side.call(name, "GET", p.resource_url(), local_user="ops")
            assert r.status == 200, r.body
            assert json.loads(r.body)["user"] == "alice"
            r = side.call(name, "POST", p.resource_url(), data=[("q", "a b&c")],
                          local_user="ops")
            assert r.status == 200, r.body
        step = side.request_token("al-hmac")
        p.approve(step.token, "alice")
        with pytest.raises(ProviderError) as err:
            side.exchange(step, "wrong-verifier", "ops")
        assert "wrong-verifier" not in str(err.value)


def test_plaintext_only_over_https(sqlite_store: Store) -> None:
    from tui_oauth.core.errors import ProviderError as Refused

    services(sqlite_store).providers.add(name="plain", consumer_key="k", shared_secret=SECRET,
                                         signature_method="PLAINTEXT",
                                         **endpoints("https://sp.example.com"))
    with pytest.raises(Refused, match="only https URLs"):  # refused before any connection
        services(sqlite_store).consumer_side.call("plain", "GET", "http://127.0.0.1:9/x",
                                                  two_legged=True)


def test_authorization_url_is_a_hyperlink_only_on_a_terminal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from tui_oauth.cli.provider_connect import _link

    url = "https://sp.example.com/authorize?oauth_token=abc"
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert _link(url) == url
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    linked = _link(url)
    assert linked.startswith(f"\x1b]8;;{url}\x1b\\{url}\x1b]8;;\x1b\\") and "\x1b]52;c;" in linked
    assert _link(url + "\x1b[31m") == url + "\\x1b[31m"  # outside text is never raw


def test_raw_body_sent_as_is_with_body_hash(sqlite_store: Store, server: Server) -> None:
    """A JSON body is not signed itself; with body_hash, oauth_body_hash is, and our own
    provider (oauthlib) still accepts the signature."""
    add_rsa_pair(sqlite_store, server)
    connect(sqlite_store, "self")
    for body_hash in (False, True):
        r = services(sqlite_store).consumer_side.call(
            "self", "POST", "/rest/whoami", body=b'{"a": 1}', local_user="ops",
            headers=[("Content-Type", "application/json")], body_hash=body_hash)
        assert r.status == 200, r.body
    seen: list[str] = []

    def record(h: http.server.BaseHTTPRequestHandler) -> None:
        seen.append(h.headers.get("Authorization", ""))
        answer(200, b"{}", "application/json")(h)

    with tiny_server(record) as base:
        services(sqlite_store).consumer_side.call("self", "POST", base + "/x", body=b"",
                                                  two_legged=True,
                                                  body_hash=True)
    # base64(SHA-1 of the empty body), percent-encoded in the header
    assert 'oauth_body_hash="2jmj7l5rSw0yVb%2FvlWAYkK%2FYBwk%3D"' in seen[0]
