"""The OAuth 1.0a provider: oauthlib's endpoints over the store, with Problem Reporting.

Each flow (request token, access token with its session renewal, protected
resource with 3LO and 2LO) runs in one database transaction:

1. parse the request as RFC 5849 says (``rfc5849.parse_request``: parameters from
   the header, the query and a form body, the base string) and check the
   protocol parameters here first, so that each refusal gets its own
   ``oauth_problem`` (``parameter_absent`` with ``oauth_parameters_absent``,
   ``timestamp_refused`` with ``oauth_acceptable_timestamps``, ...); a request
   with no OAuth at all gets a bare 401 challenge;
2. run oauthlib's ``validate_*`` (dummy consumer and tokens for unknown ones,
   the signature always computed);
3. name the problem from what the validator recorded, in an order that tells
   nothing to someone who cannot sign: unknown consumer, signature method,
   signature, then the token's state, then the consumer's permissions (with
   ``problem_detail=minimal`` the first four all answer ``signature_invalid``);
4. store the nonce (its unique index catches a replay, whichever host of a
   shared PostgreSQL gets it), issue or update tokens, commit.

Signatures are checked against the *public* URL (``public_url``), never the
address the server listens on, so this works behind a TLS-terminating proxy.
"""

from __future__ import annotations

import binascii
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from oauthlib.common import urlencode
from oauthlib.oauth1.rfc5849 import errors as oauth_errors
from sqlalchemy import Connection, bindparam, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import Session, col, select

from tui_oauth.core.database import checkpoint, reader
from tui_oauth.core.errors import SecretStoreError, StoreError
from tui_oauth.core.models import (
    PLAINTEXT,
    RSA_SHA1,
    Nonce,
    StoreMeta,
    Token,
    TokenState,
    TokenType,
)
from tui_oauth.core.provider.consumers import ConsumerCache, ConsumerEntry
from tui_oauth.core.provider.crypto import (
    CHECK_META_KEY,
    ROTATION_META_KEY,
    DataKey,
    load_data_key,
)
from tui_oauth.core.provider.problems import (
    Challenge,
    Problem,
    absent,
    concealed,
    refused_timestamp,
    rejected,
    signature_advice,
)
from tui_oauth.core.provider.refusals import Keys, RefusalLog, sent_of
from tui_oauth.core.provider.rfc5849 import (
    AccessTokens,
    RequestTokens,
    Resources,
    SignatureOnly,
    body_hash,
    parse_request,
    verify_rsa_sha1,
    verify_shared_secret,
)
from tui_oauth.core.provider.settings import ProviderSettings
from tui_oauth.core.provider.validator import STORED_CALLBACK, StoreRequestValidator
from tui_oauth.core.store import Store
from tui_oauth.core.timeutil import utcnow

log = logging.getLogger(__name__)

MANDATORY = ("oauth_consumer_key", "oauth_signature_method", "oauth_signature",
             "oauth_timestamp", "oauth_nonce")
LAST_USED_GRANULARITY = timedelta(seconds=60)

Headers = Mapping[str, str]
Body = bytes | str  # the body's octets (a str is taken as UTF-8)


class WriteBusy(Exception):
    """SQLite's write lock is held by another connection (a purge's batch, the CLI, the
    console), and the caller asked not to wait for it (``verify(..., wait=False)``, on
    the event loop).  Nothing was written: call :attr:`finish` in a thread, where it
    waits for the lock (the busy timeout) and returns what ``verify`` would have."""

    def __init__(self, finish: Callable[[], Any]) -> None:
        super().__init__("the database's write lock is taken")
        self.finish = finish


@dataclass(frozen=True)
class Access:
    """A valid signed request to a protected resource."""

    consumer_key: str
    consumer_name: str
    user: str | None  # None: 2LO with no execute-as user (anonymous)
    mode: str  # "3lo" or "2lo"


