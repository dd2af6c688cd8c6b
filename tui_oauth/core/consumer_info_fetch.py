"""Fetching a consumer-info document by URL: hostile input, handled with care.

Only public addresses unless private ones are allowed, checked on the address
actually connected to, on every redirect (:mod:`tui_oauth.core.net`); one
deadline for the whole fetch (DNS, connect, TLS, headers and body); at most five
redirects (each checked); a size limit enforced while reading, compressed bodies
decompressed under the same limit; no proxy and no credentials ever sent (not
even from ~/.netrc).  Kept apart from consumer_info_doc so that importing the
core does not import requests.
"""

from __future__ import annotations

import socket
import ssl
import zlib
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from urllib3.exceptions import NameResolutionError

from tui_oauth import __version__
from tui_oauth.core.consumer_info_doc import (
    CONSUMER_INFO_PATH,
    ConsumerInfoDoc,
    consumer_info_url,
    parse_consumer_info,
)
from tui_oauth.core.errors import FetchError, ValidationError
from tui_oauth.core.net import (
    CONNECTING,
    READING,
    RESOLVING,
    TLS,
    WAITING,
    AddressPolicy,
    AddressRefusedError,
    Deadline,
    Refusal,
    guarded_session,
)
from tui_oauth.core.validation import url_problem

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_BASE_URL_HINT = (
    "Enter the consumer application's base URL (e.g. https://jira.example.com, "
    "the address users open); tui-oauth adds " + CONSUMER_INFO_PATH + "."
)


class FetchRefusedError(FetchError):
    """The URL or a redirect led to an address the policy refuses; nothing was sent.

    The message names the rule and no front end's option: ``refusal.allowable`` says
    whether allowing private addresses would admit it, so the CLI and the console can
    add their own hint."""

    def __init__(self, message: str, refusal: Refusal) -> None:
        super().__init__(message)
        self.refusal = refusal


@dataclass(frozen=True)
class FetchResult:
    url: str  # what was requested
    final_url: str  # after redirects
    status: int
    content_type: str
    elapsed: float  # seconds, whole fetch
    doc: ConsumerInfoDoc
    redirects: tuple[str, ...] = ()
    size: int = 0  # bytes of the document (after any content decoding)


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """Auth hook that sends no credentials (and keeps requests from using ~/.netrc)."""
    request.headers.pop("Authorization", None)
    request.headers.pop("Proxy-Authorization", None)
    return request


