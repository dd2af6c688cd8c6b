"""The consumer-info XML document (see the spec): parse, render, and fetch by URL.

The document is hostile input: defusedxml (no DTD, entities or external
references), a size limit and a time limit.  Errors: problems with the document
as a whole (malformed XML, a DTD, the wrong root) are ``ValidationError`` on the
field ``document``; problems with one element are on ``key``, ``name``,
``public_key``, ``description`` or ``callback``.  :func:`fetch_consumer_info`
raises ``FetchError`` (field ``url``) for network, HTTP and document-level
problems, and ``ValidationError`` keeping the element fields for the others.
"""

from __future__ import annotations

import socket
import ssl
import time
import unicodedata
import zlib
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urljoin, urlsplit
from xml.etree.ElementTree import Element, SubElement, indent, tostring

import defusedxml.ElementTree as SafeET
import requests
import urllib3
from defusedxml import DefusedXmlException
from urllib3.exceptions import NameResolutionError

from tui_oauth import __version__
from tui_oauth.core.errors import FetchError, FieldError, ValidationError
from tui_oauth.core.keys import PublicKeyInfo, parse_public_key

__all__ = ["CONSUMER_INFO_PATH", "ConsumerInfoDoc", "FetchResult", "consumer_info_url",
           "fetch_consumer_info", "parse_consumer_info", "render_consumer_info"]

CONSUMER_INFO_PATH = "/plugins/servlet/oauth/consumer-info"
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_KEY = 255
MAX_NAME = 255
MAX_DESCRIPTION = 4000
MAX_URL = 2048
_LINE_BREAKS = str.maketrans("", "", "\r\n\t")
_FIELDS = {"key": "key", "name": "name", "publicKey": "public_key",
           "description": "description", "callback": "callback"}


@dataclass(frozen=True)
class ConsumerInfoDoc:
    key: str
    name: str
    description: str | None
    callback: str | None
    public_key: PublicKeyInfo


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in text)


def _check_text(field: str, label: str, value: str, limit: int, errors: list[FieldError], *,
                token: bool = False, multiline: bool = False, required: bool = True) -> None:
    if not value:
        if required:
                errors.append(FieldError(field, f"{label} is empty: it is required."))
    elif len(value) > limit:
        errors.append(FieldError(field, f"{label} is {len(value)} characters long; "
                                        f"the limit is {limit}."))
    elif token and any(c.isspace() for c in value):
        errors.append(FieldError(field, f"{label} contains spaces; keys look like "
                                        "jira:13549426 or www.example.com."))
    elif _has_control(value.translate(_LINE_BREAKS) if multiline else value):
        errors.append(FieldError(field, f"{label} contains control characters."))


def _check_fields(key: str, name: str, description: str | None, callback: str | None,
                  errors: list[FieldError], *, required: bool = True) -> None:
    _check_text("key", "The consumer key", key, MAX_KEY, errors, token=True, required=required)
    _check_text("name", "The consumer name", name, MAX_NAME, errors, required=required)
    if description:
        _check_text("description", "The description", description, MAX_DESCRIPTION, errors,
                    multiline=True)
    if callback and (problem := _url_problem(callback, what="The callback URL")):
        errors.append(FieldError("callback", problem))