def normalize_public_url(url: str) -> str:
    """``https://host/base`` without a trailing slash; refuses what is not http(s)."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the public URL must be an absolute http(s) URL, not {url!r}")
    if parts.query or parts.fragment:
        raise ValueError("the public URL must not have a query or a fragment")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _require_three_legged(consumer: ConsumerEntry) -> None:
    """Refuse a step of 3-legged OAuth (a request token, its exchange, a renewal, a call
    with an access token) to a consumer that has it switched off."""
    if not consumer.three_lo_allowed:
        raise Problem("consumer_key_rejected",
                      "3-legged OAuth is switched off for this consumer.")


class ProviderEngine:
    def __init__(self, store: Store, public_url: str, *,
                 settings: ProviderSettings | None = None,
                 data_key: DataKey | None = None) -> None:
        self.store = store
        self.public_url = normalize_public_url(public_url)
        self.public_https = self.public_url.startswith("https://")
        self.public_path = urlsplit(self.public_url).path  # "" or "/base"
        self.settings = settings or ProviderSettings.load(store)
        self.data_key = data_key or load_data_key(store)
        self._data_key_seen = self._data_key_state()
        self._data_key_error: str | None = None
        self.consumers = ConsumerCache(store)
        self.consumers.refresh()  # notes where the next refresh starts; parses nothing
        self._reader = reader(store.engine)
        self._insert_nonce = _nonce_insert(store.engine.dialect.name)
        self._hot = _HotConnections(store.engine, self._reader)
        self.dummy_secret = self.consumers.dummy_secret
        self.dummy_token_blob = _dummy_token_blob(self.data_key)
        self.validator = StoreRequestValidator(self)
        self._request_ep = RequestTokens(self.validator)
        self._access_ep = AccessTokens(self.validator)
        self._resource_ep = Resources(self.validator)
        self._signature_ep = SignatureOnly(self.validator)
        self._local = threading.local()
        #: Refused requests and consumers' clock samples, written by serve's housekeeping.
        self.refusal_log = RefusalLog(store, enabled=self.settings.records_refusals,
                                      keep=self.settings.refusal_rows_per_consumer,
                                      keys=self.keys_for)

    # Plumbing -----------------------------------------------------------------

    def public_uri(self, path: str, query: str = "") -> str:
        """The URL the client signed: public base + the path below it + the query."""
        if self.public_path and (path == self.public_path
                                 or path.startswith(self.public_path + "/")):
            path = path[len(self.public_path):]
        uri = self.public_url + path
        return f"{uri}?{query}" if query else uri

    def db(self) -> Session:
        session: Session | None = getattr(self._local, "session", None)
        if session is None:
            raise RuntimeError("no provider transaction is open")
        return session

    def conn(self) -> Connection:
        """The open transaction's connection (Core statements, no ORM objects)."""
        return self.db().connection()

    @contextmanager
    def _unit(self) -> Iterator[Session]:
        self.store.check_identity()  # a removed or replaced store file: refuse (503)
        session = Session(self.store.engine, expire_on_commit=False)
        self._local.session = session
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            self._local.session = None
            session.close()

    def _run(self, flow: Any, *args: Any) -> Any:
        """Run a flow; database trouble becomes a StoreError, never a 500.  A refusal
        carries what was parsed of the request (Problem.sent, for the refusal log); an
        accepted request gives its consumer's clock a sample."""
        self._local.parsed = None
        try:
            result = flow(*args)
        except Problem as problem:
            request = self._local.parsed
            if request is not None and problem.sent is None:
                problem.sent = sent_of(request, problem.cause)
            raise
        except (OperationalError, SQLAlchemyError) as exc:
            log.error("database error on the request path: %s", exc)
            raise StoreError("The database is not available.") from exc
        request = self._local.parsed
        if request is not None:
            self.refusal_log.sample(request.client_key, int(request.timestamp))
        return result

    def _parse(self, uri: str, method: str, body: Body, headers: Headers) -> Any:
        request = parse_request(uri, method, body, headers)
        self._local.parsed = request
        if not request.tui_has_oauth:
            raise Challenge()
        return request

    def _precheck(self, request: Any, extra: tuple[str, ...] = ()) -> None:
        params: dict[str, str] = request.oauth_params
        version = params.get("oauth_version")
        if version is not None and version != "1.0":
            raise Problem("version_rejected", extra={"oauth_acceptable_versions": "1.0-1.0"})
        missing = [n for n in MANDATORY + extra if not params.get(n)]
        if missing:
            raise absent(*missing)
        method = params["oauth_signature_method"]
        accepted = self.validator.allowed_signature_methods
        if method not in accepted:
            why = ("PLAINTEXT is only accepted over https." if method == PLAINTEXT
                   else f"{method[:40]!r} is not accepted.")
            raise Problem("signature_method_rejected", f"{why} Accepted: {', '.join(accepted)}.")
        ts = params["oauth_timestamp"]
        if not (ts.isascii() and ts.isdigit()) or len(ts) > 20 or ts != str(int(ts)):
            raise rejected("oauth_timestamp", "whole seconds since 1970, digits only.")
        window = self.settings.timestamp_window
        now = int(time.time())
        if abs(now - int(ts)) > window:
            why = ("This looks like milliseconds. " if int(ts) > 1000 * (now - window) else "")
            raise refused_timestamp(window, now, why)
        for name, check in (("oauth_consumer_key", self.validator.check_client_key),
                            ("oauth_nonce", self.validator.check_nonce),
                            ("oauth_token", self.validator.check_access_token),
                            ("oauth_verifier", self.validator.check_verifier),
                            ("oauth_session_handle", self.validator.check_access_token)):
            if name in params and not check(params[name]):
                raise rejected(name, "printable, no spaces, at most 255 characters.")
        if method == RSA_SHA1:
            try:
                binascii.a2b_base64(params["oauth_signature"].encode("ascii"))
            except (binascii.Error, ValueError, UnicodeError):
                raise Problem("signature_invalid", "oauth_signature is not base64.") from None
        sent_hash = params.get("oauth_body_hash")
        if sent_hash is not None and not hmac.compare_digest(
                body_hash(request.tui_body).encode("ascii"),
                sent_hash.encode("utf-8", "surrogateescape")):
            raise Problem("signature_invalid",
                          "oauth_body_hash is not the base64 SHA-1 of the body that arrived.")

    def _oauthlib_error(self, exc: oauth_errors.OAuth1Error) -> Problem:
        """An oauthlib refusal our own checks did not catch first."""
        if isinstance(exc, oauth_errors.InvalidSignatureMethodError):
            return Problem("signature_method_rejected")
        text = str(exc.description or "")
        if "imestamp" in text:
            return refused_timestamp(self.settings.timestamp_window, int(time.time()))
        return Problem("parameter_rejected", text[:200] or None)

    def _authenticated(self, request: Any, *, with_token: bool = False) -> ConsumerEntry:
        """Consumer, method, token (known to this consumer) and signature, in that order.

        With ``problem_detail=minimal`` all four answer ``signature_invalid``."""
        minimal = self.settings.minimal_problems
        logged = getattr(request, "validator_log", {}) or {}
        if "signature" not in logged:
            raise Problem("parameter_rejected", "The request could not be checked.")
        if not logged.get("client"):
            raise concealed("consumer_key_unknown", None, minimal=minimal)
        consumer: ConsumerEntry = request.tui_consumer
        method = request.signature_method
        if not consumer.accepts(method):
            allowed = consumer.signature_method + (" or PLAINTEXT" if consumer.allow_plaintext
                                                   and consumer.signature_method != RSA_SHA1
                                                   else "")
            raise concealed("signature_method_rejected",
                            f"This consumer signs with {allowed}, not {method}.",
                            minimal=minimal)
        if with_token and getattr(request, "tui_token", None) is None:
            raise concealed("token_rejected", None, minimal=minimal)
        if not logged["signature"]:
            raise concealed("signature_invalid", signature_advice(request.uri),
                            minimal=minimal)
        return consumer

    def _authenticated_token(self, request: Any) -> tuple[ConsumerEntry, Token]:
        """:meth:`_authenticated`, with the token the request names (this consumer's)."""
        consumer = self._authenticated(request, with_token=True)
        row: Token | None = request.tui_token
        if row is None:
            raise Problem("token_rejected")
        return consumer, row

    def _store_nonce(self, conn: Session | Connection, consumer: ConsumerEntry,
                     request: Any) -> None:
        """One statement, ``INSERT ... ON CONFLICT DO NOTHING`` under the unique index
        (consumer, token, timestamp, nonce): no row inserted is a replay, on this host or
        any other sharing the database."""
        timestamp, nonce, token = request.tui_nonce
        if isinstance(conn, Session):
            conn = conn.connection()
        done = conn.execute(self._insert_nonce, {"consumer_key": consumer.key, "token": token,
                                                 "timestamp": timestamp, "nonce": nonce})
        if done.first() is None:  # no row inserted (RETURNING gave none): a replay
            raise Problem("nonce_used")

    def _new_token(self, session: Session, consumer: ConsumerEntry, kind: str, **fields: Any
                   ) -> tuple[Token, str]:
        token = secrets.token_urlsafe(24)
        secret = secrets.token_urlsafe(32)
        row = Token(token=token, secret_enc=self.data_key.encrypt(secret, token),
                    consumer_id=consumer.id, type=kind, **fields)
        session.add(row)
        return row, secret

    # Request token ----------------------------------------------------------------

    def request_token(self, uri: str, method: str, body: Body, headers: Headers) -> str:
        """POST request-token: a new request token, as a form-encoded body."""
        return str(self._run(self._request_token, uri, method, body, headers))

    def _request_token(self, uri: str, method: str, body: Body, headers: Headers) -> str:
        request = self._parse(uri, method, body, headers)
        self._precheck(request)
        if not request.redirect_uri:
            request.redirect_uri = STORED_CALLBACK
        with self._unit() as session:
            try:
                self._request_ep.validate_request_token_request(request)
            except oauth_errors.OAuth1Error as exc:
                raise self._oauthlib_error(exc) from None
            consumer = self._authenticated(request)
            if not request.validator_log.get("callback"):
                if request.redirect_uri == STORED_CALLBACK:
                    raise absent("oauth_callback")
                raise rejected("oauth_callback", "oob or an absolute http(s) URL.")
            _require_three_legged(consumer)
            self._store_nonce(session, consumer, request)
            now = utcnow()
            _row, secret = self._new_token(
                session, consumer, TokenType.REQUEST, state=TokenState.PENDING,
                callback_url=request.tui_callback, issued_at=now,
                expires_at=now + timedelta(seconds=self.settings.request_token_ttl))
            token = _row.token
        return str(urlencode([("oauth_token", token), ("oauth_token_secret", secret),
                              ("oauth_callback_confirmed", "true")]))

    # Access token and session renewal ------------------------------------------------

    def access_token(self, uri: str, method: str, body: Body, headers: Headers) -> str:
        """POST access-token: exchange an authorized request token, or renew a session."""
        return str(self._run(self._access_token, uri, method, body, headers))

    def _token_answer(self, token: Token, secret: str, now: datetime) -> str:
        assert token.expires_at is not None and token.authorization_expires_at is not None
        return str(urlencode([
            ("oauth_token", token.token), ("oauth_token_secret", secret),
            ("oauth_expires_in", str(max(0, int((token.expires_at - now).total_seconds())))),
            ("oauth_session_handle", token.session_handle or ""),
            ("oauth_authorization_expires_in",
             str(max(0, int((token.authorization_expires_at - now).total_seconds())))),
        ]))

    def _access_token(self, uri: str, method: str, body: Body, headers: Headers) -> str:
        request = self._parse(uri, method, body, headers)
        if "oauth_session_handle" in request.oauth_params:
            return self._renew(uri, method, body, headers, request)
        self._precheck(request, ("oauth_token", "oauth_verifier"))
        with self._unit() as session:
            try:
                self._access_ep.validate_access_token_request(request)
            except oauth_errors.OAuth1Error as exc:
                raise self._oauthlib_error(exc) from None
            consumer, row = self._authenticated_token(request)
            now = utcnow()
            if row.state == TokenState.USED:
                raise Problem("token_used")
            if row.state == TokenState.DENIED:
                raise Problem("permission_denied")
            if row.state == TokenState.REVOKED:
                raise Problem("token_revoked")
            if row.expires_at is not None and row.expires_at <= now:
                raise Problem("token_expired", "The request token has expired (it lives "
                              f"{self.settings.request_token_ttl} seconds); start again.")
            if row.state == TokenState.PENDING:
                raise Problem("permission_unknown")
            if row.state != TokenState.AUTHORIZED:
                raise Problem("token_rejected")
            if not request.validator_log.get("verifier"):
                raise Problem("token_rejected", "oauth_verifier does not match this token.")
            _require_three_legged(consumer)
            used = session.exec(update(Token)
                                .where(col(Token.id) == row.id,
                                       col(Token.state) == TokenState.AUTHORIZED)
                                .values(state=TokenState.USED, last_used_at=now))
            if used.rowcount != 1:
                raise Problem("token_used")
            self._store_nonce(session, consumer, request)
            access, secret = self._new_token(
                session, consumer, TokenType.ACCESS, state=TokenState.ACTIVE, user=row.user,
                issued_at=now,
                session_handle=secrets.token_urlsafe(24),
                expires_at=now + timedelta(seconds=self.settings.access_token_ttl),
                authorization_expires_at=now + timedelta(seconds=self.settings.authorization_ttl))
            return self._token_answer(access, secret, now)

    def _renew(self, uri: str, method: str, body: Body, headers: Headers, parsed: Any) -> str:
        """The OAuth Session extension: a new access token for the same authorization."""
        self._precheck(parsed, ("oauth_token", "oauth_session_handle"))
        handle = parsed.oauth_params["oauth_session_handle"]
        with self._unit() as session:
            _valid, request = self._resource_ep.validate_protected_resource_request(
                uri, method, body, dict(headers))
            if request is None:
                raise Problem("parameter_rejected")
            consumer, row = self._authenticated_token(request)
            now = utcnow()
            if row.state == TokenState.REVOKED:
                raise Problem("token_revoked")
            if row.state == TokenState.USED:
                raise Problem("token_used", "This access token was already renewed.")
            if row.state != TokenState.ACTIVE or not row.session_handle:
                raise Problem("token_rejected")
            if not secrets.compare_digest(row.session_handle.encode(), handle.encode()):
                raise Problem("token_rejected", "oauth_session_handle does not match this token.")
            if row.authorization_expires_at is None or row.authorization_expires_at <= now:
                raise Problem("token_expired",
                              "The authorization has expired; the user must approve again.")
            _require_three_legged(consumer)
            done = session.exec(update(Token)
                                .where(col(Token.id) == row.id,
                                       col(Token.state) == TokenState.ACTIVE)
                                .values(state=TokenState.USED, session_handle=None,
                                        last_used_at=now))
            if done.rowcount != 1:
                raise Problem("token_used", "This access token was already renewed.")
            self._store_nonce(session, consumer, request)
            expires = min(now + timedelta(seconds=self.settings.access_token_ttl),
                          row.authorization_expires_at)
            access, secret = self._new_token(
                session, consumer, TokenType.ACCESS, state=TokenState.ACTIVE, user=row.user,
                issued_at=now,
                session_handle=handle, expires_at=expires,
                authorization_expires_at=row.authorization_expires_at)
            return self._token_answer(access, secret, now)

    # Protected resources ------------------------------------------------------------

    def verify(self, uri: str, method: str, body: Body, headers: Headers, *,
               wait: bool = True) -> Access:
        """A signed request to a protected resource: who it is, or a Problem.

        With ``wait=False`` (the event loop) it never waits for SQLite's write lock:
        when another connection holds it, the request is checked all the same and
        :class:`WriteBusy` is raised with what is left to do (the nonce's write), to
        run in a thread."""
        result = self._run(self._verify, uri, method, body, headers, wait)
        assert isinstance(result, Access)
        return result

    def _verify(self, uri: str, method: str, body: Body, headers: Headers,
                wait: bool = True) -> Access:
        """The hot path, without oauthlib's endpoint: what its ResourceEndpoint and
        SignatureOnlyEndpoint check beyond :meth:`_precheck` is https when the public
        URL is (the URI is built from it) and a 10-digit timestamp (any inside the
        window is), so the checks are made here in the same order, on the request
        parsed once.  Reads happen in a read transaction (on SQLite it never takes the
        write lock), the signature is checked outside any transaction, and only a valid
        request writes: its nonce, one statement, in a short write transaction (see
        :meth:`_write` for when that waits)."""
        request = self._parse(uri, method, body, headers)
        self._precheck(request)
        token = request.resource_owner_key
        three_legged = bool(token)
        request.tui_nonce = (int(request.timestamp), request.nonce, token or "")
        self.store.check_identity()  # a removed or replaced store file: refuse (503)
        with self._hot.reading() as conn:  # one statement (consumer and token)
            if three_legged:
                consumer, known, row = self.consumers.lookup_with_token(
                    conn, request.client_key, token, TokenType.ACCESS)
            else:
                consumer, known = self.consumers.lookup(conn, request.client_key)
                row = None
        request.tui_consumer = consumer
        request.tui_token = row
        request.validator_log = {"client": known,
                                 "signature": self._signature_ok(request, consumer, row)}
        consumer = self._authenticated(request, with_token=three_legged)
        now = utcnow()
        if three_legged:
            row = request.tui_token
            if row is None:
                raise Problem("token_rejected")
            if row.state == TokenState.REVOKED:
                raise Problem("token_revoked")
            if row.state == TokenState.USED:
                raise Problem("token_used", "This access token was renewed; use the new one.")
            if row.expires_at is not None and row.expires_at <= now:
                raise Problem("token_expired", "The access token has expired; renew it with "
                              "oauth_session_handle or start again.")
            if row.state != TokenState.ACTIVE:
                raise Problem("token_rejected")
            _require_three_legged(consumer)
            touch = row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY
            return self._write(wait, consumer, request,
                               Access(consumer.key, consumer.name, row.user, "3lo"),
                               row.id if touch else None, now)
        if not consumer.two_lo_allowed:
            raise Problem("consumer_key_rejected",
                          "2-legged OAuth is not allowed for this consumer.")
        requestor = [v for k, v in request.params if k == "xoauth_requestor_id"]
        if len(requestor) > 1:
            raise rejected("xoauth_requestor_id", "give it once.")
        if requestor:
            if not consumer.two_lo_impersonation:
                raise Problem("user_refused",
                              "This consumer may not name the user (impersonation is off).")
            user: str | None = requestor[0]
            if not user or len(user) > 255 or not user.isprintable():
                raise rejected("xoauth_requestor_id", "a user name.")
        else:
            user = consumer.two_lo_execute_as or None
        return self._write(wait, consumer, request,
                           Access(consumer.key, consumer.name, user, "2lo"))

    def _write(self, wait: bool, consumer: ConsumerEntry, request: Any, access: Access,
               token_id: int | None = None, now: datetime | None = None) -> Access:
        """What a valid signed request writes, in one short transaction: its nonce (a
        replay is refused here) and, every LAST_USED_GRANULARITY, the token's last use.

        SQLite has one write lock per database: while a purge's batch or another
        process's write holds it, the nonce waits (the busy timeout).  Waiting on the
        event loop would stall every other request, so with ``wait=False`` the
        write is only tried (it takes the lock at once or not at all); when it is
        taken, :class:`WriteBusy` hands the same write over to a thread, which waits
        there.  Either way the nonce is written before the answer, under the same
        unique index, so a replay is refused on every process and host."""
        def write(wait: bool) -> Access:
            with self._hot.writing(wait) as wconn:
                self._store_nonce(wconn, consumer, request)
                if token_id is not None:
                    wconn.execute(update(Token).where(col(Token.id) == token_id)
                                  .values(last_used_at=now))
            return access

        try:
            return write(wait)
        except WriteBusy:
            def finish() -> Access:
                try:
                    result = self._run(write, True)
                except Problem as problem:  # nonce_used, found in a thread
                    problem.sent = problem.sent or sent_of(request, problem.cause)
                    raise
                assert isinstance(result, Access)
                self.refusal_log.sample(request.client_key, int(request.timestamp))
                return result
            raise WriteBusy(finish) from None

    def _signature_ok(self, request: Any, consumer: ConsumerEntry, row: Any) -> bool:
        """As ``ParsedEndpoint._check_signature`` with the validator: the signature
        always computed (a dummy key, secret or token ciphertext for unknown ones)."""
        method = request.signature_method
        bases: tuple[str, ...] = request.tui_base_strings
        if method == RSA_SHA1:
            return any(verify_rsa_sha1(b, request.signature, consumer.rsa_key) for b in bases)
        token_secret = None
        if request.resource_owner_key:
            blob, aad = ((row.secret_enc, row.token) if row is not None
                         else self.dummy_token_blob)
            token_secret = self.data_key.decrypt(blob, aad)
            if token_secret is None:  # not decryptable: treat as unknown
                request.tui_token = None
                token_secret = self.dummy_secret
        return verify_shared_secret(method, request.signature, bases,
                                    consumer.shared_secrets(utcnow()), token_secret)

    def keys_for(self, consumer_key: str, token: str) -> Keys | None:
        """What this server checks ``consumer_key``'s signatures with (and ``token``'s
        secret, when it is that consumer's), for the refusal log's diagnosis (its flush,
        in a thread); None for a key no consumer has.  One or two reads."""
        with self.store.engine.connect() as conn:
            consumer, known = self.consumers.lookup(conn, consumer_key)
            if not known:
                return None
            token_secret = None
            if token:
                row = conn.execute(select(Token.secret_enc, Token.consumer_id)
                                   .where(col(Token.token) == token)).first()
                if row is not None and row[1] == consumer.id and row[0] is not None:
                    token_secret = self.data_key.decrypt(row[0], token)
        if consumer.signature_method == RSA_SHA1:
            return Keys((), (), consumer.rsa_key, None)
        if consumer_key in self.consumers.failures():
            return None  # its secret is the dummy for now: no verdict
        now = utcnow()
        accepted = consumer.shared_secrets(now)
        old = (consumer.previous_secret,) if (consumer.previous_secret is not None
                                              and consumer.previous_secret not in accepted) \
            else ()
        return Keys(accepted, old, None, token_secret)

    def _data_key_state(self) -> tuple[str | None, bool]:
        """The store's data key check value, and whether a rotation is under way."""
        with self.store.session() as s:
            rows = dict(s.exec(select(StoreMeta.key, StoreMeta.value).where(
                col(StoreMeta.key).in_([CHECK_META_KEY, ROTATION_META_KEY]))).all())
        return rows.get(CHECK_META_KEY), ROTATION_META_KEY in rows

    def reload_data_key(self) -> bool:
        """Housekeeping (every refresh): when a data key rotation began or ended
        (`keyring rotate-data-key`, on any host), read the keys again, so that new
        token secrets are written with the new key and both are read meanwhile.
        Returns whether the keys were reloaded."""
        seen = self._data_key_state()
        if seen == self._data_key_seen:
            return False
        try:
            key = load_data_key(self.store, create=False)
        except SecretStoreError as exc:
            if exc.message != self._data_key_error:  # said once, retried every refresh
                log.error("the store's data key changed but cannot be loaded here: %s %s",
                          exc.message, exc.hint or "")
                self._data_key_error = exc.message
            return False
        self.data_key, self._data_key_seen, self._data_key_error = key, seen, None
        self.dummy_token_blob = _dummy_token_blob(key)
        log.info("data key reloaded (%s)", "rotation under way" if seen[1] else "current key")
        return True

    def close(self) -> None:
        """Give back the connections the request path keeps."""
        self._hot.close()

    def checkpoint_wal(self) -> None:
        """SQLite: copy what the WAL holds into the database, without waiting for
        anyone (PASSIVE), as SQLite's automatic checkpoint would have in the COMMIT of
        the request path's writer, where it is switched off.  The server's housekeeping
        calls this every second, in a thread."""
        if not self._hot.postgres:
            checkpoint(self.store.engine, "PASSIVE", wait_ms=0)

    # Housekeeping ---------------------------------------------------------------------