def _causes(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    stack: list[object] = [exc]
    while stack:
        e = stack.pop()
        if not isinstance(e, BaseException) or any(e is f for f in found):
            continue
        found.append(e)
        stack += [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
    return found


def _tls_reason(exc: BaseException) -> str:
    for e in _causes(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"certificate verify failed ({e.verify_message})"
    for e in _causes(exc):
        if isinstance(e, ssl.SSLError) and e.reason:
            return str(e.reason).replace("_", " ").lower()
    return "the TLS handshake failed"


def _where(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    host = parts.hostname or "the server"
    return host, f"{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def _deadline_error(deadline: Deadline, url: str) -> FetchError:
    """What was going on when the one deadline for the whole fetch passed."""
    host, where = _where(url)
    limit = f"{deadline.seconds:g} s"
    again = "Try again, or allow a longer timeout."
    if deadline.phase == RESOLVING:
        return FetchError(
            f"Could not resolve the host name {host} within {limit} (the DNS lookup did not "
            f"finish): check this machine's DNS settings. {again}"
        )
    if deadline.phase == CONNECTING:
        return FetchError(
            f"Timed out connecting to {where} after {limit}: check the URL, and that no "
            "firewall blocks this machine from reaching it."
        )
    if deadline.phase == TLS:
        return FetchError(
            f"{host} accepted the connection but did not complete the TLS handshake within "
            f"{limit}: it may be overloaded, or not speak https on that port. {again}"
        )
    if deadline.phase == READING:
        return FetchError(
            f"{host} did not send the whole document within {limit}: the connection is "
            f"too slow or the server stalled. {again}"
        )
    return FetchError(
        f"{host} accepted the connection but did not send its answer's status line and "
        f"headers within {limit}: it may be overloaded or deliberately slow, or the URL "
        f"points at the wrong service. {again}"
    )


def _network_error(exc: requests.RequestException, url: str, deadline: Deadline) -> FetchError:
    host, where = _where(url)
    causes = _causes(exc)
    if deadline.expired or isinstance(exc, requests.Timeout):
        # Each wait is bounded by the time left, so a timeout is the deadline passing.
        return _deadline_error(deadline, url)
    if isinstance(exc, requests.exceptions.SSLError):
        return FetchError(
            f"TLS error talking to {host}: {_tls_reason(exc)}. If it uses a "
            "self-signed or internal CA certificate, add that CA to the system "
            "trust store (or REQUESTS_CA_BUNDLE); if the server does not speak "
            "https, use an http:// URL."
        )
    if any(isinstance(e, socket.gaierror | NameResolutionError) for e in causes):
        return FetchError(
            f"Could not resolve the host name {host} (DNS lookup failed): check "
            "the spelling of the URL, and this machine's network and DNS settings."
        )
    if any(isinstance(e, ConnectionRefusedError) for e in causes):
        return FetchError(
            f"Connection refused by {where}: nothing is listening there. Check the "
            "host and port in the URL, and that the application is running."
        )
    kind = type(causes[-1]).__name__ if causes else type(exc).__name__
    return FetchError(
        f"Could not fetch from {host} ({kind}): check the URL and the network "
        "connection, then try again."
    )


def _status_error(status: int, url: str) -> FetchError:
    try:
        phrase = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        phrase = str(status)
    if status in (401, 403, 407):
        why = (
            "the consumer-info document should be public, so a login or a proxy is in the "
            "way, or this is not the right URL."
        )
    elif status >= 500:
        why = (
            "the application or a proxy in front of it failed; try again later or check its "
            "logs, and check the URL."
        )
    else:
        why = "expected 200 with the consumer-info document."
    return FetchError(f"{url} answered {phrase}: {why} {_BASE_URL_HINT}")


def _content_type_error(content_type: str, url: str) -> FetchError | None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("application/xml", "text/xml") or media.endswith("+xml"):
        return None
    got = (media[:60] if media.isprintable() else "an unreadable type") or "no Content-Type"
    advice = (
        "is this the login page or a proxy error?"
        if "html" in media
        else "expected XML (application/xml)."
    )
    return FetchError(f"Got {got} from {url} instead of XML: {advice} {_BASE_URL_HINT}")


def _too_large(url: str, max_bytes: int) -> FetchError:
    size = f"{max_bytes // 1024} KiB" if max_bytes % 1024 == 0 else f"{max_bytes} bytes"
    return FetchError(
        f"The answer from {url} is larger than {size}, far more "
        f"than a consumer-info document: check the URL. {_BASE_URL_HINT}"
    )


def _read_body(resp: requests.Response, url: str, deadline: Deadline, max_bytes: int) -> bytes:
    declared = resp.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(url, max_bytes)
    encoding = resp.headers.get("Content-Encoding", "").strip().lower()
    decomp = None
    if encoding in ("gzip", "x-gzip"):
        decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decomp = zlib.decompressobj()
    elif encoding not in ("", "identity"):
        raise FetchError(
            f"{url} sent the document with Content-Encoding {encoding[:30]!r}, "
            "which is not supported: check the URL or the proxy in front of it."
        )
    body = bytearray()
    try:
        while True:
            if deadline.expired:
                raise _deadline_error(deadline, url)
            chunk = resp.raw.read1(16 * 1024, decode_content=False)
            if not chunk:
                break
            if decomp is not None:
                chunk = decomp.decompress(chunk, max_bytes + 1 - len(body))
                if decomp.unconsumed_tail:
                    raise _too_large(url, max_bytes)
            body += chunk
            if len(body) > max_bytes:
                raise _too_large(url, max_bytes)
        if decomp is not None:
            body += decomp.flush()
    except (urllib3.exceptions.HTTPError, OSError, zlib.error) as exc:
        if deadline.expired or isinstance(exc, urllib3.exceptions.ReadTimeoutError |
                                          TimeoutError):
            raise _deadline_error(deadline, url) from None
        raise FetchError(
            f"The connection to {urlsplit(url).hostname} broke while reading the "
            f"document ({type(exc).__name__}): try again."
        ) from None
    if deadline.expired:  # the watchdog's shutdown reads as the end of the body
        raise _deadline_error(deadline, url)
    if len(body) > max_bytes:
        raise _too_large(url, max_bytes)
    return bytes(body)


def fetch_consumer_info(
    base_url: str,
    *,
    timeout: float = 10.0,
    max_bytes: int = 256 * 1024,
    allow_private: bool = False,
    policy: AddressPolicy | None = None,
) -> FetchResult:
    """GET ``{base}/plugins/servlet/oauth/consumer-info`` and parse it.

    ``timeout`` bounds the whole fetch (DNS, connect, TLS, redirects, headers and
    body) in wall-clock seconds; at most 5 redirects; no proxy, no credentials.  Only
    public addresses are connected to, unless ``allow_private`` (loopback, private and
    link-local too: a server on an intranet) or an explicit ``policy``.  Raises
    ``FetchError`` (field ``url``; ``FetchRefusedError`` for a refused address), or
    ``ValidationError`` on the document's fields.
    """
    url = consumer_info_url(base_url)
    if policy is None:
        policy = AddressPolicy(allow_private=allow_private)
    headers = {
        "Accept": "application/xml",
        "User-Agent": f"tui-oauth/{__version__}",
        "Accept-Encoding": "identity",
    }
    deadline = Deadline(timeout)
    current, redirects = url, list[str]()
    with deadline, guarded_session(policy, deadline) as sess:
        sess.max_redirects = MAX_REDIRECTS
        while True:
            deadline.phase = WAITING  # unless a new connection is made (it says so)
            remaining = max(deadline.remaining(), 0.001)
            try:
                resp = sess.get(
                    current,
                    headers=headers,
                    timeout=(remaining, remaining),
                    stream=True,
                    allow_redirects=False,
                    auth=_no_auth,
                )
            except AddressRefusedError as exc:
                where = "" if current == url else f" (redirected from {url})"
                raise FetchRefusedError(
                    f"Did not fetch {current}{where}: {exc}", exc.refusal) from None
            except requests.RequestException as exc:
                raise _network_error(exc, current, deadline) from None
            with resp:
                if deadline.expired:  # the watchdog's shutdown can end the headers early
                    raise _deadline_error(deadline, current)
                deadline.phase = READING
                status = resp.status_code
                if status in _REDIRECT_STATUSES:
                    current = _next_hop(url, current, resp.headers.get("Location"), redirects)
                    continue
                if status != 200:
                    raise _status_error(status, current)
                content_type = resp.headers.get("Content-Type", "")
                ct_error = _content_type_error(content_type, current)
                if ct_error:
                    raise ct_error
                body = _read_body(resp, current, deadline, max_bytes)
                break
    elapsed = deadline.elapsed()
    try:
        doc = parse_consumer_info(body)
    except ValidationError as exc:
        if all(e.field == "document" for e in exc.errors):
            raise FetchError(
                f"{current} did not return a usable consumer-info document: {exc.errors[0].message}"
            ) from None
        raise ValidationError(
            exc.errors,
            f"The consumer-info document from {current} is not "
            "usable: " + "; ".join(f"{e.field}: {e.message}" for e in exc.errors),
        ) from None
    return FetchResult(
        url=url,
        final_url=current,
        status=status,
        content_type=content_type,
        elapsed=elapsed,
        doc=doc,
        redirects=tuple(redirects),
        size=len(body),
    )


def _next_hop(url: str, current: str, location: str | None, redirects: list[str]) -> str:
    if not location or not location.strip():
        raise FetchError(f"{current} answered with a redirect but no Location: {_BASE_URL_HINT}")
    if len(redirects) >= MAX_REDIRECTS:
        raise FetchError(
            f"More than {MAX_REDIRECTS} redirects starting at {url} (a redirect "
            "loop, or a login page?): use the base URL the application is finally "
            "served at."
        )
    target = urljoin(current, location.strip()).split("#", 1)[0]
    problem = url_problem(target, what="The redirect target")
    parts = urlsplit(target)
    if not problem and (parts.username is not None or parts.password is not None):
        problem = "The redirect target contains credentials, which are never sent."
    if problem:
        raise FetchError(f"{current} redirected to an unusable URL: {problem} {_BASE_URL_HINT}")
    redirects.append(target)
    return target