def _url_problem(url: str, *, what: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL with a host, or None if it is."""
    if len(url) > MAX_URL:
        return f"{what} is longer than {MAX_URL} characters."
    if any(c.isspace() for c in url) or _has_control(url):
        return f"{what} contains spaces or control characters."
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return f"{what} is not a valid URL (check the host and port)."
    if parts.scheme.lower() not in ("http", "https"):
        return f"{what} must be an absolute http:// or https:// URL, e.g. https://app.example.com."
    if not parts.hostname:
        return f"{what} has no host name, e.g. https://app.example.com."
    return None


def _doc_error(message: str) -> ValidationError:
    return ValidationError(FieldError("document", message))


def _text(element: Element) -> str:
    return "".join(element.itertext()).strip()


def parse_consumer_info(data: bytes) -> ConsumerInfoDoc:
    """Parse and validate a consumer-info document; see the module docs for the errors."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise _doc_error(f"The document is larger than {MAX_DOCUMENT_BYTES // 1024} KiB; "
                         "it cannot be a consumer-info document.")
    if not data.strip():
        raise _doc_error("The document is empty: expected the consumer-info XML "
                         "(<consumer>...</consumer>).")
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except DefusedXmlException as exc:
        raise _doc_error(
            f"The document was refused because it declares a DTD or entities ({type(exc).__name__}"
            "); a consumer-info document never needs them and they are used in "
            "entity-expansion and external-entity attacks. Check that the URL is right.",
        ) from None
    except SafeET.ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        reason = str(exc).split(":")[0]
        raise _doc_error(
            f"The document is not well-formed XML ({reason} at line {line}, column {column}): "
            "expected the consumer-info XML (<consumer>...</consumer>).",
        ) from None
    except (ValueError, LookupError) as exc:  # e.g. an unknown encoding in the declaration
        raise _doc_error(f"The document could not be read as XML ({type(exc).__name__}).") from None
    tag = root.tag.rsplit("}", 1)[-1] if isinstance(root.tag, str) else ""
    if tag != "consumer":
        shown = tag[:40] if tag.isprintable() else "?"
        raise _doc_error(
            f"The root element is <{shown}>, not <consumer>: this is not a consumer-info "
            "document. Check the URL.",
        )

    found: dict[str, str] = {}
    errors: list[FieldError] = []
    for child in root:
        if not isinstance(child.tag, str):
            continue
        local = child.tag.rsplit("}", 1)[-1]
        if local not in _FIELDS:
            continue
        if local in found:
            errors.append(FieldError(_FIELDS[local], f"<{local}> appears more than once."))
            continue
        found[local] = _text(child)

    for element, field in (("key", "key"), ("name", "name"), ("publicKey", "public_key")):
        if not found.get(element):
            state = "is empty" if element in found else "is missing"
            errors.append(FieldError(field, f"<{element}> {state}: the consumer-info document "
                                            f"must give the consumer's {element}."))
    key = found.get("key", "")
    name = " ".join(found.get("name", "").split())
    description = found.get("description") or None
    callback = found.get("callback") or None
    _check_fields(key, name, description, callback, errors, required=False)
    public_key: PublicKeyInfo | None = None
    if found.get("publicKey"):
        try:
            public_key = parse_public_key(found["publicKey"], field="public_key")
        except ValidationError as exc:
            errors.extend(exc.errors)
    if errors or public_key is None:
        raise ValidationError(errors)
    return ConsumerInfoDoc(key=key, name=name, description=description, callback=callback,
                           public_key=public_key)


def render_consumer_info(key: str, name: str, description: str | None, callback: str | None,
                         public_key_base64: str) -> bytes:
    """The consumer-info XML (UTF-8, with declaration) for our Consumer Info record."""
    errors: list[FieldError] = []
    key = key.strip()
    name = name.strip()
    description = (description or "").strip() or None
    callback = (callback or "").strip() or None
    _check_fields(key, name, description, callback, errors)
    try:
        info = parse_public_key(public_key_base64, field="public_key")
    except ValidationError as exc:
        errors.extend(exc.errors)
    if errors:
        raise ValidationError(errors)
    root = Element("consumer")
    SubElement(root, "key").text = key
    SubElement(root, "name").text = name
    SubElement(root, "publicKey").text = info.base64_der
    if description:
        SubElement(root, "description").text = description
    if callback:
        SubElement(root, "callback").text = callback
    indent(root)
    return tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def consumer_info_url(base_url: str) -> str:
    """``{base}/plugins/servlet/oauth/consumer-info`` for a validated base URL (field ``url``)."""
    url = (base_url or "").strip()
    parts = urlsplit(url) if "://" in url and not _url_problem(url, what="") else None
    if not url:
        problem = "Enter the consumer application's base URL, e.g. https://jira.example.com."
    elif "://" not in url:
        problem = f"The URL needs its scheme: https://{url[:80]} or http://{url[:80]}."
    elif parts is None:
        problem = _url_problem(url, what="The URL") or "The URL is not valid."
    elif parts.username is not None or parts.password is not None or "@" in parts.netloc:
        problem = ("Remove the user name and password from the URL: the consumer-info document "
                   "is public and no credentials are sent.")
    elif parts.fragment or url.endswith("#"):
        problem = "Remove the #fragment from the URL: give the application's base URL."
    elif parts.query or url.endswith("?"):
        problem = ("Remove the ?query from the URL: give the application's base URL, e.g. "
                   "https://jira.example.com.")
    else:
        url = url.rstrip("/")
        return url if urlsplit(url).path.endswith(CONSUMER_INFO_PATH) else url + CONSUMER_INFO_PATH
    raise ValidationError(FieldError("url", problem))


# --- fetching by URL ------------------------------------------------------------------

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_BASE_URL_HINT = ("Enter the consumer application's base URL (e.g. https://jira.example.com, "
                  "the address users open); tui-oauth adds " + CONSUMER_INFO_PATH + ".")


@dataclass(frozen=True)
class FetchResult:
    url: str                 # what was requested
    final_url: str           # after redirects
    status: int
    content_type: str
    elapsed: float           # seconds, whole fetch
    doc: ConsumerInfoDoc
    redirects: tuple[str, ...] = ()
    size: int = 0            # bytes of the document (after any content decoding)


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


def _network_error(exc: requests.RequestException, url: str, timeout: float) -> FetchError:
    parts = urlsplit(url)
    host = parts.hostname or "the server"
    where = f"{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    causes = _causes(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return FetchError(f"Timed out connecting to {where} after {timeout:g} s: check the URL, "
                          "and that no firewall or proxy blocks this machine from reaching it.")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return FetchError(f"{host} accepted the connection but did not answer within "
                          f"{timeout:g} s: it may be overloaded, or the URL points at the wrong "
                          "service. Try again, or allow a longer timeout.")
    if isinstance(exc, requests.exceptions.SSLError):
        return FetchError(f"TLS error talking to {host}: {_tls_reason(exc)}. If it uses a "
                          "self-signed or internal CA certificate, add that CA to the system "
                          "trust store (or REQUESTS_CA_BUNDLE); if the server does not speak "
                          "https, use an http:// URL.")
    if any(isinstance(e, socket.gaierror | NameResolutionError) for e in causes):
        return FetchError(f"Could not resolve the host name {host} (DNS lookup failed): check "
                          "the spelling of the URL, and this machine's network and DNS settings.")
    if any(isinstance(e, ConnectionRefusedError) for e in causes):
        return FetchError(f"Connection refused by {where}: nothing is listening there. Check the "
                          "host and port in the URL, and that the application is running.")
    kind = type(causes[-1]).__name__ if causes else type(exc).__name__
    return FetchError(f"Could not fetch from {host} ({kind}): check the URL and the network "
                      "connection, then try again.")


