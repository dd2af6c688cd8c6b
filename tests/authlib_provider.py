"""An independent OAuth 1.0a service provider for the tests, built on Authlib.

tui-oauth's consumer side is checked against it so that our signatures, our
parsing of token responses and our handling of the dance are judged by an
implementation nobody here wrote. Nothing in this module imports tui_oauth.

The protocol work (parsing the request, the signature base string, HMAC-SHA1 /
RSA-SHA1 / PLAINTEXT verification, timestamp and nonce checks, the three
endpoints' validation order and their error answers) is Authlib's
``authlib.oauth1.rfc5849`` ``AuthorizationServer`` and ``ResourceProtector``.
This module only supplies what Authlib leaves to the application: an in-memory
store (clients, request tokens, access tokens, nonces) and a tiny HTTP server
(the standard library's ``ThreadingHTTPServer`` on 127.0.0.1, a free port, a
background thread).

Usage::

    from tests.authlib_provider import authlib_provider, hmac_client, rsa_client

    with authlib_provider(clients=[hmac_client("ck", "cs"),
                                   rsa_client("rsa-ck", public_pem)]) as p:
        p.request_token_url      # POST: temporary credentials
        p.authorize_url          # GET/POST ?oauth_token=...: auto-approves as
                                 # ``authorize_as`` and redirects (302) to the callback
        p.access_token_url       # POST: token credentials
        p.resource_url("/api/whoami")   # GET/POST, signed: {"client_id", "user", ...}
        verifier = p.approve(request_token, "alice")   # programmatic approval

Deliberate differences from Authlib's own Flask integration, all in the glue
(see ``AuthlibProvider`` for the details): ``oauth_callback_confirmed=true`` is
sent in lower case as RFC 5849 requires (Authlib's ``url_encode`` would send
``True``; pass ``callback_confirmed="True"`` to get Authlib's verbatim answer);
a request body is only handed to Authlib as parameters when its content type
is ``application/x-www-form-urlencoded`` (RFC 5849 3.4.1.3.1); each client may
only use the signature methods its credentials allow; a request token expires
after ``request_token_ttl`` seconds.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.common.urls import url_encode
from authlib.oauth1.rfc5849 import AuthorizationServer, ResourceProtector
from authlib.oauth1.rfc5849.errors import (
    InvalidSignatureError,
    OAuth1Error,
    UnsupportedSignatureMethodError,
)
from authlib.oauth1.rfc5849.models import ClientMixin, TemporaryCredential
from authlib.oauth1.rfc5849.signature import (
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_PLAINTEXT,
    SIGNATURE_RSA_SHA1,
)
from authlib.oauth1.rfc5849.wrapper import OAuth1Request
from cryptography.hazmat.primitives import serialization

__all__ = [
    "REQUEST_TOKEN_PATH",
    "AuthlibProvider",
    "ClientSpec",
    "RecordedRequest",
    "authlib_provider",
    "hmac_client",
    "public_pem_of",
    "rsa_client",
]

REQUEST_TOKEN_PATH = "/oauth/request-token"
AUTHORIZE_PATH = "/oauth/authorize"
ACCESS_TOKEN_PATH = "/oauth/access-token"
OOB_PATH = "/oauth/oob"
WHOAMI_PATH = "/api/whoami"

FORM = "application/x-www-form-urlencoded"
MAX_BODY = 1 << 20  # bytes a request body may have; more is refused with 413
SOCKET_TIMEOUT = 5.0  # seconds a connection may sit idle before the handler gives up


# --------------------------------------------------------------------------- clients


@dataclass(frozen=True)
class ClientSpec:
    """A registered consumer. ``client_secret`` allows HMAC-SHA1 (and PLAINTEXT
    when the provider allows it); ``rsa_public_key`` (PEM) allows RSA-SHA1."""

    client_id: str
    client_secret: str | None = None
    rsa_public_key: str | None = None

    def signature_methods(self, allow_plaintext: bool) -> set[str]:
        methods: set[str] = set()
        if self.client_secret:
            methods.add(SIGNATURE_HMAC_SHA1)
            if allow_plaintext:
                methods.add(SIGNATURE_PLAINTEXT)
        if self.rsa_public_key:
            methods.add(SIGNATURE_RSA_SHA1)
        return methods


def hmac_client(client_id: str, client_secret: str) -> ClientSpec:
    """A consumer that signs HMAC-SHA1 with a shared secret."""
    return ClientSpec(client_id, client_secret=client_secret)


def rsa_client(client_id: str, rsa_public_key_pem: str) -> ClientSpec:
    """A consumer that signs RSA-SHA1; the provider knows only its public key (PEM)."""
    if "PRIVATE KEY" in rsa_public_key_pem:
        raise ValueError("rsa_client wants the PUBLIC key; use public_pem_of(private_pem)")
    return ClientSpec(client_id, rsa_public_key=rsa_public_key_pem)


def public_pem_of(private_pem: str | bytes) -> str:
    """The SubjectPublicKeyInfo PEM of an unencrypted PEM private key."""
    data = private_pem.encode() if isinstance(private_pem, str) else private_pem
    key = serialization.load_pem_private_key(data, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


class _Client(ClientMixin):  # type: ignore[misc]  # Authlib has no type hints
    def __init__(self, spec: ClientSpec, default_redirect_uri: str) -> None:
        self.spec = spec
        self.default_redirect_uri = default_redirect_uri

    def get_default_redirect_uri(self) -> str:
        return self.default_redirect_uri

    def get_client_secret(self) -> str | None:
        return self.spec.client_secret

    def get_rsa_public_key(self) -> str | None:
        return self.spec.rsa_public_key


@dataclass
class _AccessToken:
    oauth_token: str
    oauth_token_secret: str
    client_id: str
    user_id: str

    def get_oauth_token(self) -> str:
        return self.oauth_token

    def get_oauth_token_secret(self) -> str:
        return self.oauth_token_secret


@dataclass
class RecordedRequest:
    """What the provider received, for tests that assert on the wire."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0


