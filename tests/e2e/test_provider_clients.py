"""What real clients send (issue 7, items 15 to 21), over real HTTP on 127.0.0.1.

requests-oauthlib signs what it can; what it cannot send (protocol parameters split
between header and body, raw ``[`` ``]``, an upper-case form content type, another
scheme's Authorization header beside OAuth parameters) is signed by hand with
``oauthlib.oauth1.Client`` and sent byte for byte with ``http.client``, as the
clients in the field send it. Authlib is a second, independent client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
from typing import Any
from urllib.parse import parse_qs, quote, quote_from_bytes, urlsplit

import pytest
import requests
from oauthlib.oauth1 import SIGNATURE_TYPE_BODY, SIGNATURE_TYPE_QUERY, Client
from requests_oauthlib import OAuth1

from tests.provider_support import (
    OAUTH,
    Server,
    add_hmac_consumer,
    add_rsa_consumer,
    auth,
    authorize_page,
    csrf_of,
    oauth_session,
    problem_of,
)
from tui_oauth.core.registry import services
from tui_oauth.core.services.tokens import Decision
from tui_oauth.core.store import Store

RSA_KEY = "jira:6f1c0d2e-1111-4a2b-9c3d-5e6f7a8b9c0d"
HMAC_KEY = "www.google.com"
SECRET = "kd94hf93k423kf44"
FORM = "application/x-www-form-urlencoded"


class Answer:
    def __init__(self, status: int, headers: dict[str, str], text: str) -> None:
        self.status_code, self.headers, self.text = status, headers, text

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.text, keep_blank_values=True).items()}


def send_raw(srv: Server, method: str, url: str, headers: dict[str, str],
             body: bytes | str = b"") -> Answer:
    """Send exactly this request target, headers and body (no client-side re-encoding)."""
    parts = urlsplit(srv.base)
    target = url[len(srv.public):] if url.startswith(srv.public) else url
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        data = body.encode() if isinstance(body, str) else body
        conn.request(method, target, body=data or None, headers=headers)
        r = conn.getresponse()
        return Answer(r.status, {k.lower(): v for k, v in r.getheaders()},
                      r.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def expect(answer: Any, problem: str | None, status: int) -> dict[str, str]:
    assert answer.status_code == status, (answer.status_code, answer.text)
    assert problem_of(answer) == problem, answer.text
    return {k: v[0] for k, v in parse_qs(answer.text).items()}


def header_without(header: str, name: str) -> str:
    """An OAuth Authorization header less one parameter."""
    items = [i.strip() for i in header[len("OAuth "):].split(",")]
    return "OAuth " + ", ".join(i for i in items if not i.startswith(name + "="))


# 15. Protocol parameters split between the header and the body or query --------------


def test_protocol_parameters_split_between_header_body_and_query(server: Server,
                                                                 sqlite_store: Store) -> None:
    """The Node pattern: oauth_callback / oauth_verifier in the body, the rest in the
    header; and oauth_token in the query. Each parameter once: accepted."""
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET)
    callback = "https://client.example/cb?s=a%20b"  # oauthlib decodes it twice to sign it
    url = server.url(OAUTH + "/request-token")
    body = "oauth_callback=" + quote(callback, safe="")
    _, headers, _ = Client(HMAC_KEY, client_secret=SECRET).sign(
        url, "POST", body, {"Content-Type": FORM})
    assert "oauth_callback" not in headers["Authorization"]
    r = send_raw(server, "POST", url, headers, body)
    assert r.status_code == 200, r.text
    rt = r.form
    assert rt["oauth_callback_confirmed"] == "true"
    decision = services(sqlite_store).tokens.authorize(rt["oauth_token"], "alice")
    assert (decision.redirect_url() or "").startswith(callback + "&oauth_token=")

    url = server.url(OAUTH + "/access-token")
    body = "oauth_verifier=" + quote(decision.verifier, safe="")
    _, headers, _ = Client(HMAC_KEY, client_secret=SECRET, resource_owner_key=rt["oauth_token"],
                           resource_owner_secret=rt["oauth_token_secret"]).sign(
        url, "POST", body, {"Content-Type": FORM})
    r = send_raw(server, "POST", url, headers, body)
    assert r.status_code == 200, r.text
    at = r.form

    # oauth_token in the query, everything else in the header.
    url = server.url("/rest/whoami?oauth_token=" + quote(at["oauth_token"], safe=""))
    _, headers, _ = Client(HMAC_KEY, client_secret=SECRET,
                           resource_owner_secret=at["oauth_token_secret"]).sign(url)
    assert "oauth_token=" not in headers["Authorization"]
    r = send_raw(server, "GET", url, headers)
    assert r.status_code == 200, r.text
    assert json.loads(r.text)["user"] == "alice"


def test_a_protocol_parameter_given_twice_is_refused_naming_it(server: Server,
                                                               sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True)
    url = server.url("/rest/whoami")
    _, headers, _ = Client(HMAC_KEY, client_secret=SECRET).sign(url)
    # In the header and the query:
    r = send_raw(server, "GET", url + "?oauth_nonce=again", headers)
    body = expect(r, "parameter_rejected", 400)
    assert body["oauth_parameters_rejected"] == "oauth_nonce"
    assert "oauth_nonce" in r.headers["www-authenticate"]
    # In the header and the body, and twice in the body:
    r = send_raw(server, "POST", url, {**headers, "Content-Type": FORM},
                 "oauth_consumer_key=x&oauth_verifier=a&oauth_verifier=b")
    body = expect(r, "parameter_rejected", 400)
    assert body["oauth_parameters_rejected"].split("&") == ["oauth_consumer_key",
                                                             "oauth_verifier"]


# 16. The callback's own query, as it was sent ---------------------------------------


CALLBACK = "https://client.example/cb;v=1?state=a%20b&flag&x=1;y=2&raw=%FF%FE&p=a+b#frag"


def test_the_callback_query_is_kept_exactly_as_sent(server: Server, sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET)
    s = oauth_session(HMAC_KEY, secret=SECRET, callback_uri=CALLBACK)
    rt = s.fetch_request_token(server.url(OAUTH + "/request-token"))
    page = authorize_page(server, rt["oauth_token"])
    csrf = csrf_of(page)
    r = requests.post(server.url(OAUTH + "/authorize"), allow_redirects=False, timeout=10,
                      data={"oauth_token": rt["oauth_token"], "csrf": csrf, "decision": "allow"},
                      headers={"X-Remote-User": "bob"})
    assert r.status_code == 303, r.text
    assert services(sqlite_store).tokens.list(type="request").rows[0].state == "authorized"
    location = r.headers["Location"]
    prefix = "https://client.example/cb;v=1?state=a%20b&flag&x=1;y=2&raw=%FF%FE&p=a+b&oauth_token="
    assert location.startswith(prefix), location
    assert location.endswith("#frag"), location
    added = parse_qs(location[len(prefix) - len("oauth_token="):].split("#")[0])
    assert added["oauth_token"] == [rt["oauth_token"]] and len(added["oauth_verifier"][0]) > 10


@pytest.mark.parametrize(("callback", "expected"), [
    ("https://c.example/cb", "https://c.example/cb?oauth_token=T&oauth_verifier=V%2B1"),
    ("https://c.example/cb?", "https://c.example/cb?oauth_token=T&oauth_verifier=V%2B1"),
    ("https://c.example/cb?a=1&", "https://c.example/cb?a=1&oauth_token=T&oauth_verifier=V%2B1"),
    ("https://c.example/cb?flag#f?x", "https://c.example/cb?flag&oauth_token=T&oauth_verifier=V%2B1#f?x"),
    ("https://c.example/cb?s=%E9t%C3%A9", "https://c.example/cb?s=%E9t%C3%A9&oauth_token=T&oauth_verifier=V%2B1"),
])
def test_redirect_url_appends_to_the_query_as_sent(callback: str, expected: str) -> None:
    decision = Decision("T", "k", "n", "u", True, "V+1", callback)
    assert decision.redirect_url() == expected
    assert Decision("T", "k", "n", "u", True, "V", "oob").redirect_url() is None


# 17-20. The signature base string, as the clients compute it -------------------------


def test_a_realm_in_the_query_or_body_is_signed_beside_the_header_realm(
        server: Server, sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True)
    a = OAuth1(HMAC_KEY, client_secret=SECRET, realm="Photos")
    r = requests.get(server.url("/rest/whoami?realm=shelf&x=1"), auth=a, timeout=10)
    assert r.status_code == 200, r.text
    r = requests.post(server.url("/rest/whoami"), auth=a, data={"realm": "shelf"}, timeout=10)
    assert r.status_code == 200, r.text
    # The query's realm is signed: changing it breaks the signature.
    prepared = requests.Request("GET", server.url("/rest/whoami?realm=shelf"), auth=a).prepare()
    assert prepared.url is not None
    prepared.url = prepared.url.replace("realm=shelf", "realm=other")
    with requests.Session() as http_:
        expect(http_.send(prepared, timeout=10), "signature_invalid", 401)


@pytest.mark.parametrize("scheme", ["Basic dXNlcjpwYXNz", "Bearer abc.def.ghi", "Negotiate YII="])
@pytest.mark.parametrize("where", [SIGNATURE_TYPE_QUERY, SIGNATURE_TYPE_BODY])
def test_an_authorization_header_of_another_scheme_is_ignored(
        server: Server, sqlite_store: Store, scheme: str, where: str) -> None:
    """A fronting proxy's Basic credentials beside OAuth parameters in the query or body."""
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True,
                      two_lo_execute_as="svc")
    a = OAuth1(HMAC_KEY, client_secret=SECRET, signature_type=where)
    method = "GET" if where == SIGNATURE_TYPE_QUERY else "POST"
    prepared = requests.Request(method, server.url("/rest/whoami"), auth=a,
                                data={"x": "1"} if method == "POST" else None).prepare()
    prepared.headers["Authorization"] = scheme
    with requests.Session() as http_:
        r = http_.send(prepared, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["user"] == "svc"


def test_raw_brackets_in_the_query_are_their_percent_encoded_selves(
        server: Server, sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True)
    signed_for = server.url("/rest/whoami?filter%5Bname%5D=x&page[size]=2".replace(
        "[", "%5B").replace("]", "%5D"))
    _, headers, _ = Client(HMAC_KEY, client_secret=SECRET).sign(signed_for)
    r = send_raw(server, "GET", "/rest/whoami?filter[name]=x&page[size]=2", headers)
    assert r.status_code == 200, r.text
    # ... and they are signed: another value does not verify.
    r = send_raw(server, "GET", "/rest/whoami?filter[name]=y&page[size]=2", headers)
    expect(r, "signature_invalid", 401)


@pytest.mark.parametrize("content_type", ["Application/X-WWW-Form-URLEncoded",
                                          "APPLICATION/X-WWW-FORM-URLENCODED; Charset=UTF-8",
                                          "application/x-www-form-urlencoded ; charset=utf-8"])
def test_an_upper_case_form_content_type_puts_the_body_in_the_base_string(
        server: Server, sqlite_store: Store, content_type: str) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True)
    url = server.url("/rest/whoami")
    _, headers, body = Client(HMAC_KEY, client_secret=SECRET).sign(
        url, "POST", "amount=10&to=bob", {"Content-Type": FORM})
    headers["Content-Type"] = content_type
    r = send_raw(server, "POST", url, headers, body)
    assert r.status_code == 200, r.text
    _, headers, body = Client(HMAC_KEY, client_secret=SECRET).sign(
        url, "POST", "amount=10&to=bob", {"Content-Type": FORM})
    headers["Content-Type"] = content_type
    r = send_raw(server, "POST", url, headers, body.replace("amount=10", "amount=1000"))
    expect(r, "signature_invalid", 401)