def _status_error(status: int, url: str) -> FetchError:
    try:
        phrase = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        phrase = str(status)
    if status in (401, 403, 407):
        why = ("the consumer-info document should be public, so a login or a proxy is in the "
               "way, or this is not the right URL.")
    elif status >= 500:
        why = ("the application or a proxy in front of it failed; try again later or check its "
               "logs, and check the URL.")
    else:
        why = "expected 200 with the consumer-info document."
    return FetchError(f"{url} answered {phrase}: {why} {_BASE_URL_HINT}")


def _content_type_error(content_type: str, url: str) -> FetchError | None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("application/xml", "text/xml") or media.endswith("+xml"):
        return None
    got = (media[:60] if media.isprintable() else "an unreadable type") or "no Content-Type"
    advice = ("is this the login page or a proxy error?" if "html" in media
              else "expected XML (application/xml).")
    return FetchError(f"Got {got} from {url} instead of XML: {advice} {_BASE_URL_HINT}")


def _too_large(url: str, max_bytes: int) -> FetchError:
    size = f"{max_bytes // 1024} KiB" if max_bytes % 1024 == 0 else f"{max_bytes} bytes"
    return FetchError(f"The answer from {url} is larger than {size}, far more "
                      f"than a consumer-info document: check the URL. {_BASE_URL_HINT}")


