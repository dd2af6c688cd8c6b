"""The consumer side: obtain tokens from service providers and call them.

Every request to a provider goes through :mod:`tui_oauth.core.net` with the
provider's ``allow_private`` (only public addresses otherwise, the connected
address checked, no proxy) and one deadline per exchange; answers are read up to
a size limit.  Signing is oauthlib's: HMAC-SHA1 with the provider's shared secret,
RSA-SHA1 with our Consumer Info private key (read from the keyring, never written
anywhere else), PLAINTEXT only over https.  Held access tokens keep their secret
encrypted under the store's data key, with the token as associated data.

Nothing here prints or prompts; failures are :class:`ProviderError` subclasses
whose messages say what went wrong and what to do.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import pwd
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

import requests
import urllib3
from oauthlib.oauth1 import SIGNATURE_HMAC, SIGNATURE_PLAINTEXT, SIGNATURE_RSA, Client
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils
from sqlalchemy import delete
from sqlmodel import col, select

from tui_oauth import __version__
from tui_oauth.core.errors import (
    FetchError,
    FieldError,
    NotFoundError,
    ProviderError,
    ProviderProblemError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnreachableError,
    SecretStoreError,
    ValidationError,
)
from tui_oauth.core.models import (
    HMAC_SHA1,
    PLAINTEXT,
    RSA_SHA1,
    HeldToken,
    ServiceProvider,
    TokenType,
)
from tui_oauth.core.net import (
    READING,
    WAITING,
    AddressPolicy,
    AddressRefusedError,
    Deadline,
    guarded_session,
)
from tui_oauth.core.registry import services
from tui_oauth.core.timeutil import utcnow

if TYPE_CHECKING:
    from tui_oauth.core.provider.crypto import DataKey
    from tui_oauth.core.store import Store

#: Token responses are a few hundred bytes; anything past this is not one.
TOKEN_RESPONSE_LIMIT = 1024 * 1024
#: Default size limit of a call's response body (past it the body is truncated).
CALL_RESPONSE_LIMIT = 8 * 1024 * 1024
#: Default time limit of one exchange with a provider (all of it), seconds.
DEFAULT_TIMEOUT = 20.0
#: Clock difference past which the clock check fails (providers commonly allow 5 minutes).
CLOCK_SKEW_LIMIT = 300.0
EXCERPT = 200
OOB = "oob"
_FORM = "application/x-www-form-urlencoded"


def default_local_user() -> str:
    """The OS user running us: whose tokens these are when no local user is named."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid:{os.getuid()}"


@dataclass(frozen=True)
class ConnectStep:
    """A request token obtained, waiting for the user's approval."""

    provider: str
    token: str
    secret: str = field(repr=False)
    callback: str
    authorization_url: str


@dataclass(frozen=True)
class HeldTokenInfo:
    user: str | None
    issued_at: datetime
    expires_at: datetime | None
    authorization_expires_at: datetime | None
    renewable: bool
    last_used_at: datetime | None