def test_octets_that_are_not_utf8_are_signed_as_octets(server: Server,
                                                       sqlite_store: Store) -> None:
    """``%FF`` in a query is the octet 0xFF in the base string (oauthlib's client cannot
    sign that: the base string is computed here by hand, section 3.4.1)."""
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True)
    oauth = [("oauth_consumer_key", HMAC_KEY), ("oauth_nonce", "n0nce-octets"),
             ("oauth_signature_method", "HMAC-SHA1"), ("oauth_timestamp", str(int(time.time())))]
    octets = [(b"q", b"\xff\xfe"), (b"name", "café".encode())]
    pairs = sorted([(quote_from_bytes(k, safe=""), quote_from_bytes(v, safe=""))
                    for k, v in octets]
                   + [(quote(k, safe=""), quote(v, safe="")) for k, v in oauth])
    normalized = "&".join(f"{k}={v}" for k, v in pairs)
    base = "&".join(["GET", quote(server.url("/rest/whoami"), safe=""),
                     quote(normalized, safe="")])
    sig = base64.b64encode(hmac.new(f"{SECRET}&".encode(), base.encode(),
                                    hashlib.sha1).digest()).decode()
    header = "OAuth " + ", ".join(f'{k}="{quote(v, safe="")}"'
                                  for k, v in [*oauth, ("oauth_signature", sig)])
    r = send_raw(server, "GET", "/rest/whoami?q=%FF%FE&name=caf%C3%A9", {"Authorization": header})
    assert r.status_code == 200, r.text