def _read_body(resp: requests.Response, url: str, deadline: float, timeout: float,
               max_bytes: int) -> bytes:
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
        raise FetchError(f"{url} sent the document with Content-Encoding {encoding[:30]!r}, "
                         "which is not supported: check the URL or the proxy in front of it.")
    body = bytearray()
    try:
        while True:
            if time.monotonic() > deadline:
                raise FetchError(f"{urlsplit(url).hostname} did not send the whole document "
                                 f"within {timeout:g} s: the connection is too slow or the "
                                 "server stalled. Try again, or allow a longer timeout.")
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
        if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
            raise FetchError(f"{urlsplit(url).hostname} stopped sending the document (no data "
                             f"for {timeout:g} s). Try again, or allow a longer timeout.") from None
        raise FetchError(f"The connection to {urlsplit(url).hostname} broke while reading the "
                         f"document ({type(exc).__name__}): try again.") from None
    if len(body) > max_bytes:
        raise _too_large(url, max_bytes)
    return bytes(body)


def fetch_consumer_info(base_url: str, *, timeout: float = 10.0, max_bytes: int = 256 * 1024,
                        session: requests.Session | None = None) -> FetchResult:
    """GET ``{base}/plugins/servlet/oauth/consumer-info`` and parse it.

    ``timeout`` bounds the whole fetch (connect, redirects and body); at most 5
    redirects; no credentials, cookies from the caller's session aside.  Raises
    ``FetchError`` (field ``url``), or ``ValidationError`` on the document's fields.
    """
    url = consumer_info_url(base_url)
    own = session is None
    sess = requests.Session() if session is None else session
    if own:
        sess.max_redirects = MAX_REDIRECTS
    headers = {"Accept": "application/xml", "User-Agent": f"tui-oauth/{__version__}",
               "Accept-Encoding": "identity"}
    started = time.monotonic()
    deadline = started + timeout
    current, redirects = url, list[str]()
    try:
        while True:
            remaining = max(deadline - time.monotonic(), 0.001)
            try:
                resp = sess.get(current, headers=headers, timeout=(remaining, remaining),
                                stream=True, allow_redirects=False, auth=_no_auth)
            except requests.RequestException as exc:
                raise _network_error(exc, current, timeout) from None
            with resp:
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
                body = _read_body(resp, current, deadline, timeout, max_bytes)
                break
    finally:
        if own:
            sess.close()
    try:
        doc = parse_consumer_info(body)
    except ValidationError as exc:
        if all(e.field == "document" for e in exc.errors):
            raise FetchError(f"{current} did not return a usable consumer-info document: "
                             f"{exc.errors[0].message}") from None
        raise ValidationError(exc.errors, f"The consumer-info document from {current} is not "
                              "usable: " + "; ".join(f"{e.field}: {e.message}"
                                                     for e in exc.errors)) from None
    return FetchResult(url=url, final_url=current, status=status, content_type=content_type,
                       elapsed=time.monotonic() - started, doc=doc,
                       redirects=tuple(redirects), size=len(body))


def _next_hop(url: str, current: str, location: str | None, redirects: list[str]) -> str:
    if not location or not location.strip():
        raise FetchError(f"{current} answered with a redirect but no Location: "
                         f"{_BASE_URL_HINT}")
    if len(redirects) >= MAX_REDIRECTS:
        raise FetchError(f"More than {MAX_REDIRECTS} redirects starting at {url} (a redirect "
                         "loop, or a login page?): use the base URL the application is finally "
                         "served at.")
    target = urljoin(current, location.strip()).split("#", 1)[0]
    problem = _url_problem(target, what="The redirect target")
    parts = urlsplit(target)
    if not problem and (parts.username is not None or parts.password is not None):
        problem = "The redirect target contains credentials, which are never sent."
    if problem:
        raise FetchError(f"{current} redirected to an unusable URL: {problem} {_BASE_URL_HINT}")
    redirects.append(target)
    return target