class _Store:
    """Everything the provider remembers, behind one lock."""

    def __init__(self, request_token_ttl: float) -> None:
        self.lock = threading.Lock()
        self.clients: dict[str, _Client] = {}
        self.temporary: dict[str, tuple[float, TemporaryCredential]] = {}
        self.tokens: dict[str, _AccessToken] = {}
        self.nonces: set[tuple[str, str, str, str]] = set()
        self.request_token_ttl = request_token_ttl

    def temporary_credential(self, token: str | None) -> TemporaryCredential | None:
        with self.lock:
            entry = self.temporary.get(token or "")
            if entry is None:
                return None
            if time.monotonic() > entry[0]:
                del self.temporary[token or ""]
                return None
            return entry[1]

    def seen_nonce(self, request: OAuth1Request, nonce: str) -> bool:
        """True if this nonce was used before with the same timestamp, client
        and token (RFC 5849 3.3); remembers it otherwise."""
        key = (request.client_id or "", request.token or "", request.timestamp or "", nonce)
        with self.lock:
            if key in self.nonces:
                return True
            self.nonces.add(key)
            return False


class _StrictMethods:
    """Shared by both Authlib servers: each client may only use the signature
    methods its credentials allow, and a verifier that blows up (say, a
    signature that is not base64) is a refused signature, not a crash."""

    store: _Store
    allow_plaintext: bool

    def get_client_by_id(self, client_id: str) -> _Client | None:
        with self.store.lock:
            return self.store.clients.get(client_id)

    def exists_nonce(self, nonce: str, request: OAuth1Request) -> bool:
        return self.store.seen_nonce(request, nonce)

    def validate_oauth_signature(self, request: OAuth1Request) -> None:
        client: _Client | None = request.client
        method = request.signature_method
        if client is not None and method and (
            method not in client.spec.signature_methods(self.allow_plaintext)
        ):
            raise UnsupportedSignatureMethodError(
                description=f"{method} is not allowed for this client"
            )
        try:
            super().validate_oauth_signature(request)  # type: ignore[misc]
        except OAuth1Error:
            raise
        except Exception as exc:
            raise InvalidSignatureError(description=f"unverifiable signature: {exc}") from exc