# 21. Problem codes ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/rest/whoami", OAUTH + "/request-token",
                                  OAUTH + "/access-token"])
def test_no_oauth_at_all_gets_a_bare_401_challenge(server: Server, path: str) -> None:
    realm = server.public  # a quoted-string (RFC 2617), not percent-encoded
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        r = requests.post(server.url(path), headers=headers, timeout=10)
        assert r.status_code == 401, r.text
        assert r.headers["WWW-Authenticate"] == f'OAuth realm="{realm}"'
        assert problem_of(r) is None
    # An OAuth header that says nothing is OAuth: the parameters are absent.
    r = requests.post(server.url(path), headers={"Authorization": "OAuth"}, timeout=10)
    expect(r, "parameter_absent", 400)


@pytest.mark.parametrize("timestamp", [lambda: str(int(time.time() * 1000)),
                                       lambda: "999999999", lambda: str(int(time.time()) - 3600),
                                       lambda: "0", lambda: "99999999999999999999"])
def test_a_timestamp_out_of_range_is_refused_with_the_accepted_range(
        server: Server, sqlite_store: Store, timestamp: Any) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True)
    r = requests.get(server.url("/rest/whoami"), timeout=10,
                     auth=auth(HMAC_KEY, secret=SECRET, timestamp=timestamp()))
    body = expect(r, "timestamp_refused", 400)
    low, high = (int(x) for x in body["oauth_acceptable_timestamps"].split("-"))
    assert low < time.time() < high
    assert "oauth_acceptable_timestamps" in r.headers["WWW-Authenticate"]