def _dummy_token_blob(key: DataKey) -> tuple[bytes, str]:
    """A token secret's ciphertext and its token string that no row has: decrypted for
    an unknown token, so that it costs what a known one does."""
    token = "\x00" + secrets.token_urlsafe(24)
    return key.encrypt(secrets.token_urlsafe(32), token), token


def _nonce_insert(dialect: str) -> Any:
    """``INSERT INTO nonces ... ON CONFLICT DO NOTHING RETURNING id``: no row is a replay
    (RETURNING, since SQLAlchemy adds it on PostgreSQL anyway, where rowcount is then -1)."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(Nonce).values(
        consumer_key=bindparam("consumer_key"), token=bindparam("token"),
        timestamp=bindparam("timestamp"), nonce=bindparam("nonce")
    ).on_conflict_do_nothing().returning(col(Nonce.id))


class _HotConnections:
    """The connections the signed-request path keeps checked out, so that a request
    costs no pool checkout (nor, on PostgreSQL, its pre-ping round trip).

    PostgreSQL: one connection in autocommit: each statement is its own transaction
    (the reads are single statements; the nonce is one INSERT), so a request costs
    its statements' round trips and no BEGIN/COMMIT.  SQLite: a reader (deferred
    BEGIN, never the write lock) and a writer (BEGIN IMMEDIATE ... COMMIT) whose busy
    timeout is zero: its BEGIN takes the write lock at once or fails at once.  When
    it fails, a caller that may wait (``writing(True)``, in a thread) writes through a
    connection of the pool, with the normal busy timeout; one that may not
    (``writing(False)``, the event loop) gets :class:`WriteBusy`.  The writer is
    detached from the pool, so its zero timeout never reaches another caller.

    One thread at a time uses them (the event loop, when the app runs the flow
    inline); another thread meanwhile takes connections from the pool as before.  A
    connection that failed is dropped and made again on the next request."""

    def __init__(self, engine: Any, read_engine: Any) -> None:
        self.engine = engine
        self.read_engine = read_engine
        self.postgres = engine.dialect.name == "postgresql"
        self._lock = threading.Lock()
        self._read: Connection | None = None
        self._write: Connection | None = None

    def _connect(self, write: bool) -> Connection:
        if self.postgres:
            if self._write is None:
                self._write = self.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT")
            return self._write
        if write:
            if self._write is None:
                conn = self.engine.connect()
                conn.detach()  # closed, not pooled, when done: its pragmas stay its own
                raw: Any = conn.connection.dbapi_connection
                raw.execute("PRAGMA busy_timeout = 0")
                # Its COMMIT would run SQLite's automatic checkpoint whenever the WAL
                # passes 1,000 pages (up to 19 ms on the loop while a purge ran); the
                # server's housekeeping checkpoints in a thread instead (checkpoint_wal).
                raw.execute("PRAGMA wal_autocheckpoint = 0")
                self._write = conn
            return self._write
        if self._read is None:
            self._read = self.read_engine.connect()
        return self._read

    @contextmanager
    def _use(self, write: bool, wait: bool = True) -> Iterator[Connection]:
        sqlite_write = write and not self.postgres
        conn: Connection | None = None
        if self._lock.acquire(blocking=False):
            try:
                conn = self._connect(write)
                if sqlite_write and not self._begin_now(conn):
                    conn = None  # the write lock is taken
            finally:
                if conn is None:
                    self._lock.release()
        if conn is None:  # another thread has them, or SQLite's write lock is taken
            if sqlite_write and not wait:
                raise WriteBusy(lambda: None)  # a pool connection would wait: hand over
            with (self.engine.begin() if write else self.read_engine.connect()) as pooled:
                yield pooled  # a write waits here for the lock (the busy timeout)
            return
        try:
            yield conn
            if write or self.postgres:
                conn.commit()
            else:
                conn.rollback()
        except SQLAlchemyError:
            self._discard(conn)  # the database failed: a new connection next time
            raise
        except BaseException:  # a refusal (nonce_used): end the transaction, keep it
            try:
                conn.rollback()
            except SQLAlchemyError:
                self._discard(conn)
            raise
        finally:
            self._lock.release()

    def _begin_now(self, conn: Connection) -> bool:
        """SQLite: BEGIN IMMEDIATE on the zero-timeout writer; False when another
        connection holds the write lock (nothing begun)."""
        try:
            conn.begin()
        except OperationalError as exc:
            if not _busy(exc):
                self._discard(conn)
                raise
            with suppress(SQLAlchemyError):
                conn.rollback()
            return False
        return True

    def reading(self) -> Any:
        return self._use(False)

    def writing(self, wait: bool = True) -> Any:
        return self._use(True, wait)

    def _discard(self, conn: Connection) -> None:
        if conn is self._read:
            self._read = None
        if conn is self._write:
            self._write = None
        with suppress(SQLAlchemyError):
            conn.invalidate()
        with suppress(SQLAlchemyError):
            conn.close()

    def close(self) -> None:
        with self._lock:
            for conn in (self._read, self._write):
                if conn is not None:
                    with suppress(SQLAlchemyError):
                        conn.close()
            self._read = self._write = None


def _busy(exc: OperationalError) -> bool:
    """SQLITE_BUSY (any of its extended codes): another connection holds the lock."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == 5  # SQLITE_BUSY