@dataclass
class CallResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    truncated: bool = False
    renewed: bool = False
    problem: str | None = None
    advice: str | None = None

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)

    @property
    def content_type(self) -> str:
        return (self.header("Content-Type") or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


@dataclass
class _Answer:
    url: str
    status: int
    reason: str
    headers: requests.structures.CaseInsensitiveDict[str]
    body: bytes
    truncated: bool
    base_string: str
    received_at: float  # time.time() when the answer came

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def skew(self) -> float | None:
        """The provider's clock minus ours, seconds (its Date header), or None."""
        date = self.headers.get("Date")
        if not date:
            return None
        try:
            theirs = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            return None
        return theirs.timestamp() - self.received_at

    def problem(self) -> tuple[str | None, str | None]:
        """``oauth_problem`` and ``oauth_problem_advice`` from WWW-Authenticate or the body."""
        found: dict[str, str] = {}
        www = self.headers.get("WWW-Authenticate", "")
        if www[:6].lower() == "oauth ":
            with contextlib.suppress(ValueError, IndexError):
                # Header values are percent-encoded (RFC 5849 section 3.5.1).
                found.update((k, unquote(v)) for k, v
                             in oauth_utils.parse_authorization_header(www))
        if "oauth_problem" not in found and len(self.body) < 16 * 1024:
            text = self.text().strip()
            if "oauth_problem=" in text and "<" not in text:
                found.update(parse_qsl(text, keep_blank_values=True))
        problem = found.get("oauth_problem") or None
        return problem, (found.get("oauth_problem_advice") or None) if problem else None


class _Client(Client):  # type: ignore[misc]  # oauthlib has no type hints
    """oauthlib's client, also signing ``oauth_session_handle`` when renewing and
    ``oauth_body_hash`` (the OAuth Request Body Hash extension) when asked."""

    session_handle: str | None = None
    body_hash: str | None = None

    def get_oauth_params(self, request: Any) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = super().get_oauth_params(request)
        if self.session_handle:
            params.append(("oauth_session_handle", self.session_handle))
        if self.body_hash:
            params.append(("oauth_body_hash", self.body_hash))
        return params


def excerpt(body: bytes, limit: int = EXCERPT) -> str:
    """The start of a body, whitespace collapsed (the front door escapes the rest)."""
    text = re.sub(r"\s+", " ", body[: limit * 4].decode("utf-8", errors="replace")).strip()
    return text if len(text) <= limit else text[:limit] + "…"


def _phrase(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _size(n: int) -> str:
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB"
    return f"{n // 1024} KiB" if n % 1024 == 0 else f"{n} bytes"


def _skew_words(skew: float) -> str:
    secs = round(abs(skew))
    if secs < 2:
        return "our clock agrees with the provider's (within a second or two)"
    return f"our clock is about {secs} s {'behind' if skew > 0 else 'ahead of'} the provider's"


def _looks_html(ans: _Answer) -> bool:
    media = ans.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    start = ans.body[:200].lstrip().lower()
    return "html" in media or start.startswith((b"<!doctype html", b"<html"))


class ConsumerSideService:
    """Us as a consumer of a service provider's resources."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._data_key: DataKey | None = None

    # -- plumbing -------------------------------------------------------------------

    def _key(self) -> DataKey:
        if self._data_key is None:
            from tui_oauth.core.provider.crypto import load_data_key

            self._data_key = load_data_key(self.store)
        return self._data_key

    def _client(self, p: ServiceProvider, *, token: str | None = None,
                token_secret: str | None = None, callback: str | None = None,
                verifier: str | None = None, session_handle: str | None = None) -> _Client:
        method = p.signature_method
        if method == RSA_SHA1:
            client = _Client(p.consumer_key, signature_method=SIGNATURE_RSA,
                             rsa_key=services(self.store).consumer_info.private_key_pem(),
                             resource_owner_key=token, resource_owner_secret=token_secret,
                             callback_uri=callback, verifier=verifier)
        else:
            secret = services(self.store).providers.shared_secret(p.name)
            if secret is None:
                raise SecretStoreError(
                    f"Service provider {p.name!r} signs with {method} but its shared secret is "
                    "missing from the keyring.",
                    hint="Set it again with `tui-oauth providers edit NAME --secret-stdin`.")
            client = _Client(p.consumer_key, client_secret=secret,
                             signature_method=SIGNATURE_PLAINTEXT if method == PLAINTEXT
                             else SIGNATURE_HMAC,
                             resource_owner_key=token, resource_owner_secret=token_secret,
                             callback_uri=callback, verifier=verifier)
        client.session_handle = session_handle
        return client

    @staticmethod
    def _check_url(p: ServiceProvider, url: str) -> None:
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise ValidationError(FieldError("url", f"{url!r} is not an http or https URL."))
        if p.signature_method == PLAINTEXT and scheme != "https":
            raise ProviderError(
                f"Service provider {p.name!r} signs with PLAINTEXT, which sends the secrets "
                f"as they are, so only https URLs are used with it; {url} is http.",
                hint="Use the https URL, or have the provider accept HMAC-SHA1.")

    def _send(self, p: ServiceProvider, client: _Client | None, method: str, url: str, *,
              form: Sequence[tuple[str, str]] | None = None, body: bytes | None = None,
              headers: Sequence[tuple[str, str]] = (), limit: int = TOKEN_RESPONSE_LIMIT,
              truncate: bool = False, timeout: float = DEFAULT_TIMEOUT) -> _Answer:
        """Sign (``client``; None: an unsigned probe) and send one request; the answer,
        whatever its status."""
        self._check_url(p, url)
        method = method.upper()
        hdrs = {k: v for k, v in headers}
        hdrs.setdefault("User-Agent", f"tui-oauth/{__version__}")
        hdrs["Accept-Encoding"] = "identity"
        sign_body: str | None = None
        if form is not None:
            sign_body = urlencode(list(form))
            hdrs["Content-Type"] = _FORM
        if client is None:
            uri, signed, base = url, hdrs, ""
        else:
            uri, signed, _ = client.sign(url, http_method=method, body=sign_body,
                                         headers=hdrs)
            base = self._base_string(method, uri, signed, sign_body)
        payload: bytes | None = sign_body.encode() if sign_body is not None else body
        deadline = Deadline(timeout)
        with deadline, guarded_session(AddressPolicy(allow_private=p.allow_private),
                                       deadline) as sess:
            deadline.phase = WAITING
            left = max(deadline.remaining(), 0.001)
            try:
                resp = sess.request(method, uri, headers=signed, data=payload, stream=True,
                                    allow_redirects=False, timeout=(left, left))
            except AddressRefusedError as exc:
                raise ProviderUnreachableError(
                    f"Did not send to {url}: {exc.message}",
                    hint="If the provider really is on this machine or an intranet, allow "
                         "private addresses for it (--allow-private)." if
                    exc.refusal.allowable else None) from None
            except requests.RequestException as exc:
                raise self._network(exc, url, deadline) from None
            with resp:
                deadline.phase = READING
                data, truncated = self._read(resp, url, deadline, limit, truncate)
                return _Answer(url, resp.status_code, resp.reason or "", resp.headers, data,
                               truncated, base, time.time())

    @staticmethod
    def _base_string(method: str, uri: str, headers: dict[str, str], form: str | None) -> str:
        params = oauth_signature.collect_parameters(
            uri_query=urlsplit(uri).query, body=form or [], headers=headers,
            exclude_oauth_signature=True)
        base: str = oauth_signature.signature_base_string(
            method, oauth_signature.base_string_uri(uri),
            oauth_signature.normalize_parameters(params))
        return base

    @staticmethod
    def _network(exc: requests.RequestException, url: str, deadline: Deadline) -> ProviderError:
        from tui_oauth.core.consumer_info_fetch import _network_error

        err: FetchError = _network_error(exc, url, deadline)
        cls = ProviderTimeoutError if deadline.expired or isinstance(exc, requests.Timeout) \
            else ProviderUnreachableError
        return cls(err.errors[0].message if err.errors else str(err))

    @staticmethod
    def _timeout(url: str, deadline: Deadline) -> ProviderTimeoutError:
        host = urlsplit(url).hostname or "the provider"
        return ProviderTimeoutError(
            f"{host} did not send its whole answer within {deadline.seconds:g} s: the provider "
            "is slow or stalled. Try again later, or allow a longer time limit.")

    def _read(self, resp: requests.Response, url: str, deadline: Deadline, limit: int,
              truncate: bool) -> tuple[bytes, bool]:
        def too_large() -> ProviderResponseError:
            return ProviderResponseError(
                f"The answer from {url} is larger than {_size(limit)}, far more than a token "
                "response: check that the URL is the provider's OAuth endpoint.",
                status=resp.status_code)

        declared = resp.headers.get("Content-Length", "").strip()
        if not truncate and declared.isdigit() and int(declared) > limit:
            raise too_large()
        body = bytearray()
        try:
            while True:
                if deadline.expired:
                    raise self._timeout(url, deadline)
                chunk = resp.raw.read1(64 * 1024, decode_content=False)
                if not chunk:
                    break
                body += chunk
                if len(body) > limit:
                    if truncate:
                        return bytes(body[:limit]), True
                    raise too_large()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if deadline.expired or isinstance(exc, urllib3.exceptions.ReadTimeoutError
                                              | TimeoutError):
                raise self._timeout(url, deadline) from None
            raise ProviderUnreachableError(
                f"The connection to {urlsplit(url).hostname} broke while reading the answer "
                f"({type(exc).__name__}): try again.") from None
        if deadline.expired:
            raise self._timeout(url, deadline)
        return bytes(body), False

    def _refused(self, p: ServiceProvider, ans: _Answer, what: str) -> ProviderError:
        """Why a token request failed, in words."""
        problem, advice = ans.problem()
        if problem:
            message = f"{p.name} refused the {what}: {problem}"
            if advice:
                message += f" ({advice})"
            message += "."
            hint: str | None = None
            skew = None
            base = None
            if problem == "timestamp_refused":
                skew = ans.skew()
                hint = (f"From its Date header, {_skew_words(skew)}: set this machine's clock "
                        "right (NTP)." if skew is not None else
                        "It sent no Date header to compare clocks with; check that this "
                        "machine's clock is right (NTP).")
            elif problem == "signature_invalid":
                base = ans.base_string
                key = ("the shared secret" if p.signature_method != RSA_SHA1 else
                       "that the provider has our current public key (tui-oauth info show)")
                hint = (f"Check {key}, and the consumer key. The signature base string we "
                        f"signed (compare it with the provider's): {base}")
            elif problem in ("consumer_key_unknown", "consumer_key_rejected"):
                hint = (f"Check the consumer key ({p.consumer_key}): the provider must have "
                        "us as a consumer under that key.")
            elif problem == "permission_unknown" and what == "access token request":
                hint = ("The user has not approved the request yet: approve it at the "
                        "authorization URL, then give the verifier the provider shows.")
            elif problem == "permission_denied" and what == "access token request":
                hint = "The user denied access: connect again if that was a mistake."
            elif problem in ("token_expired", "token_rejected", "token_used",
                             "permission_denied", "permission_unknown", "token_revoked"):
                hint = ("The verifier is wrong, or the request token expired or was used "
                        "(a refused exchange ends it at most providers): connect again."
                        if what == "access token request" else
                        "Connect again to get a new token.")
            return ProviderProblemError(message, hint=hint, problem=problem, advice=advice,
                                        status=ans.status, base_string=base, skew=skew)
        if _looks_html(ans):
            return ProviderResponseError(
                f"{ans.url} answered {_phrase(ans.status)} with an HTML page (a login page?) "
                f"instead of a {what} response: check that the URL is the provider's OAuth "
                "endpoint and not a web page, and that nothing (a login proxy) stands in front "
                "of it.", status=ans.status)
        body = excerpt(ans.body)
        return ProviderResponseError(
            f"{ans.url} answered {_phrase(ans.status)} to the {what}"
            + (f": {body}" if body else " with an empty body")
            + ". Check the URL and the provider's settings for us.", status=ans.status)

    def _token_fields(self, p: ServiceProvider, ans: _Answer, what: str) -> dict[str, str]:
        if ans.status != 200:
            raise self._refused(p, ans, what)
        if _looks_html(ans):
            raise self._refused(p, ans, what)
        try:
            text = ans.body.decode("utf-8")
            fields = dict(parse_qsl(text.strip(), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            body = excerpt(ans.body)
            raise ProviderResponseError(
                f"{ans.url} answered 200 but not with a token response (form-encoded "
                f"oauth_token and oauth_token_secret): {body or 'an empty body'}. Check that "
                "the URL is the provider's OAuth endpoint.", status=200) from None
        if fields.get("oauth_problem"):
            raise self._refused(p, ans, what)
        missing = [k for k in ("oauth_token", "oauth_token_secret") if not fields.get(k)]
        if missing:
            raise ProviderResponseError(
                f"The {what} response from {ans.url} has no {' and no '.join(missing)}: it is "
                f"not a token response ({excerpt(ans.body) or 'empty'}). Check that the URL is "
                "the provider's OAuth endpoint.", status=200)
        return fields

    def _provider(self, name: str) -> ServiceProvider:
        return services(self.store).providers.get(name)

    # -- the dance --------------------------------------------------------------------

    def request_token(self, provider_name: str, callback: str = OOB, *,
                      timeout: float = DEFAULT_TIMEOUT) -> ConnectStep:
        """Ask for a request token; the step holds the URL to open for approval."""
        p = self._provider(provider_name)
        ans = self._send(p, self._client(p, callback=callback), "POST", p.request_token_url,
                         form=[], timeout=timeout)
        fields = self._token_fields(p, ans, "request token request")
        if fields.get("oauth_callback_confirmed") != "true":
            raise ProviderResponseError(
                f"{p.name} did not confirm the callback (oauth_callback_confirmed=true is "
                "missing from its request token response): it speaks OAuth 1.0, not 1.0a. "
                "tui-oauth only connects with OAuth 1.0a, because 1.0 is open to session "
                "fixation; ask the provider's admin for 1.0a.", status=ans.status)
        return ConnectStep(p.name, fields["oauth_token"], fields["oauth_token_secret"], callback,
                           self.authorization_url(p, fields["oauth_token"]))

    @staticmethod
    def authorization_url(p: ServiceProvider, token: str) -> str:
        parts = urlsplit(p.authorization_url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query = [(k, v) for k, v in query if k != "oauth_token"] + [("oauth_token", token)]
        return urlunsplit(parts._replace(query=urlencode(query)))

    def exchange(self, step: ConnectStep, verifier: str, local_user: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT) -> HeldTokenInfo:
        """Trade the approved request token and its verifier for an access token, and
        keep it as this local user's token (replacing any it had)."""
        verifier = verifier.strip()
        if not verifier:
            raise ValidationError(FieldError("verifier", "The verifier is empty: give the "
                                             "code the provider showed after approving."))
        user = local_user or default_local_user()
        p = self._provider(step.provider)
        client = self._client(p, token=step.token, token_secret=step.secret, verifier=verifier)
        ans = self._send(p, client, "POST", p.access_token_url, form=[], timeout=timeout)
        fields = self._token_fields(p, ans, "access token request")
        return self._keep(p, user, fields, action="provider.connect")

    def _keep(self, p: ServiceProvider, user: str | None, fields: dict[str, str], *,
              action: str, replace_id: int | None = None) -> HeldTokenInfo:
        now = utcnow()

        def seconds(name: str) -> datetime | None:
            value = fields.get(name, "").strip()
            return now + timedelta(seconds=int(value)) if value.isdigit() else None

        token, secret = fields["oauth_token"], fields["oauth_token_secret"]
        row = HeldToken(provider_id=p.id or 0, type=TokenType.ACCESS, user=user, token=token,
                        secret_enc=self._key().encrypt(secret, token),
                        session_handle=fields.get("oauth_session_handle") or None,
                        issued_at=now, expires_at=seconds("oauth_expires_in"),
                        authorization_expires_at=seconds("oauth_authorization_expires_in"))
        with self.store.transaction() as uow:
            where = [col(HeldToken.provider_id) == p.id]
            if replace_id is not None:
                where.append(col(HeldToken.id) == replace_id)
            elif user is None:
                where.append(col(HeldToken.user).is_(None))
            else:
                where.append(col(HeldToken.user) == user)
            uow.session.exec(delete(HeldToken).where(*where))
            uow.session.add(row)
            uow.session.flush()
            uow.audit(action, "service_provider", p.name, after={
                "user": user, "expires_at": row.expires_at.isoformat() if row.expires_at
                else None, "renewable": bool(row.session_handle)},
                detail=f"access token held for local user {user}")
        return _info(row)

    # -- held tokens --------------------------------------------------------------------

    def tokens(self, provider_name: str) -> list[HeldTokenInfo]:
        p = self._provider(provider_name)
        with self.store.session() as s:
            rows = s.exec(select(HeldToken).where(HeldToken.provider_id == p.id)
                          .order_by(col(HeldToken.user))).all()
        return [_info(r) for r in rows]

    def forget(self, provider_name: str, user: str | None = None) -> int:
        """Drop the tokens we hold from a provider (one local user's, or all)."""
        p = self._provider(provider_name)
        with self.store.transaction() as uow:
            stmt = delete(HeldToken).where(col(HeldToken.provider_id) == p.id)
            if user is not None:
                stmt = stmt.where(col(HeldToken.user) == user)
            n = int(uow.session.exec(stmt).rowcount)
            if n:
                uow.audit("provider.forget", "service_provider", p.name,
                          detail=f"{n} held token(s) dropped"
                          + (f" (local user {user})" if user is not None else ""))
        return n

    def _held(self, p: ServiceProvider, user: str) -> tuple[HeldToken, str]:
        with self.store.session() as s:
            row = s.exec(select(HeldToken).where(HeldToken.provider_id == p.id,
                                                 HeldToken.user == user)).first()
        if row is None:
            raise NotFoundError(
                f"No token is held from {p.name} for local user {user!r}.",
                hint=f"Connect first: `tui-oauth providers connect {p.name} --user {user}`.")
        secret = self._key().decrypt(row.secret_enc or b"", row.token)
        if secret is None:
            raise SecretStoreError(
                f"The token held from {p.name} for {user!r} cannot be decrypted with this "
                "store's data key (the keyring item was replaced?).",
                hint="Connect again to get a new token.")
        return row, secret

    def _renew(self, p: ServiceProvider, row: HeldToken, secret: str, *,
               timeout: float) -> tuple[HeldToken, str]:
        client = self._client(p, token=row.token, token_secret=secret,
                              session_handle=row.session_handle)
        ans = self._send(p, client, "POST", p.access_token_url, form=[], timeout=timeout)
        fields = self._token_fields(p, ans, "token renewal")
        self._keep(p, row.user, fields, action="provider.renew", replace_id=row.id)
        return self._held(p, row.user or "")

    # -- calls ------------------------------------------------------------------------

    def resolve_url(self, p: ServiceProvider, url: str) -> str:
        """A path (``/rest/x``) is taken relative to the provider's request-token URL."""
        if url.startswith("/"):
            return urljoin(p.request_token_url, url)
        return url

    def call(self, provider_name: str, method: str, url: str, *,
             data: Sequence[tuple[str, str]] | None = None, body: bytes | None = None,
             headers: Sequence[tuple[str, str]] = (), local_user: str | None = None,
             two_legged: bool = False, as_user: str | None = None,
             max_bytes: int = CALL_RESPONSE_LIMIT, body_hash: bool = False,
             timeout: float = DEFAULT_TIMEOUT) -> CallResponse:
        """A signed request with the held token (or 2-legged, as ``as_user`` when given).

        Form ``data`` is signed; a raw ``body`` is sent as is.  An expired token with a
        session handle is renewed once (before, or when the provider says
        token_expired), and the new token replaces it.  ``body_hash``: sign
        ``oauth_body_hash`` (base64 SHA-1 of the raw body, empty for none) for
        providers that ask for it; never with form data, which is signed itself.
        The provider's refusals come
        back as a response with ``problem``/``advice`` set, not as an error.
        """
        p = self._provider(provider_name)
        url = self.resolve_url(p, url)
        if as_user is not None:
            if not two_legged:
                raise ValidationError(FieldError("as_user",
                                                 "Acting as a user needs 2-legged OAuth."))
            parts = urlsplit(url)
            query = [*parse_qsl(parts.query, keep_blank_values=True),
                     ("xoauth_requestor_id", as_user)]
            url = urlunsplit(parts._replace(query=urlencode(query)))
        if data is not None and body is not None:
            raise ValidationError(FieldError("data", "Give form fields or a body, not both."))
        if data is not None and body_hash:
            raise ValidationError(FieldError("body_hash", "oauth_body_hash is for bodies that "
                                             "are not form-encoded; form fields are signed "
                                             "as they are."))
        user = local_user or default_local_user()
        row: HeldToken | None = None
        secret = ""
        renewed = False
        if not two_legged:
            row, secret = self._held(p, user)
            if row.expires_at is not None and row.expires_at <= utcnow() and row.session_handle:
                row, secret = self._renew(p, row, secret, timeout=timeout)
                renewed = True

        def send() -> _Answer:
            client = (self._client(p) if row is None else
                      self._client(p, token=row.token, token_secret=secret))
            if body_hash:
                client.body_hash = base64.b64encode(
                    hashlib.sha1(body or b"", usedforsecurity=False).digest()).decode("ascii")
            return self._send(p, client, method, url, form=data, body=body, headers=headers,
                              limit=max_bytes, truncate=True, timeout=timeout)

        ans = send()
        problem, advice = ans.problem()
        if (row is not None and not renewed and ans.status == 401
                and problem == "token_expired" and row.session_handle):
            row, secret = self._renew(p, row, secret, timeout=timeout)
            renewed = True
            ans = send()
            problem, advice = ans.problem()
        if row is not None and ans.status < 400:
            with self.store.transaction() as uow:
                held = uow.session.get(HeldToken, row.id)
                if held is not None:
                    held.last_used_at = utcnow()
                    uow.session.add(held)
        return CallResponse(ans.status, ans.reason, list(ans.headers.items()), ans.body,
                            ans.truncated, renewed, problem, advice)

    # -- test connection --------------------------------------------------------------

    def test(self, provider_name: str, *, timeout: float = 10.0) -> Iterator[CheckResult]:
        """Check a provider without any user's approval, one result at a time."""
        p = self._provider(provider_name)
        skew: float | None = None
        from tui_oauth.core.services.providers import URL_FIELDS

        for f, label in URL_FIELDS.items():
            url = getattr(p, f)
            try:
                # Unsigned: whether the URL answers at all.  A signed GET with no token
                # left the provider a refusal against our key for each (in its logs,
                # and in a tui-oauth provider's consumer view); the signed check is the
                # request token's, below.
                ans = self._send(p, None, "GET", url, timeout=timeout)
            except (ProviderError, ValidationError, SecretStoreError) as exc:
                yield CheckResult(f"{label} answers", False, str(exc))
                continue
            if skew is None:
                skew = ans.skew()
            yield CheckResult(f"{label} answers", True, f"{url} answered {_phrase(ans.status)}")
        if skew is None:
            yield CheckResult("Clock", False, "no answer carried a Date header to compare "
                              "our clock with")
        else:
            ok = abs(skew) <= CLOCK_SKEW_LIMIT
            yield CheckResult("Clock", ok, _skew_words(skew) + (
                "" if ok else ": providers refuse timestamps this far off; set this "
                "machine's clock right (NTP)"))
        try:
            self.request_token(p.name, timeout=timeout)
        except (ProviderError, ValidationError, SecretStoreError, NotFoundError) as exc:
            yield CheckResult("Request token", False, str(exc))
        else:
            yield CheckResult("Request token", True,
                              f"{p.name} issued a request token for our signed request "
                              f"({p.signature_method}); it is left to expire")


def _info(row: HeldToken) -> HeldTokenInfo:
    return HeldTokenInfo(row.user, row.issued_at, row.expires_at, row.authorization_expires_at,
                         bool(row.session_handle), row.last_used_at)


__all__ = [
    "CALL_RESPONSE_LIMIT", "DEFAULT_TIMEOUT", "HMAC_SHA1", "OOB", "TOKEN_RESPONSE_LIMIT",
    "CallResponse", "CheckResult", "ConnectStep", "ConsumerSideService", "HeldTokenInfo",
    "default_local_user",
]