class _AuthorizationServer(_StrictMethods, AuthorizationServer):  # type: ignore[misc]  # untyped
    def __init__(self, store: _Store, allow_plaintext: bool, expiry_time: int,
                 callback_confirmed: str) -> None:
        self.store = store
        self.allow_plaintext = allow_plaintext
        self.EXPIRY_TIME = expiry_time
        self.callback_confirmed = callback_confirmed
        self.SUPPORTED_SIGNATURE_METHODS = [SIGNATURE_HMAC_SHA1, SIGNATURE_RSA_SHA1]
        if allow_plaintext:
            self.SUPPORTED_SIGNATURE_METHODS.append(SIGNATURE_PLAINTEXT)

    def create_oauth1_request(self, request: OAuth1Request) -> OAuth1Request:
        return request  # the HTTP glue builds the OAuth1Request itself

    def handle_response(self, status_code: int, payload: Any,
                        headers: list[tuple[str, str]]) -> tuple[int, str, list[tuple[str, str]]]:
        if isinstance(payload, list):
            payload = [(k, self.callback_confirmed if v is True else v) for k, v in payload]
            body = url_encode(payload)
        else:
            body = str(payload)
        return status_code, body, list(headers)

    def create_temporary_credential(self, request: OAuth1Request) -> TemporaryCredential:
        credential = TemporaryCredential(
            oauth_token=secrets.token_urlsafe(18),
            oauth_token_secret=secrets.token_urlsafe(24),
            client_id=request.client_id,
            oauth_callback=request.redirect_uri,
        )
        with self.store.lock:
            deadline = time.monotonic() + self.store.request_token_ttl
            self.store.temporary[credential["oauth_token"]] = (deadline, credential)
        return credential

    def get_temporary_credential(self, request: OAuth1Request) -> TemporaryCredential | None:
        credential = self.store.temporary_credential(request.token)
        # A request token belongs to the consumer it was issued to.
        if credential is not None and request.client_id not in (None, credential["client_id"]):
            return None
        return credential

    def delete_temporary_credential(self, request: OAuth1Request) -> None:
        with self.store.lock:
            self.store.temporary.pop(request.token or "", None)

    def create_authorization_verifier(self, request: OAuth1Request) -> str:
        verifier = secrets.token_urlsafe(12)
        with self.store.lock:
            request.credential["user_id"] = request.user
            request.credential["oauth_verifier"] = verifier
        return verifier

    def create_token_credential(self, request: OAuth1Request) -> _AccessToken:
        temporary = request.credential
        token = _AccessToken(
            oauth_token=secrets.token_urlsafe(18),
            oauth_token_secret=secrets.token_urlsafe(24),
            client_id=temporary.get_client_id(),
            user_id=temporary.get_user_id(),
        )
        with self.store.lock:
            self.store.tokens[token.oauth_token] = token
        return token


class _ResourceProtector(_StrictMethods, ResourceProtector):  # type: ignore[misc]  # untyped
    def __init__(self, store: _Store, allow_plaintext: bool, expiry_time: int) -> None:
        self.store = store
        self.allow_plaintext = allow_plaintext
        self.EXPIRY_TIME = expiry_time
        self.SUPPORTED_SIGNATURE_METHODS = [SIGNATURE_HMAC_SHA1, SIGNATURE_RSA_SHA1]
        if allow_plaintext:
            self.SUPPORTED_SIGNATURE_METHODS.append(SIGNATURE_PLAINTEXT)

    def get_token_credential(self, request: OAuth1Request) -> _AccessToken | None:
        with self.store.lock:
            token = self.store.tokens.get(request.token or "")
        if token is None or token.client_id != request.client_id:
            return None
        return token


# --------------------------------------------------------------------------- provider


