"""The Authlib provider harness (tests/authlib_provider.py) is a real, strict
OAuth 1.0a provider: requests-oauthlib, a client nobody here wrote either,
completes the 3-legged dance with it (HMAC-SHA1 and RSA-SHA1, oob and an http
callback), and what must be refused is refused."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from oauthlib.oauth1 import SIGNATURE_RSA
from requests_oauthlib import OAuth1, OAuth1Session
from requests_oauthlib.oauth1_session import TokenRequestDenied

from tests.authlib_provider import (
    AuthlibProvider,
    authlib_provider,
    hmac_client,
    public_pem_of,
    rsa_client,
)

HMAC_KEY = "hmac-consumer"
HMAC_SECRET = "kd94hf93k423kf44"
RSA_KEY = "rsa-consumer"
TIMEOUT = 5


def new_private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def rsa_private_pem() -> str:
    return new_private_pem()


@pytest.fixture
def provider(rsa_private_pem: str) -> Iterator[AuthlibProvider]:
    clients = [hmac_client(HMAC_KEY, HMAC_SECRET),
               rsa_client(RSA_KEY, public_pem_of(rsa_private_pem))]
    with authlib_provider(clients=clients) as p:
        yield p


def hmac_session(**kw: str) -> OAuth1Session:
    return OAuth1Session(HMAC_KEY, client_secret=HMAC_SECRET, **kw)


def rsa_session(private_pem: str, **kw: str) -> OAuth1Session:
    return OAuth1Session(RSA_KEY, signature_method=SIGNATURE_RSA, rsa_key=private_pem, **kw)


def dance_oob(p: AuthlibProvider, session: OAuth1Session, user: str = "alice") -> dict[str, str]:
    """Request token (oob), approve as ``user``, access token."""
    temporary = session.fetch_request_token(p.request_token_url, timeout=TIMEOUT)
    assert temporary["oauth_callback_confirmed"] == "true"
    verifier = p.approve(temporary["oauth_token"], user)
    token: dict[str, str] = session.fetch_access_token(p.access_token_url, verifier=verifier,
                                                       timeout=TIMEOUT)
    return token


def refused(response: requests.Response, problem: str) -> None:
    assert response.status_code != 200, response.text
    assert dict(parse_qsl(response.text)).get("error") == problem, response.text


# --------------------------------------------------------------------------- the dance


def test_hmac_sha1_oob_dance_and_whoami(provider: AuthlibProvider) -> None:
    session = hmac_session(callback_uri="oob")
    token = dance_oob(provider, session, "alice")
    assert set(token) >= {"oauth_token", "oauth_token_secret"}
    r = session.get(provider.resource_url("/api/whoami"), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json() == {"client_id": HMAC_KEY, "user": "alice", "signature_method": "HMAC-SHA1"}
    # The signed form body of a POST is checked too.
    r = session.post(provider.resource_url("/api/whoami"), data={"a": "b c", "d": "é"},
                     timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert provider.access_tokens() == {token["oauth_token"]: (HMAC_KEY, "alice")}


def test_rsa_sha1_http_callback_dance_through_the_authorize_endpoint(
    provider: AuthlibProvider, rsa_private_pem: str
) -> None:
    callback = "http://127.0.0.1:9/callback?state=x"
    session = rsa_session(rsa_private_pem, callback_uri=callback)
    temporary = session.fetch_request_token(provider.request_token_url, timeout=TIMEOUT)
    assert temporary["oauth_callback_confirmed"] == "true"

    # The "browser": the provider approves as its signed-in user and redirects.
    auth_url = session.authorization_url(provider.authorize_url)
    r = requests.get(auth_url, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 302
    location = r.headers["Location"]
    assert location.startswith("http://127.0.0.1:9/callback?")
    params = dict(parse_qsl(urlsplit(location).query))
    assert params["state"] == "x"
    assert params["oauth_token"] == temporary["oauth_token"]

    session.parse_authorization_response(location)
    session.fetch_access_token(provider.access_token_url, timeout=TIMEOUT)
    r = session.get(provider.resource_url("/api/whoami"), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json() == {"client_id": RSA_KEY, "user": "alice", "signature_method": "RSA-SHA1"}


def test_oob_through_the_authorize_endpoint_shows_the_verifier(
    provider: AuthlibProvider,
) -> None:
    session = hmac_session(callback_uri="oob")
    temporary = session.fetch_request_token(provider.request_token_url, timeout=TIMEOUT)
    r = requests.get(session.authorization_url(provider.authorize_url), timeout=TIMEOUT)
    assert r.status_code == 200
    verifier = r.text.rsplit(":", 1)[1].strip()
    assert r.url.startswith(provider.oob_url)
    token = session.fetch_access_token(provider.access_token_url, verifier=verifier,
                                       timeout=TIMEOUT)
    assert provider.access_tokens()[token["oauth_token"]] == (HMAC_KEY, "alice")
    assert temporary["oauth_token"] not in provider.access_tokens()


# --------------------------------------------------------------------------- refusals


def test_wrong_signature_is_refused(provider: AuthlibProvider, rsa_private_pem: str) -> None:
    r = requests.post(provider.request_token_url,
                      auth=OAuth1(HMAC_KEY, client_secret="not-the-secret", callback_uri="oob"),
                      timeout=TIMEOUT)
    assert r.status_code == 401
    refused(r, "invalid_signature")

    # A key pair the provider does not know, under a registered RSA consumer key.
    other = new_private_pem()
    r = requests.post(provider.request_token_url,
                      auth=OAuth1(RSA_KEY, signature_method=SIGNATURE_RSA, rsa_key=other,
                                  callback_uri="oob"),
                      timeout=TIMEOUT)
    refused(r, "invalid_signature")

    # The right secret with a tampered parameter, on the protected resource.
    session = hmac_session(callback_uri="oob")
    token = dance_oob(provider, session)
    good = requests.Request("GET", provider.resource_url("/api/whoami") + "?q=1",
                            auth=OAuth1(HMAC_KEY, HMAC_SECRET, token["oauth_token"],
                                        token["oauth_token_secret"])).prepare()
    assert good.url is not None
    good.url = good.url.replace("q=1", "q=2")
    r = requests.Session().send(good, timeout=TIMEOUT)
    refused(r, "invalid_signature")

    # The wrong token secret.
    r = requests.get(provider.resource_url("/api/whoami"),
                     auth=OAuth1(HMAC_KEY, HMAC_SECRET, token["oauth_token"], "wrong"),
                     timeout=TIMEOUT)
    refused(r, "invalid_signature")


def test_signature_method_must_match_the_clients_credentials(
    provider: AuthlibProvider, rsa_private_pem: str
) -> None:
    # An HMAC consumer signing RSA-SHA1, and PLAINTEXT (not allowed by default).
    r = requests.post(provider.request_token_url,
                      auth=OAuth1(HMAC_KEY, signature_method=SIGNATURE_RSA,
                                  rsa_key=rsa_private_pem, callback_uri="oob"),
                      timeout=TIMEOUT)
    refused(r, "unsupported_signature_method")
    r = requests.post(provider.request_token_url,
                      auth=OAuth1(HMAC_KEY, HMAC_SECRET, signature_method="PLAINTEXT",
                                  callback_uri="oob"),
                      timeout=TIMEOUT)
    refused(r, "unsupported_signature_method")


def test_wrong_verifier_is_refused_and_burns_the_request_token(
    provider: AuthlibProvider,
) -> None:
    session = hmac_session(callback_uri="oob")
    temporary = session.fetch_request_token(provider.request_token_url, timeout=TIMEOUT)
    verifier = provider.approve(temporary["oauth_token"], "alice")
    with pytest.raises(TokenRequestDenied) as denied:
        session.fetch_access_token(provider.access_token_url, verifier=verifier + "x",
                                   timeout=TIMEOUT)
    assert denied.value.status_code == 400
    assert "oauth_verifier" in denied.value.response.text
    # Authlib deletes the request token on any failed exchange.
    with pytest.raises(TokenRequestDenied) as denied:
        session.fetch_access_token(provider.access_token_url, verifier=verifier,
                                   timeout=TIMEOUT)
    assert denied.value.status_code == 401
    assert provider.access_tokens() == {}


def test_unapproved_and_expired_request_tokens_are_refused(provider: AuthlibProvider) -> None:
    session = hmac_session(callback_uri="oob")
    session.fetch_request_token(provider.request_token_url, timeout=TIMEOUT)
    with pytest.raises(TokenRequestDenied):
        session.fetch_access_token(provider.access_token_url, verifier="guess", timeout=TIMEOUT)

    session = hmac_session(callback_uri="oob")
    temporary = session.fetch_request_token(provider.request_token_url, timeout=TIMEOUT)
    verifier = provider.approve(temporary["oauth_token"], "alice")
    provider.expire_request_token(temporary["oauth_token"])
    with pytest.raises(TokenRequestDenied) as denied:
        session.fetch_access_token(provider.access_token_url, verifier=verifier,
                                   timeout=TIMEOUT)
    assert denied.value.status_code == 401
    assert "invalid_token" in denied.value.response.text
    with pytest.raises(KeyError):
        provider.approve(temporary["oauth_token"], "alice")


def test_replayed_nonce_is_refused(provider: AuthlibProvider) -> None:
    session = hmac_session(callback_uri="oob")
    token = dance_oob(provider, session)
    prepared = requests.Request(
        "GET", provider.resource_url("/api/whoami"),
        auth=OAuth1(HMAC_KEY, HMAC_SECRET, token["oauth_token"], token["oauth_token_secret"]),
    ).prepare()
    with requests.Session() as http:
        first = http.send(prepared, timeout=TIMEOUT)
        second = http.send(prepared, timeout=TIMEOUT)
    assert first.status_code == 200, first.text
    refused(second, "invalid_nonce")

    replay = requests.Request(
        "POST", provider.request_token_url,
        auth=OAuth1(HMAC_KEY, HMAC_SECRET, callback_uri="oob")).prepare()
    with requests.Session() as http:
        assert http.send(replay, timeout=TIMEOUT).status_code == 200
        refused(http.send(replay, timeout=TIMEOUT), "invalid_nonce")


def test_unknown_client_and_unknown_or_revoked_token_are_refused(
    provider: AuthlibProvider,
) -> None:
    r = requests.post(provider.request_token_url,
                      auth=OAuth1("nobody", "whatever", callback_uri="oob"), timeout=TIMEOUT)
    assert r.status_code == 401
    refused(r, "invalid_client")

    session = hmac_session(callback_uri="oob")
    token = dance_oob(provider, session)
    # The same access token used under another consumer key.
    r = requests.get(provider.resource_url("/api/whoami"),
                     auth=OAuth1("nobody", "whatever", token["oauth_token"],
                                 token["oauth_token_secret"]), timeout=TIMEOUT)
    refused(r, "invalid_client")
    provider.revoke(token["oauth_token"])
    r = session.get(provider.resource_url("/api/whoami"), timeout=TIMEOUT)
    assert r.status_code == 401
    refused(r, "invalid_token")
    # No credentials at all.
    r = requests.get(provider.resource_url("/api/whoami"), timeout=TIMEOUT)
    refused(r, "missing_required_parameter")


def test_request_token_needs_post_and_a_callback(provider: AuthlibProvider) -> None:
    r = requests.get(provider.request_token_url,
                     auth=OAuth1(HMAC_KEY, HMAC_SECRET, callback_uri="oob"), timeout=TIMEOUT)
    assert r.status_code == 405
    r = requests.post(provider.request_token_url, auth=OAuth1(HMAC_KEY, HMAC_SECRET),
                      timeout=TIMEOUT)
    refused(r, "missing_required_parameter")


def test_authorize_endpoint_without_a_user_refuses(rsa_private_pem: str) -> None:
    with authlib_provider(clients=[hmac_client(HMAC_KEY, HMAC_SECRET)],
                          authorize_as=None) as p:
        session = hmac_session(callback_uri="oob")
        temporary = session.fetch_request_token(p.request_token_url, timeout=TIMEOUT)
        r = requests.get(session.authorization_url(p.authorize_url), timeout=TIMEOUT)
        assert r.status_code == 403
        assert p.approve(temporary["oauth_token"], "bob")  # the programmatic way still works


def test_stops_cleanly_and_frees_the_port() -> None:
    with authlib_provider() as p:
        port = urlsplit(p.base_url).port
        assert urlsplit(p.base_url).hostname == "127.0.0.1"
        assert requests.get(p.base_url + "/nothing", timeout=TIMEOUT).status_code == 404
    assert port is not None
    with socket.socket() as s, pytest.raises(OSError):
        s.settimeout(1)
        s.connect(("127.0.0.1", port))
