"""The provider over real HTTP (uvicorn on 127.0.0.1) with requests-oauthlib as the client:
the three-legged dance (RSA-SHA1, HMAC-SHA1; oob and callback), session renewal, 2LO,
and every refusal with its oauth_problem and status."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from oauthlib.oauth1 import SIGNATURE_PLAINTEXT, SIGNATURE_TYPE_BODY
from requests_oauthlib import OAuth1
from sqlmodel import Session, select

from tests.keyring_backends import MemoryKeyring
from tests.provider_support import (
    OAUTH,
    Server,
    SessionHandleClient,
    add_hmac_consumer,
    add_rsa_consumer,
    auth,
    authorize_page,
    csrf_of,
    expire_token,
    oauth_session,
    problem_of,
    running_server,
)
from tui_oauth.core.models import Token
from tui_oauth.core.provider.settings import ProviderSettings
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store
from tui_oauth.core.timeutil import utcnow

RSA_KEY = "jira:6f1c0d2e-1111-4a2b-9c3d-5e6f7a8b9c0d"
HMAC_KEY = "www.google.com"
SECRET = "kd94hf93k423kf44"


def expect_problem(response: requests.Response, problem: str, status: int) -> dict[str, str]:
    assert response.status_code == status, (response.status_code, response.text)
    assert problem_of(response) == problem, response.text
    header = response.headers.get("WWW-Authenticate", "")
    assert header.startswith("OAuth realm="), header
    assert f'oauth_problem="{problem}"' in header, header
    return {k: v[0] for k, v in parse_qs(response.text).items()}


def dance(srv: Server, store: Store, key: str, **signing: Any) -> dict[str, str]:
    """Request token (oob), approved by the CLI service, access token: returns it."""
    s = oauth_session(key, callback_uri="oob", **signing)
    rt = s.fetch_request_token(srv.url(OAUTH + "/request-token"))
    assert rt["oauth_callback_confirmed"] == "true"
    decision = services(store).tokens.authorize(rt["oauth_token"], "alice")
    s2 = oauth_session(key, resource_owner_key=rt["oauth_token"],
                       resource_owner_secret=rt["oauth_token_secret"],
                       verifier=decision.verifier, **signing)
    at = s2.fetch_access_token(srv.url(OAUTH + "/access-token"))
    return dict(at)


def whoami(srv: Server, key: str, token: dict[str, str] | None, **signing: Any
           ) -> requests.Response:
    extra = {}
    if token is not None:
        extra = {"resource_owner_key": token["oauth_token"],
                 "resource_owner_secret": token["oauth_token_secret"]}
    return requests.get(srv.url("/rest/whoami"), auth=auth(key, **extra, **signing),
                        timeout=10)


# The dance ----------------------------------------------------------------------------


def test_rsa_dance_oob_on_both_databases(store: Store) -> None:
    pem = add_rsa_consumer(store, RSA_KEY)
    with running_server(store) as srv:
        at = dance(srv, store, RSA_KEY, rsa_pem=pem)
        assert int(at["oauth_expires_in"]) == 7 * 86400
        assert at["oauth_session_handle"]
        assert int(at["oauth_authorization_expires_in"]) > 0
        r = whoami(srv, RSA_KEY, at, rsa_pem=pem)
        assert r.status_code == 200, r.text
        assert r.json() == {"consumer_key": RSA_KEY, "consumer_name": "JIRA", "user": "alice",
                            "mode": "3lo"}
        rows = services(store).tokens.list(consumer_key=RSA_KEY).rows
        assert sorted((t.type, t.state) for t in rows) == [("access", "active"),
                                                           ("request", "used")]
        # Token secrets are not stored in plain text.
        with store.session() as s:
            blobs = [t.secret_enc for t in s.exec(select(Token)).all()]
        assert all(b and at["oauth_token_secret"].encode() not in b for b in blobs)


def test_hmac_dance_through_the_authorize_page_with_a_callback(server: Server,
                                                              sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, name="Partner <b>&</b>",
                      description="Partner's app")
    s = oauth_session(HMAC_KEY, secret=SECRET, callback_uri="https://client.example/cb?x=1")
    rt = s.fetch_request_token(server.url(OAUTH + "/request-token"))
    page = authorize_page(server, rt["oauth_token"])
    assert page.status_code == 200
    assert "Partner &lt;b&gt;&amp;&lt;/b&gt;" in page.text  # the name, escaped
    assert "Allow" in page.text and "Deny" in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    csrf = csrf_of(page)
    form = {"oauth_token": rt["oauth_token"], "csrf": csrf, "decision": "allow"}
    # Without the CSRF token, or as another user, the decision is refused.
    bad = requests.post(server.url(OAUTH + "/authorize"), data={**form, "csrf": "x"},
                        headers={"X-Remote-User": "bob"}, allow_redirects=False, timeout=10)
    assert bad.status_code == 403
    other = requests.post(server.url(OAUTH + "/authorize"), data=form,
                          headers={"X-Remote-User": "mallory"}, allow_redirects=False,
                          timeout=10)
    assert other.status_code == 403
    ok = requests.post(server.url(OAUTH + "/authorize"), data=form,
                       headers={"X-Remote-User": "bob"}, allow_redirects=False, timeout=10)
    assert ok.status_code == 303, ok.text
    target = urlsplit(ok.headers["Location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "client.example", "/cb")
    query = parse_qs(target.query)
    assert query["x"] == ["1"] and query["oauth_token"] == [rt["oauth_token"]]
    s.parse_authorization_response(ok.headers["Location"])
    at = s.fetch_access_token(server.url(OAUTH + "/access-token"))
    r = whoami(server, HMAC_KEY, at, secret=SECRET)
    assert r.status_code == 200 and r.json()["user"] == "bob"


def test_authorize_page_without_trusted_header_points_to_the_cli(sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET)
    with running_server(sqlite_store, trusted_user_header=None) as srv:
        s = oauth_session(HMAC_KEY, secret=SECRET, callback_uri="oob")
        rt = s.fetch_request_token(srv.url(OAUTH + "/request-token"))
        page = authorize_page(srv, rt["oauth_token"])
        assert page.status_code == 200
        assert "tui-oauth tokens authorize" in page.text and "<form" not in page.text
        post = requests.post(srv.url(OAUTH + "/authorize"),
                             data={"oauth_token": rt["oauth_token"], "decision": "allow"},
                             headers={"X-Remote-User": "bob"}, timeout=10)
        assert post.status_code == 403
        assert services(sqlite_store).tokens.list(type="request").rows[0].state == "pending"


def test_deny_sends_verifier_denied_and_the_exchange_is_refused(server: Server,
                                                                sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET)
    s = oauth_session(HMAC_KEY, secret=SECRET, callback_uri="https://client.example/cb")
    rt = s.fetch_request_token(server.url(OAUTH + "/request-token"))
    page = authorize_page(server, rt["oauth_token"])
    csrf = csrf_of(page)
    r = requests.post(server.url(OAUTH + "/authorize"),
                      data={"oauth_token": rt["oauth_token"], "csrf": csrf, "decision": "deny"},
                      headers={"X-Remote-User": "bob"}, allow_redirects=False, timeout=10)
    assert r.status_code == 303
    assert parse_qs(urlsplit(r.headers["Location"]).query)["oauth_verifier"] == ["denied"]
    r = requests.post(server.url(OAUTH + "/access-token"), timeout=10, auth=auth(
        HMAC_KEY, secret=SECRET, resource_owner_key=rt["oauth_token"],
        resource_owner_secret=rt["oauth_token_secret"], verifier="denied"))
    expect_problem(r, "permission_denied", 401)


def test_session_renewal_in_the_header_and_in_the_body(server: Server,
                                                       sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET)
    at = dance(server, sqlite_store, HMAC_KEY, secret=SECRET)
    # Let the access token expire: renewal still works within the authorization.
    expire_token(sqlite_store, at["oauth_token"])
    expect_problem(whoami(server, HMAC_KEY, at, secret=SECRET), "token_expired", 401)
    a = OAuth1(HMAC_KEY, client_secret=SECRET, resource_owner_key=at["oauth_token"],
               resource_owner_secret=at["oauth_token_secret"], client_class=SessionHandleClient)
    a.client.session_handle = at["oauth_session_handle"]
    r = requests.post(server.url(OAUTH + "/access-token"), auth=a, timeout=10)
    assert r.status_code == 200, r.text
    renewed = {k: v[0] for k, v in parse_qs(r.text).items()}
    assert renewed["oauth_token"] != at["oauth_token"]
    assert renewed["oauth_session_handle"] == at["oauth_session_handle"]
    assert whoami(server, HMAC_KEY, renewed, secret=SECRET).json()["user"] == "alice"
    # The old token is spent: neither usable nor renewable again.
    expect_problem(whoami(server, HMAC_KEY, at, secret=SECRET), "token_used", 401)
    again = requests.post(server.url(OAUTH + "/access-token"), auth=a, timeout=10)
    expect_problem(again, "token_used", 401)
    # The body form (all oauth_ parameters in the form body) works too.
    b = OAuth1(HMAC_KEY, client_secret=SECRET, resource_owner_key=renewed["oauth_token"],
               resource_owner_secret=renewed["oauth_token_secret"],
               signature_type=SIGNATURE_TYPE_BODY)
    r = requests.post(server.url(OAUTH + "/access-token"), auth=b, timeout=10,
                      data={"oauth_session_handle": renewed["oauth_session_handle"]},
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    # A wrong handle is refused.
    a2 = OAuth1(HMAC_KEY, client_secret=SECRET, resource_owner_key=parse_qs(r.text)[
        "oauth_token"][0], resource_owner_secret=parse_qs(r.text)["oauth_token_secret"][0],
        client_class=SessionHandleClient)
    a2.client.session_handle = "not-the-handle"
    expect_problem(requests.post(server.url(OAUTH + "/access-token"), auth=a2, timeout=10),
                   "token_rejected", 401)


def test_two_legged_execute_as_and_impersonation(server: Server, sqlite_store: Store) -> None:
    pem = add_rsa_consumer(sqlite_store, RSA_KEY, two_lo_allowed=True,
                           two_lo_execute_as="svc-reports")
    r = whoami(server, RSA_KEY, None, rsa_pem=pem)
    assert r.status_code == 200, r.text
    assert r.json() == {"consumer_key": RSA_KEY, "consumer_name": "JIRA",
                        "user": "svc-reports", "mode": "2lo"}
    named = requests.get(server.url("/rest/whoami"), params={"xoauth_requestor_id": "carol"},
                         auth=auth(RSA_KEY, rsa_pem=pem), timeout=10)
    expect_problem(named, "user_refused", 503)
    services(sqlite_store).consumers.edit(RSA_KEY, two_lo_impersonation=True)
    named = requests.get(server.url("/rest/whoami"), params={"xoauth_requestor_id": "carol"},
                         auth=auth(RSA_KEY, rsa_pem=pem), timeout=10)
    assert named.status_code == 200 and named.json()["user"] == "carol"
    services(sqlite_store).consumers.edit(RSA_KEY, two_lo_allowed=False, two_lo_execute_as=None,
                                          two_lo_impersonation=False)
    # A policy refusal is permanent: consumer_key_rejected (401), not the retryable 503.
    expect_problem(whoami(server, RSA_KEY, None, rsa_pem=pem), "consumer_key_rejected", 401)


def test_anonymous_two_legged(server: Server, sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True)
    r = whoami(server, HMAC_KEY, None, secret=SECRET)
    assert r.status_code == 200 and r.json()["user"] is None


def test_consumer_info_is_our_xml(server: Server, sqlite_store: Store) -> None:
    r = requests.get(server.url(OAUTH + "/consumer-info"), timeout=10)
    assert r.status_code == 200 and "xml" in r.headers["content-type"]
    assert f"<key>{services(sqlite_store).consumer_info.get().key}</key>" in r.text


# Refusals -------------------------------------------------------------------------------


def test_replayed_nonce(server: Server, sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET)
    at = dance(server, sqlite_store, HMAC_KEY, secret=SECRET)
    prepared = requests.Request("GET", server.url("/rest/whoami"), auth=auth(
        HMAC_KEY, secret=SECRET, resource_owner_key=at["oauth_token"],
        resource_owner_secret=at["oauth_token_secret"])).prepare()
    with requests.Session() as http:
        assert http.send(prepared, timeout=10).status_code == 200
        expect_problem(http.send(prepared, timeout=10), "nonce_used", 401)


def test_stale_timestamp(server: Server, sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True)
    a = auth(HMAC_KEY, secret=SECRET, timestamp=str(int(time.time()) - 3600))
    r = requests.get(server.url("/rest/whoami"), auth=a, timeout=10)
    body = expect_problem(r, "timestamp_refused", 400)
    low, high = (int(x) for x in body["oauth_acceptable_timestamps"].split("-"))
    assert high - low == 600 and low < time.time() < high
    assert "oauth_acceptable_timestamps" in r.headers["WWW-Authenticate"]


def test_tampered_parameter(server: Server, sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True)
    prepared = requests.Request("GET", server.url("/rest/whoami?amount=10"),
                                auth=auth(HMAC_KEY, secret=SECRET)).prepare()
    assert prepared.url is not None
    prepared.url = prepared.url.replace("amount=10", "amount=1000")
    with requests.Session() as http:
        expect_problem(http.send(prepared, timeout=10), "signature_invalid", 401)


def test_wrong_key_and_wrong_secret(server: Server, sqlite_store: Store) -> None:
    from tests.helpers import pem_private, rsa_key

    add_rsa_consumer(sqlite_store, RSA_KEY, two_lo_allowed=True)
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True)
    other_pem = pem_private(rsa_key(1))
    expect_problem(whoami(server, RSA_KEY, None, rsa_pem=other_pem), "signature_invalid", 401)
    expect_problem(whoami(server, HMAC_KEY, None, secret="not-it"), "signature_invalid", 401)
    # Signing with the method the consumer does not use:
    expect_problem(whoami(server, RSA_KEY, None, secret=SECRET),
                   "signature_method_rejected", 400)


def test_unknown_consumer(server: Server) -> None:
    expect_problem(whoami(server, "nobody:1", None, secret=SECRET), "consumer_key_unknown", 401)
    r = requests.post(server.url(OAUTH + "/request-token"), timeout=10,
                      auth=auth("nobody:1", secret=SECRET, callback_uri="oob"))
    expect_problem(r, "consumer_key_unknown", 401)


def test_problem_detail_minimal_answers_alike_to_whoever_cannot_sign(sqlite_store: Store
                                                                     ) -> None:
    """Unknown key, wrong method, unknown token and bad signature: one answer (item 14)."""
    pem = add_rsa_consumer(sqlite_store, RSA_KEY, two_lo_allowed=True)
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True)
    with running_server(sqlite_store, settings=ProviderSettings(problem_detail="minimal")) as srv:
        at = dance(srv, sqlite_store, HMAC_KEY, secret=SECRET)
        answers = [
            whoami(srv, "nobody:1", None, secret=SECRET),  # unknown consumer
            whoami(srv, RSA_KEY, None, secret=SECRET),  # not the consumer's method
            whoami(srv, HMAC_KEY, {"oauth_token": "made-up-token",
                                   "oauth_token_secret": "x"}, secret=SECRET),  # unknown token
            whoami(srv, HMAC_KEY, None, secret="not-it"),  # bad signature
            whoami(srv, HMAC_KEY, {**at, "oauth_token_secret": "x"}, secret=SECRET),
            requests.post(srv.url(OAUTH + "/request-token"), timeout=10,
                          auth=auth("nobody:1", secret=SECRET, callback_uri="oob")),
        ]
        for r in answers:
            expect_problem(r, "signature_invalid", 401)
        assert len({r.text for r in answers}) == 1
        assert len({r.headers["WWW-Authenticate"] for r in answers}) == 1
        # What does not depend on a key still says what it is...
        r = whoami(srv, HMAC_KEY, None, secret=SECRET, signature_method="HMAC-SHA256")
        expect_problem(r, "signature_method_rejected", 400)
        # ... and so does what only a caller who signed correctly gets to hear.
        assert whoami(srv, RSA_KEY, None, rsa_pem=pem).status_code == 200
        services(sqlite_store).tokens.revoke(at["oauth_token"])
        expect_problem(whoami(srv, HMAC_KEY, at, secret=SECRET), "token_revoked", 401)


def test_used_and_expired_request_tokens(server: Server, sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET)
    s = oauth_session(HMAC_KEY, secret=SECRET, callback_uri="oob")
    rt = s.fetch_request_token(server.url(OAUTH + "/request-token"))
    verifier = services(sqlite_store).tokens.authorize(rt["oauth_token"], "alice").verifier
    a = auth(HMAC_KEY, secret=SECRET, resource_owner_key=rt["oauth_token"],
             resource_owner_secret=rt["oauth_token_secret"], verifier=verifier)
    assert requests.post(server.url(OAUTH + "/access-token"), auth=a, timeout=10).ok
    expect_problem(requests.post(server.url(OAUTH + "/access-token"), auth=a, timeout=10),
                   "token_used", 401)
    # Expired: approved in time but exchanged too late.
    s = oauth_session(HMAC_KEY, secret=SECRET, callback_uri="oob")
    rt = s.fetch_request_token(server.url(OAUTH + "/request-token"))
    verifier = services(sqlite_store).tokens.authorize(rt["oauth_token"], "alice").verifier
    expire_token(sqlite_store, rt["oauth_token"])
    a = auth(HMAC_KEY, secret=SECRET, resource_owner_key=rt["oauth_token"],
             resource_owner_secret=rt["oauth_token_secret"], verifier=verifier)
    expect_problem(requests.post(server.url(OAUTH + "/access-token"), auth=a, timeout=10),
                   "token_expired", 401)


def test_unapproved_request_token_and_wrong_verifier(server: Server, sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET)
    s = oauth_session(HMAC_KEY, secret=SECRET, callback_uri="oob")
    rt = s.fetch_request_token(server.url(OAUTH + "/request-token"))
    a = auth(HMAC_KEY, secret=SECRET, resource_owner_key=rt["oauth_token"],
             resource_owner_secret=rt["oauth_token_secret"], verifier="guess-guess")
    expect_problem(requests.post(server.url(OAUTH + "/access-token"), auth=a, timeout=10),
                   "permission_unknown", 401)
    services(sqlite_store).tokens.authorize(rt["oauth_token"], "alice")
    expect_problem(requests.post(server.url(OAUTH + "/access-token"), auth=a, timeout=10),
                   "token_rejected", 401)


def test_revoked_and_expired_access_tokens(server: Server, sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET)
    at = dance(server, sqlite_store, HMAC_KEY, secret=SECRET)
    assert whoami(server, HMAC_KEY, at, secret=SECRET).status_code == 200
    services(sqlite_store).tokens.revoke(at["oauth_token"])
    expect_problem(whoami(server, HMAC_KEY, at, secret=SECRET), "token_revoked", 401)
    at2 = dance(server, sqlite_store, HMAC_KEY, secret=SECRET)
    expire_token(sqlite_store, at2["oauth_token"])
    expect_problem(whoami(server, HMAC_KEY, at2, secret=SECRET), "token_expired", 401)
    # A token of another consumer, or a made-up one, is rejected.
    expect_problem(whoami(server, HMAC_KEY, {"oauth_token": "made-up-token",
                                             "oauth_token_secret": "x"}, secret=SECRET),
                   "token_rejected", 401)


def test_removed_consumer_loses_access_at_once(server: Server, sqlite_store: Store) -> None:
    pem = add_rsa_consumer(sqlite_store, RSA_KEY)
    at = dance(server, sqlite_store, RSA_KEY, rsa_pem=pem)
    assert whoami(server, RSA_KEY, at, rsa_pem=pem).status_code == 200
    services(sqlite_store).consumers.remove(RSA_KEY)
    expect_problem(whoami(server, RSA_KEY, at, rsa_pem=pem), "consumer_key_unknown", 401)


def test_changed_secret_takes_effect(server: Server, sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True)
    assert whoami(server, HMAC_KEY, None, secret=SECRET).status_code == 200
    services(sqlite_store).consumers.edit(HMAC_KEY, shared_secret="a-new-secret-42")
    expect_problem(whoami(server, HMAC_KEY, None, secret=SECRET), "signature_invalid", 401)
    assert whoami(server, HMAC_KEY, None, secret="a-new-secret-42").status_code == 200


def test_plaintext_over_http_is_refused(server: Server, sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, allow_plaintext=True, two_lo_allowed=True)
    r = whoami(server, HMAC_KEY, None, secret=SECRET, signature_method=SIGNATURE_PLAINTEXT)
    body = expect_problem(r, "signature_method_rejected", 400)
    assert "https" in body["oauth_problem_advice"]


def send_as_public(srv: Server, method: str, path: str, a: OAuth1, **kw: Any
                   ) -> requests.Response:
    """Sign for the public URL, send to where the server listens (as a TLS proxy would)."""
    prepared = requests.Request(method, srv.url(path), auth=a, **kw).prepare()
    assert prepared.url is not None
    prepared.url = srv.base + prepared.url[len(srv.public):]
    with requests.Session() as http:
        return http.send(prepared, timeout=10, allow_redirects=False)


def test_behind_a_tls_proxy_signatures_use_the_public_url(sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, allow_plaintext=True, two_lo_allowed=True,
                      two_lo_execute_as="svc")
    with running_server(sqlite_store, public_url="https://jira.example.com:8443/base") as srv:
        for path in ("/rest/whoami", "/base/rest/whoami"):
            prepared = requests.Request("GET", srv.url("/rest/whoami"),
                                        auth=auth(HMAC_KEY, secret=SECRET)).prepare()
            assert prepared.url is not None
            prepared.url = srv.base + path
            with requests.Session() as http:
                r = http.send(prepared, timeout=10)
            assert r.status_code == 200, r.text
        # PLAINTEXT is accepted over https when the consumer allows it.
        r = send_as_public(srv, "GET", "/rest/whoami",
                           auth(HMAC_KEY, secret=SECRET, signature_method=SIGNATURE_PLAINTEXT))
        assert r.status_code == 200, r.text
        # Signed for the address behind the proxy instead: refused.
        r = requests.get(srv.base + "/rest/whoami", auth=auth(HMAC_KEY, secret=SECRET),
                         timeout=10)
        expect_problem(r, "signature_invalid", 401)


def test_three_legged_switched_off(server: Server, sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET)
    at = dance(server, sqlite_store, HMAC_KEY, secret=SECRET)
    services(sqlite_store).consumers.edit(HMAC_KEY, three_lo_allowed=False)
    r = requests.post(server.url(OAUTH + "/request-token"), timeout=10,
                      auth=auth(HMAC_KEY, secret=SECRET, callback_uri="oob"))
    expect_problem(r, "consumer_key_rejected", 401)
    expect_problem(whoami(server, HMAC_KEY, at, secret=SECRET), "consumer_key_rejected", 401)


def test_missing_parameters_version_and_callback(server: Server, sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET)
    r = requests.get(server.url("/rest/whoami"), timeout=10,
                     headers={"Authorization": 'OAuth oauth_consumer_key="www.google.com"'})
    body = expect_problem(r, "parameter_absent", 400)
    assert body["oauth_parameters_absent"].split("&") == [
        "oauth_signature_method", "oauth_signature", "oauth_timestamp", "oauth_nonce"]
    r = requests.get(server.url("/rest/whoami"), timeout=10, headers={
        "Authorization": 'OAuth oauth_consumer_key="k", oauth_version="2.0"'})
    expect_problem(r, "version_rejected", 400)
    # No oauth_callback and none stored with the consumer.
    r = requests.post(server.url(OAUTH + "/request-token"), timeout=10,
                      auth=auth(HMAC_KEY, secret=SECRET))
    body = expect_problem(r, "parameter_absent", 400)
    assert body["oauth_parameters_absent"] == "oauth_callback"
    r = requests.post(server.url(OAUTH + "/request-token"), timeout=10,
                      auth=auth(HMAC_KEY, secret=SECRET, callback_uri="ftp://x/y"))
    expect_problem(r, "parameter_rejected", 400)
    r = requests.post(server.url(OAUTH + "/request-token"), timeout=10, auth=auth(
        HMAC_KEY, secret=SECRET, callback_uri="oob", signature_method="HMAC-SHA256"))
    expect_problem(r, "signature_method_rejected", 400)


def test_stored_callback_is_used_when_the_consumer_sends_none(server: Server,
                                                             sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, callback_url="https://client.example/cb")
    r = requests.post(server.url(OAUTH + "/request-token"), timeout=10,
                      auth=auth(HMAC_KEY, secret=SECRET))
    assert r.status_code == 200, r.text
    token = parse_qs(r.text)["oauth_token"][0]
    redirect = services(sqlite_store).tokens.authorize(token, "alice").redirect_url()
    assert redirect is not None and redirect.startswith("https://client.example/cb?")


def test_request_path_reads_no_keyring(server: Server, sqlite_store: Store,
                                       memory_keyring: MemoryKeyring) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET, two_lo_allowed=True)
    at = dance(server, sqlite_store, HMAC_KEY, secret=SECRET)  # loads the new consumer once
    memory_keyring.calls.clear()
    for _ in range(5):
        assert whoami(server, HMAC_KEY, at, secret=SECRET).status_code == 200
        assert whoami(server, HMAC_KEY, None, secret=SECRET).status_code == 200
        assert whoami(server, "unknown:key", None, secret=SECRET).status_code == 401
    assert memory_keyring.calls == []


def test_the_server_purges_expired_tokens_on_its_schedule(sqlite_store: Store) -> None:
    """Expired tokens go by themselves (Atlassian: every 8 hours; here every second)."""
    add_hmac_consumer(sqlite_store)
    consumer = services(sqlite_store).consumers.get("www.google.com")
    now = utcnow()
    with Session(sqlite_store.engine) as s:
        s.add(Token(token="expired-one", consumer_id=consumer.id or 0, type="access",
                    state="active", expires_at=now - timedelta(minutes=1)))
        s.add(Token(token="live-one", consumer_id=consumer.id or 0, type="access",
                    state="active", expires_at=now + timedelta(days=1)))
        s.commit()
    with running_server(sqlite_store, refresh_interval=1.0, prune_interval=1.0,
                        purge_interval=1.0):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with Session(sqlite_store.engine) as s:
                left = set(s.exec(select(Token.token)).all())
            if left == {"live-one"}:
                break
            time.sleep(0.2)
    assert left == {"live-one"}