Response = tuple[int, str | bytes, list[tuple[str, str]]]


class _Answers(Protocol):
    """What the provider asks of Authlib's AuthorizationServer, typed (Authlib has no
    type hints)."""

    def create_temporary_credentials_response(self, request: OAuth1Request) -> Response: ...

    def create_authorization_response(self, request: OAuth1Request,
                                      grant_user: str | None) -> Response: ...

    def create_token_response(self, request: OAuth1Request) -> Response: ...

    def handle_error_response(self, error: OAuth1Error) -> Response: ...


@dataclass
class AuthlibProvider:
    """A running provider. Create it with :func:`authlib_provider`."""

    base_url: str
    authorize_as: str | None
    _store: _Store
    _server: _Answers  # an _AuthorizationServer
    _protector: _ResourceProtector
    requests: list[RecordedRequest] = field(default_factory=list)

    # ---- URLs
    @property
    def request_token_url(self) -> str:
        return self.base_url + REQUEST_TOKEN_PATH

    @property
    def authorize_url(self) -> str:
        return self.base_url + AUTHORIZE_PATH

    @property
    def access_token_url(self) -> str:
        return self.base_url + ACCESS_TOKEN_PATH

    @property
    def oob_url(self) -> str:
        """Where an ``oob`` approval lands: a text page showing the verifier."""
        return self.base_url + OOB_PATH

    def resource_url(self, path: str = WHOAMI_PATH) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # ---- the store, for tests
    def add_client(self, client: ClientSpec) -> None:
        with self._store.lock:
            self._store.clients[client.client_id] = _Client(client, self.oob_url)

    def approve(self, request_token: str, user: str) -> str:
        """Approve ``request_token`` as ``user`` (what the user does in the
        browser) through Authlib's authorization endpoint logic; returns the
        ``oauth_verifier``. Raises KeyError for an unknown or expired token."""
        status, _, headers = self._authorize(request_token, user)
        location = dict(headers).get("Location", "")
        params = dict(parse_qsl(urlsplit(location).query))
        if status != 302 or "oauth_verifier" not in params:
            raise KeyError(f"request token not approvable: {request_token!r}")
        return params["oauth_verifier"]

    def expire_request_token(self, request_token: str) -> None:
        """Make an issued request token expired (as if its TTL had passed)."""
        with self._store.lock:
            entry = self._store.temporary.get(request_token)
            if entry is not None:
                self._store.temporary[request_token] = (0.0, entry[1])

    def revoke(self, access_token: str) -> None:
        """Forget an access token: later calls with it get 401 invalid_token."""
        with self._store.lock:
            self._store.tokens.pop(access_token, None)

    def access_tokens(self) -> dict[str, tuple[str, str]]:
        """Issued access tokens: token -> (client_id, user)."""
        with self._store.lock:
            return {t: (a.client_id, a.user_id) for t, a in self._store.tokens.items()}

    # ---- request handling (called from the HTTP handler's threads)
    def _authorize(self, request_token: str, user: str | None) -> Response:
        uri = f"{self.authorize_url}?{urlencode({'oauth_token': request_token})}"
        request = OAuth1Request("GET", uri, None, {})  # Authlib needs a dict here
        try:
            return self._server.create_authorization_response(request, grant_user=user)
        except OAuth1Error as error:
            return self._server.handle_error_response(error)

    def handle(self, method: str, uri: str, path: str, query: str,
               headers: dict[str, str], body: bytes) -> Response:
        content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
        form = body.decode("utf-8", "replace") if content_type == FORM and body else None
        try:
            request = OAuth1Request(method, uri, form, headers)
        except OAuth1Error as error:
            return self._server.handle_error_response(error)
        except ValueError as exc:  # a malformed Authorization header or query
            return 400, f"malformed request: {exc}", [("Content-Type", "text/plain")]

        if path == REQUEST_TOKEN_PATH:
            return self._server.create_temporary_credentials_response(request)
        if path == ACCESS_TOKEN_PATH:
            if method != "POST":
                return 405, "POST only", [("Content-Type", "text/plain"), ("Allow", "POST")]
            return self._server.create_token_response(request)
        if path == AUTHORIZE_PATH and method in ("GET", "POST"):
            params = dict(parse_qsl(query))
            if form:
                params.update(parse_qsl(form))
            token = params.get("oauth_token", "")
            if self.authorize_as is None:
                return 403, "no user is signed in here; use approve()", [
                    ("Content-Type", "text/plain")]
            return self._authorize(token, self.authorize_as)
        if path == OOB_PATH and method == "GET":
            verifier = dict(parse_qsl(query)).get("oauth_verifier", "")
            return 200, f"Your verification code is: {verifier}\n", [
                ("Content-Type", "text/plain; charset=utf-8")]
        if path == WHOAMI_PATH and method in ("GET", "POST"):
            try:
                checked = self._protector.validate_request(method, uri, form, headers)
            except OAuth1Error as error:
                return self._server.handle_error_response(error)
            answer = {
                "client_id": checked.client_id,
                "user": checked.credential.user_id,
                "signature_method": checked.signature_method,
            }
            return 200, json.dumps(answer), [("Content-Type", "application/json")]
        return 404, "not found", [("Content-Type", "text/plain")]