def test_a_malformed_timestamp_is_a_rejected_parameter(server: Server,
                                                       sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True)
    for bad in ("12.5", "-1700000000", "0" + str(int(time.time()))):
        r = requests.get(server.url("/rest/whoami"), timeout=10,
                         auth=auth(HMAC_KEY, secret=SECRET, timestamp=bad))
        body = expect(r, "parameter_rejected", 400)
        assert body["oauth_parameters_rejected"] == "oauth_timestamp"


def test_oauth_body_hash_is_checked_against_the_body(server: Server,
                                                     sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True)
    payload = json.dumps({"amount": 10})
    a = OAuth1(HMAC_KEY, client_secret=SECRET, force_include_body=True)
    prepared = requests.Request("POST", server.url("/rest/whoami"), data=payload, auth=a,
                                headers={"Content-Type": "application/json"}).prepare()
    authorization: str | bytes = prepared.headers["Authorization"]  # bytes from requests-oauthlib
    assert b"oauth_body_hash" in (authorization if isinstance(authorization, bytes)
                                  else authorization.encode())
    with requests.Session() as http_:
        assert http_.send(prepared, timeout=10).status_code == 200
        prepared = requests.Request("POST", server.url("/rest/whoami"), data=payload, auth=a,
                                    headers={"Content-Type": "application/json"}).prepare()
        prepared.body = json.dumps({"amount": 1000})
        prepared.headers["Content-Length"] = str(len(prepared.body))
        body = expect(http_.send(prepared, timeout=10), "signature_invalid", 401)
    assert "oauth_body_hash" in body["oauth_problem_advice"]


# Authlib: a second, independent client -------------------------------------------------


@pytest.fixture
def authlib_ok(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Authlib refuses http:// unless told; the test server is loopback http."""
    authlib_client = pytest.importorskip("authlib.integrations.requests_client")
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    return authlib_client


@pytest.mark.parametrize("method", ["HMAC-SHA1", "RSA-SHA1"])
def test_authlib_completes_the_dance(server: Server, sqlite_store: Store, authlib_ok: Any,
                                     method: str) -> None:
    if method == "RSA-SHA1":
        pem = add_rsa_consumer(sqlite_store, RSA_KEY, two_lo_allowed=True)
        key, signing = RSA_KEY, {"signature_method": "RSA-SHA1", "rsa_key": pem}
    else:
        add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True)
        key, signing = HMAC_KEY, {"client_secret": SECRET}
    s = authlib_ok.OAuth1Session(key, redirect_uri="https://client.example/cb?s=a%20b",
                                 **signing)
    rt = s.fetch_request_token(server.url(OAUTH + "/request-token"))
    decision = services(sqlite_store).tokens.authorize(rt["oauth_token"], "carol")
    assert decision.redirect_url() == ("https://client.example/cb?s=a%20b&oauth_token="
                                       f"{rt['oauth_token']}&oauth_verifier="
                                       f"{quote(decision.verifier, safe='')}")
    at = s.fetch_access_token(server.url(OAUTH + "/access-token"), verifier=decision.verifier)
    # (Not ?realm=: Authlib leaves a query's realm out of the base string; RFC 5849
    # section 3.4.1.3.1 and oauthlib keep it, and so does the provider.)
    r = s.get(server.url("/rest/whoami?filter=a%20b&x=%5B1%5D"), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["user"] == "carol" and at["oauth_session_handle"]
    # A form body, and a JSON body with oauth_body_hash:
    r = s.post(server.url("/rest/whoami"), data={"a": "1", "b": "x y"}, timeout=10)
    assert r.status_code == 200, r.text
    r = s.post(server.url("/rest/whoami"), data=b'{"a": 1}', timeout=10,
               headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    # 2LO
    two = authlib_ok.OAuth1Session(key, realm="Photos", **signing)
    r = two.get(server.url("/rest/whoami"), timeout=10)
    assert r.status_code == 200 and r.json()["mode"] == "2lo", r.text