class _Handler(BaseHTTPRequestHandler):
    server_version = "AuthlibTestProvider/1"
    timeout = SOCKET_TIMEOUT
    provider: AuthlibProvider  # set on the subclass made per provider

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, "body too large", [("Content-Type", "text/plain")])
            return
        body = self.rfile.read(length) if length > 0 else b""
        host = self.headers.get("Host") or urlsplit(self.provider.base_url).netloc
        # Authlib reads "Authorization" and "Host" with exact spelling.
        headers = {k.title(): v for k, v in self.headers.items()}
        headers["Host"] = host
        uri = f"http://{host}{self.path}"
        parts = urlsplit(self.path)
        record = RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
        self.provider.requests.append(record)
        try:
            status, payload, extra = self.provider.handle(
                self.command, uri, parts.path, parts.query, headers, body)
        except Exception as exc:  # a bug here must show as a 500, not hang the client
            status, payload, extra = 500, f"provider error: {exc!r}", [
                ("Content-Type", "text/plain")]
        record.status = status
        self._send(status, payload, extra)

    def _send(self, status: int, payload: str | bytes, headers: Iterable[tuple[str, str]]) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve


@contextmanager
def authlib_provider(
    clients: Iterable[ClientSpec] = (),
    *,
    authorize_as: str | None = "alice",
    allow_plaintext: bool = False,
    request_token_ttl: float = 600.0,
    timestamp_expiry: int = 300,
    callback_confirmed: str = "true",
) -> Iterator[AuthlibProvider]:
    """Run an Authlib OAuth 1.0a provider on 127.0.0.1 (free port) in a thread.

    ``authorize_as``: the user the HTTP authorize endpoint approves as (``None``:
    it answers 403, only :meth:`AuthlibProvider.approve` approves).
    ``allow_plaintext``: accept PLAINTEXT from clients with a secret.
    ``request_token_ttl``: seconds a request token lives.
    ``timestamp_expiry``: Authlib's ``EXPIRY_TIME``, how old an ``oauth_timestamp``
    may be (Authlib does not refuse timestamps in the future).
    ``callback_confirmed``: the value sent as ``oauth_callback_confirmed``.
    The server is stopped and its port closed when the block exits.
    """
    store = _Store(request_token_ttl)
    server = _AuthorizationServer(store, allow_plaintext, timestamp_expiry, callback_confirmed)
    protector = _ResourceProtector(store, allow_plaintext, timestamp_expiry)
    handler = type("_BoundHandler", (_Handler,), {})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    provider = AuthlibProvider(f"http://127.0.0.1:{port}", authorize_as, store, server, protector)
    handler.provider = provider  # type: ignore[attr-defined]
    for client in clients:
        provider.add_client(client)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
        name=f"authlib-provider-{port}", daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
