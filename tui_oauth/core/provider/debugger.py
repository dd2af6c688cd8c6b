"""The signature debugger: a request as a consumer sent it, checked as this server
checks it, and when the signature does not match, the usual mistake that explains it.

:func:`parse_request` reads what an admin pastes: a raw HTTP request, a ``curl``
command line (with its line continuations), or ``METHOD URL``, header lines, a
blank line and the body.  :func:`check` recomputes the signature base string the
server computes (against the *public* URL, as :meth:`ProviderEngine.public_uri`
does, with :func:`rfc5849.parse_request`) and checks the signature with the
consumer's shared secret(s) or RSA public key and the token secret
(``rfc5849.verify_shared_secret`` / ``verify_rsa_sha1``, the server's own checks).
When it does not match it tries, in order, the base strings and keys a consumer
commonly signs by mistake, and names the first that matches.

:func:`recorded` rebuilds a request from a refusal record (its base string,
signature, the URL the request reached and the server's listen address) so that the
same check runs on a stored refusal, the server's (at write time, with the keys it
holds) and ``refusals show``'s (with the keys in the keyring) alike.

Nothing here prints, and no report holds a secret: a PLAINTEXT signature (which
*is* the secret) is never repeated.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from oauthlib.oauth1.rfc5849.signature import base_string_uri

from tui_oauth.core.errors import ValidationError
from tui_oauth.core.models import HMAC_SHA1, PLAINTEXT, RSA_SHA1
from tui_oauth.core.provider.problems import TRIED_WORDS as TRIED_WORDS  # one source
from tui_oauth.core.provider.problems import Problem
from tui_oauth.core.provider.rfc5849 import (
    FORM_MEDIA_TYPE,
    encode,
    is_form,
    verify_rsa_sha1,
    verify_shared_secret,
)
from tui_oauth.core.provider.rfc5849 import (
    parse_request as parse_oauth,
)

#: The most text the parser reads (a request pasted, a curl line, a body).
MAX_INPUT = 1024 * 1024
_REQUEST_LINE = re.compile(r"^([A-Za-z][A-Za-z-]{0,15})\s+(\S+)(?:\s+HTTP/\d(?:\.\d)?)?\s*$")
_HEADER = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: A finding (refusals.finding) when no usual mistake explains the signature.
NO_MISTAKE = "none"
FORMS_HINT = ("Give a raw HTTP request (request line, headers, a blank line, the body), "
              "a curl command line, or METHOD URL, then header lines, a blank line and "
              "the body.")


@dataclass(frozen=True)
class SentRequest:
    """A request as the consumer sent it.

    ``url``: absolute, as sent (a raw request's target is completed with its Host
    header; its scheme is then a guess, ``scheme_known`` False)."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    scheme_known: bool = True

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def with_headers(self, headers: Iterable[tuple[str, str]]) -> SentRequest:
        return SentRequest(self.method, self.url, tuple(headers), self.body, self.scheme_known)


@dataclass(frozen=True)
class Mistake:
    """A usual mistake that explains the signature: ``code`` (stable, for scripts),
    ``what`` went wrong and how to ``fix`` it, in plain words, and the base string
    the consumer signed (None for PLAINTEXT, which signs none)."""

    code: str
    what: str
    fix: str
    base_string: str | None = None
    #: URL mistakes: the URL the consumer signed, and the one this server checks against.
    signed_url: str | None = None
    checked_url: str | None = None


@dataclass(frozen=True)
class Report:
    method: str
    #: The base string URI the server uses (public URL + path, no query).
    url: str
    #: The URL the request was sent to, as the consumer may have signed it.
    sent_url: str
    consumer_key: str
    token: str | None
    signature_method: str
    #: What this server computes; for PLAINTEXT shown but not signed.
    base_string: str
    matches: bool
    mistake: Mistake | None
    #: The codes of the mistakes tried, in order.
    tried: list[str] = field(default_factory=list)
    #: Things worth knowing whatever the outcome (e.g. "signed with the previous secret").
    notes: list[str] = field(default_factory=list)


# Parsing --------------------------------------------------------------------------------


def _unreadable(why: str) -> ValidationError:
    return ValidationError(f"The request cannot be read: {why} {FORMS_HINT}")


def parse_request(text: str) -> SentRequest:
    """A request from what a consumer's admin pastes: a raw HTTP request, a curl command
    line, or ``METHOD URL`` + header lines + blank line + body.  Raises
    :class:`ValidationError` (field ``request``) for what it cannot read."""
    if len(text) > MAX_INPUT:
        raise _unreadable(f"it is longer than {MAX_INPUT // 1024} KiB.")
    stripped = text.lstrip()
    if stripped.startswith("$ "):
        stripped = stripped[2:].lstrip()
    if not stripped:
        raise _unreadable("it is empty.")
    if re.match(r"curl(\s|$)", stripped):
        return _parse_curl(stripped)
    return _parse_http(stripped)


def _parse_http(text: str) -> SentRequest:
    blank = re.search(r"\r?\n[ \t]*\r?\n", text)
    head, body_text = (text[:blank.start()], text[blank.end():]) if blank else (text, "")
    head = head.rstrip("\r\n")
    lines = head.replace("\r\n", "\n").split("\n")
    first = lines[0].strip()
    match = _REQUEST_LINE.match(first)
    if match is None:
        shown = first[:80] + ("…" if len(first) > 80 else "")
        raise _unreadable(f"the first line ({shown!r}) is not METHOD URL (e.g. "
                          "'POST /rest/api/2/issue HTTP/1.1' or 'GET https://host/path').")
    method, target = match.group(1).upper(), match.group(2)
    headers: list[tuple[str, str]] = []
    for number, line in enumerate(lines[1:], start=2):
        if line[:1] in (" ", "\t") and headers:  # an obsolete folded header line
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        found = _HEADER.match(line)
        if found is None:
            shown = line[:80] + ("…" if len(line) > 80 else "")
            raise _unreadable(f"line {number} ({shown!r}) is not a header (Name: value); "
                              "a blank line goes between the headers and the body.")
        headers.append((found.group(1), found.group(2)))
    body = body_text.encode("utf-8", "surrogateescape")
    length = next((v for k, v in headers if k.lower() == "content-length"), None)
    if length is not None and length.strip().isdigit() and int(length) <= len(body):
        body = body[:int(length)]
    else:
        body = body.rstrip(b"\r\n")
    request = SentRequest(method, target, tuple(headers), body)
    return _absolute(request)


def _absolute(request: SentRequest) -> SentRequest:
    """A request target made absolute with the Host header (scheme: X-Forwarded-Proto,
    else a guess: http)."""
    target = request.url
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", target):
        parts = urlsplit(target)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise _unreadable(f"the URL {target[:200]!r} is not an absolute http(s) URL.")
        return request
    if not target.startswith("/"):
        raise _unreadable(f"the request target {target[:200]!r} is neither a path (/...) "
                          "nor an absolute http(s) URL.")
    host = request.header("host")
    if not host:
        raise _unreadable("the request target is a path and there is no Host header; "
                          "add Host: or give the whole URL.")
    proto = (request.header("x-forwarded-proto") or "").split(",")[0].strip().lower()
    scheme = proto if proto in ("http", "https") else "http"
    return SentRequest(request.method, f"{scheme}://{host.strip()}{target}", request.headers,
                       request.body, scheme_known=bool(proto))


#: curl options that take a value, and are not read here (skipped with it).
_CURL_SKIP_WITH_VALUE = {
    "-A", "--user-agent", "-b", "--cookie", "-c", "--cookie-jar", "-e", "--referer",
    "-o", "--output", "-u", "--user", "-w", "--write-out", "-m", "--max-time",
    "--connect-timeout", "-x", "--proxy", "--cacert", "--capath", "-E", "--cert",
    "--key", "--resolve", "--retry", "-r", "--range", "--limit-rate", "-K", "--config",
    "--interface", "--connect-to", "-U", "--proxy-user", "-D", "--dump-header",
    "--oauth2-bearer", "-z", "--time-cond", "--max-redirs", "-Y", "--speed-limit",
    "-y", "--speed-time", "--retry-delay", "--retry-max-time", "--trace", "--trace-ascii",
    "--stderr", "--tls-max", "--ciphers", "--pinnedpubkey", "--unix-socket",
}
_CURL_DATA = {"-d": "data", "--data": "data", "--data-ascii": "data",
              "--data-binary": "binary", "--data-raw": "raw", "--data-urlencode": "urlencode"}


def _parse_curl(text: str) -> SentRequest:
    joined = re.sub(r"\\\r?\n", " ", text)  # shell line continuations
    joined = re.sub(r"\^\r?\n", " ", joined)  # cmd.exe's
    try:
        words = shlex.split(joined)
    except ValueError as exc:
        raise _unreadable(f"the curl command line does not split into words ({exc}); "
                          "check its quotes.") from None
    method: str | None = None
    url: str | None = None
    headers: list[tuple[str, str]] = []
    data: list[str] = []
    get = head = False
    i = 1
    while i < len(words):
        word = words[i]
        i += 1

        def value(name: str, inline: str | None = None) -> str:
            nonlocal i
            if inline:
                return inline
            if i >= len(words):
                raise _unreadable(f"curl's {name} has no value.")
            i += 1
            return words[i - 1]

        if word in ("-X", "--request") or (word.startswith("-X") and len(word) > 2):
            method = value("-X", word[2:] if word.startswith("-X") else None).upper()
        elif word in ("-H", "--header") or (word.startswith("-H") and len(word) > 2):
            raw = value("-H", word[2:] if word.startswith("-H") else None)
            name, sep, val = raw.partition(":")
            if not sep or not name.strip():
                raise _unreadable(f"curl's -H {raw[:80]!r} is not 'Name: value'.")
            if val.strip() or not raw.rstrip().endswith(";"):
                headers.append((name.strip(), val.strip()))
        elif word in _CURL_DATA or (word.startswith("-d") and len(word) > 2):
            kind = _CURL_DATA.get(word, "data")
            raw = value(word[:2] if word.startswith("-d") else word,
                        word[2:] if word.startswith("-d") and word != "-d" else None)
            data.append(_curl_data(kind, raw))
        elif word == "--url":
            url = value("--url")
        elif word in ("-G", "--get"):
            get = True
        elif word in ("-I", "--head"):
            head = True
        elif word in ("-F", "--form", "--form-string", "-T", "--upload-file", "--json"):
            raise _unreadable(f"curl's {word} is not supported here (a multipart, uploaded "
                              "or JSON body is not signed as OAuth parameters); give the "
                              "body with -d, or paste the raw HTTP request.")
        elif word in _CURL_SKIP_WITH_VALUE:
            value(word)
        elif word == "--":
            if i < len(words) and url is None:
                url = words[i]
            i = len(words)
        elif word.startswith("-"):
            continue  # a flag (-s, -v, -k, --compressed, ...): nothing to read
        elif url is None:
            url = word
        else:
            raise _unreadable(f"curl got two URLs ({url[:80]!r} and {word[:80]!r}); give one.")
    if url is None:
        raise _unreadable("the curl command line has no URL.")
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url):
        url = "http://" + url  # as curl does
    body = "&".join(data)
    if get and data:
        url = url + ("&" if "?" in url else "?") + body
        body = ""
    if method is None:
        method = "HEAD" if head else "POST" if data and not get else "GET"
    if body and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", FORM_MEDIA_TYPE))  # what curl -d sends
    return _absolute(SentRequest(method, url, tuple(headers),
                                 body.encode("utf-8", "surrogateescape")))


def _curl_data(kind: str, raw: str) -> str:
    if raw.startswith("@") and kind != "raw":
        raise _unreadable(f"the body is read from a file ({raw[:80]!r}); paste the body "
                          "itself (-d 'a=1&b=2') or the raw HTTP request.")
    if kind != "urlencode":
        return raw
    # --data-urlencode: "content", "=content", "name=content" (name@file: not here)
    name, sep, content = raw.partition("=")
    if not sep:
        if "@" in raw:
            raise _unreadable("--data-urlencode name@file reads a file; paste its content.")
        return quote(raw, safe="")
    return (f"{name}=" if name else "") + quote(content, safe="")


# What the server computes -----------------------------------------------------------


def public_uri(public_url: str, path: str, query: str = "") -> str:
    """As :meth:`ProviderEngine.public_uri`: the public base + the path below it."""
    public_path = urlsplit(public_url).path
    if public_path and (path == public_path or path.startswith(public_path + "/")):
        path = path[len(public_path):]
    uri = public_url + path
    return f"{uri}?{query}" if query else uri


def _path_and_query(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[1] if "://" in url else url
    slash = rest.find("/")
    target = rest[slash:] if slash >= 0 else "/"
    target = target.split("#", 1)[0]
    path, _, query = target.partition("?")
    return path or "/", query


def _with_base(url: str, base: str) -> str:
    """``base`` (scheme://host/path, no query) with ``url``'s query."""
    _, query = _path_and_query(url)
    return f"{base}?{query}" if query else base


def _parsed(sent: SentRequest, uri: str, headers: Sequence[tuple[str, str]] | None = None,
            body: bytes | None = None) -> Any:
    try:
        return parse_oauth(uri, sent.method, sent.body if body is None else body,
                           dict(sent.headers if headers is None else headers))
    except Problem as problem:
        raise ValidationError(f"The request's OAuth parameters cannot be read: "
                              f"{problem.advice or problem.problem}") from None


def _base_strings(method: str, base_uri: str, params: Sequence[tuple[str, str]],
                  enc: Callable[[str], str] = encode) -> str:
    """Section 3.4.1 with ``base_uri`` taken as it is (not normalized) and ``enc`` for
    the parameters: what a consumer computes when it gets one of them wrong."""
    normalized = "&".join(f"{n}={v}" for n, v in sorted((enc(n), enc(v)) for n, v in params))
    return "&".join((encode(method.upper()), encode(base_uri), encode(normalized)))


def _with_port(uri: str) -> str | None:
    """The base string URI with its default port written out, or, for a URI with a
    non-default port, None."""
    parts = urlsplit(uri)
    if parts.port is not None:
        return None
    port = _DEFAULT_PORTS.get(parts.scheme)
    if port is None or parts.hostname is None:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path, "", ""))


def _other_scheme(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return ("http" if scheme.lower() == "https" else "https") + "://" + rest


def _form_literal_plus(raw: bytes) -> bytes:
    return raw.replace(b"+", b"%2B")


def _prefix(token: str) -> str:
    return token[:8] + ("…" if len(token) > 8 else "")


def signed_by(sent: SentRequest) -> tuple[str, str | None, str]:
    """(oauth_consumer_key, oauth_token or None, oauth_signature_method) of ``sent``."""
    request = _parsed(sent, sent.url)
    return (request.client_key or "", request.resource_owner_key or None,
            request.signature_method or "")


# The check -----------------------------------------------------------------------------


@dataclass
class _Checker:
    method: str
    signature: str | None
    secrets: tuple[str, ...]
    token_secret: str | None
    public_key: Any

    def bases(self, bases: Iterable[str]) -> bool:
        bases = tuple(bases)
        if self.method == RSA_SHA1:
            return self.public_key is not None and any(
                verify_rsa_sha1(b, self.signature, self.public_key) for b in bases)
        return verify_shared_secret(self.method, self.signature, bases, self.secrets,
                                    self.token_secret)

    def keys(self, secrets: Sequence[str], token_secret: str | None,
             bases: Iterable[str]) -> bool:
        if self.method == RSA_SHA1:
            return False
        return verify_shared_secret(self.method, self.signature, tuple(bases), tuple(secrets),
                                    token_secret)


def check(sent: SentRequest, *, public_url: str | None, secrets: Sequence[str] = (),
          public_key: Any = None, token_secret: str | None = None,
          old_secrets: Sequence[str] = (),
          stale_token_secrets: Sequence[tuple[str, str]] = (),
          server_url: str | None = None, internal_urls: Sequence[str] = (),
          internal_bases: Sequence[str] = ()) -> Report:
    """Check ``sent`` as the server would, then try the usual mistakes.

    ``public_url``: the server's ``--public-url`` (None: the URL as sent is taken as
    the public one); ``server_url``: the base string URI the server used, when known
    (a refusal record), instead of computing it.  ``secrets``: the shared secrets the
    server accepts now (current, then a rotated one's old value during its overlap);
    ``old_secrets``: rotated ones no longer accepted; ``token_secret``: the secret of
    the token sent (None without one); ``stale_token_secrets``: (token, secret) of the
    consumer's other tokens; ``internal_urls``: more URLs (scheme://host:port/path) the
    consumer may have signed instead of the public one, tried after the URL as sent
    (the address the server listens on, see :func:`listen_candidates`);
    ``internal_bases``: more base URLs (scheme://host:port[/prefix], e.g. `serve`'s
    listen address, each tried with http and https) to which the request's path is
    appended (also without the public URL's path prefix)."""
    path, query = _path_and_query(sent.url)
    internal_urls = [*internal_urls, *_on_bases(internal_bases, path, public_url)]
    if server_url is not None:
        uri = _with_base(sent.url, server_url)
    else:
        from tui_oauth.core.provider.engine import normalize_public_url

        try:
            base = (normalize_public_url(public_url) if public_url
                    else sent.url.split("?", 1)[0].split("#", 1)[0])
        except ValueError as exc:
            raise ValidationError(f"The public URL cannot be used: {exc}.") from None
        uri = public_uri(base, path, query) if public_url else _with_base(sent.url, base)
    request = _parsed(sent, uri)
    method = request.signature_method or ""
    if not request.tui_has_oauth or not request.signature:
        raise ValidationError("The request carries no OAuth signature (no Authorization: "
                              "OAuth header, and no oauth_signature in the query or the "
                              "body).")
    checker = _Checker(method, request.signature, tuple(secrets), token_secret, public_key)
    server_bases: tuple[str, ...] = request.tui_base_strings
    base_uri = base_string_uri(uri)
    sent_url = sent.url.split("?", 1)[0].split("#", 1)[0]
    report: dict[str, Any] = dict(
        method=sent.method.upper(), url=base_uri, sent_url=sent_url,
        consumer_key=request.client_key or "",
        token=_prefix(request.resource_owner_key) if request.resource_owner_key else None,
        signature_method=method, base_string=server_bases[0])
    tried: list[str] = []
    notes: list[str] = []
    if method not in (HMAC_SHA1, RSA_SHA1, PLAINTEXT):
        return Report(**report, matches=False, tried=tried, notes=notes, mistake=Mistake(
            "signature_method", f"The signature method {method[:40]!r} is not one this "
            "server accepts.", "Sign with HMAC-SHA1 or RSA-SHA1 (PLAINTEXT only over https)."))
    if method == RSA_SHA1 and public_key is None:
        notes.append("The consumer has no RSA public key stored: the signature cannot be "
                      "checked.")
    elif method != RSA_SHA1 and not secrets:
        notes.append("The consumer has no shared secret stored: the signature cannot be "
                     "checked.")
    if method == PLAINTEXT:
        notes.append("PLAINTEXT signs no base string: the signature is the secrets "
                      "themselves, so only the secrets can be wrong.")
    if checker.bases(server_bases):
        if len(secrets) > 1 and not checker.keys(secrets[:1], token_secret, server_bases):
            notes.append("Signed with the previous shared secret, accepted until its overlap "
                         "ends: give the consumer the current one.")
        return Report(**report, matches=True, mistake=None, tried=tried, notes=notes)

    found = _first(sent, request, uri, base_uri, sent_url, checker, tried,
                   old_secrets=old_secrets, stale=stale_token_secrets,
                   public_url=public_url or server_url, internal_urls=internal_urls)
    return Report(**report, matches=False, mistake=found, tried=tried, notes=notes)


def _first(sent: SentRequest, request: Any, uri: str, base_uri: str, sent_url: str,
           checker: _Checker, tried: list[str], *, old_secrets: Sequence[str],
           stale: Sequence[tuple[str, str]], public_url: str | None,
           internal_urls: Sequence[str] = ()) -> Mistake | None:
    """The first usual mistake whose signature matches (each tried is noted in ``tried``)."""
    method = checker.method
    http = sent.method.upper()
    params: list[tuple[str, str]] = request.params
    plaintext = method == PLAINTEXT

    def url_bases(url_base: str) -> list[str]:
        alt = _parsed(sent, _with_base(sent.url, url_base))
        return list(alt.tui_base_strings)

    if not plaintext:
        # 1. The internal URL: the URL the request was sent to (its Host), then the
        #    address the server listens on (a proxy that keeps the Host header).
        tried.append("internal_url")
        sent_base = base_string_uri(sent_url)
        candidates = [sent_base] if sent.scheme_known else [sent_base, _other_scheme(sent_base)]
        for extra in internal_urls:
            try:
                candidates.append(base_string_uri(extra))
            except ValueError:
                continue
        seen: set[str] = set()
        for candidate in candidates:
            if candidate in seen or candidate in (base_uri, _other_scheme(base_uri)):
                continue  # the public URL itself, or only its scheme differs (below)
            seen.add(candidate)
            if checker.bases(url_bases(candidate)):
                return Mistake(
                    "internal_url",
                    f"The consumer signed {candidate}; this server checks against "
                    f"{base_uri}.",
                    "Make the consumer's application sign the URL it is served at "
                    f"publicly ({base_uri}): its configured server URL is probably the "
                    "internal one. Change `serve --public-url` instead only if every "
                    "client legitimately uses the other URL (it would break the others)."
                    + ("" if public_url else " (No public URL was given to the debugger: "
                       "it took the URL as sent.)"),
                    url_bases(candidate)[0], signed_url=candidate, checked_url=base_uri)
        # 2. http vs https.
        tried.append("scheme")
        other = _other_scheme(base_uri)
        if checker.bases(url_bases(other)):
            signed, ours = other.split("://")[0], base_uri.split("://")[0]
            return Mistake(
                "scheme", f"The consumer signed an {signed} URL ({other}); this server "
                f"checks against {ours} ({base_uri}).",
                "Behind a TLS-terminating proxy, start the server with `serve --public-url "
                "https://...`; otherwise configure the consumer with the "
                f"{ours} URL." if ours == "https" else
                f"Configure the consumer with the {ours} URL, or, if consumers reach this "
                f"server over {signed}, give `serve --public-url` the {signed} URL.",
                url_bases(other)[0])
        # 3. A default port written out (or a non-default one left out).
        tried.append("port")
        with_port = _with_port(base_uri)
        if with_port is not None:
            bases = [_base_strings(http, with_port, params)]
            if checker.bases(bases):
                port = urlsplit(with_port).port
                return Mistake(
                    "default_port", f"The consumer wrote the default port (:{port}) in the "
                    f"URL it signed ({with_port}); RFC 5849 (3.4.1.2) leaves it out: "
                    f"{base_uri}.",
                    "Fix the consumer's signing (or its OAuth library) to leave a default "
                    "port out of the base string URI, or configure it without the port.",
                    bases[0])
        else:
            parts = urlsplit(base_uri)
            without = urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))
            bases = [_base_strings(http, without, params)]
            if checker.bases(bases):
                return Mistake(
                    "port_left_out", f"The consumer left the port out of the URL it signed "
                    f"({without}); this server checks against {base_uri}.",
                    "Configure the consumer with the URL including its port.", bases[0])
        # 4. + vs %20.
        tried.append("plus_for_space")
        bases = [_base_strings(http, base_uri, params,
                               lambda s: encode(s).replace("%20", "+"))]
        if any(" " in n + v for n, v in params) and checker.bases(bases):
            return Mistake(
                "plus_for_space", "The consumer encoded spaces as '+' in the base string; "
                "RFC 5849 (3.6) encodes them as %20.",
                "Fix the consumer's signing: percent-encode parameters with %20 for a "
                "space (RFC 3986), not form encoding.", bases[0])
        query = _path_and_query(sent.url)[1]
        plus_in_form = "+" in query or (is_form(sent.header("content-type"))
                                        and b"+" in sent.body)
        if plus_in_form:
            literal = _parsed(sent, uri.replace("+", "%2B"),
                              body=_form_literal_plus(sent.body)
                              if is_form(sent.header("content-type")) else None)
            if checker.bases(literal.tui_base_strings):
                return Mistake(
                    "plus_literal", "The consumer signed a '+' in the query or the body as a "
                    "plus sign; in a URL query and a form body '+' means a space.",
                    "Send a plus sign as %2B (and a space as %20 or +).",
                    literal.tui_base_strings[0])
        # 5. The body's parameters left out, or added.
        form = is_form(sent.header("content-type"))
        if sent.body:
            tried.append("body_left_out" if form else "body_added")
            if form:
                headers = [(k, v) for k, v in sent.headers if k.lower() != "content-type"]
                alt = _parsed(sent, uri, headers=headers)
                if checker.bases(alt.tui_base_strings):
                    return Mistake(
                        "body_left_out", "The consumer left the form body's parameters out "
                        "of the base string; with Content-Type application/x-www-form-"
                        "urlencoded they are signed (RFC 5849 3.4.1.3.1).",
                        "Fix the consumer's signing to include the body's parameters, or "
                        "send the body with another Content-Type.",
                        alt.tui_base_strings[0])
            else:
                headers = [(k, v) for k, v in sent.headers if k.lower() != "content-type"]
                headers.append(("Content-Type", FORM_MEDIA_TYPE))
                alt = _parsed(sent, uri, headers=headers)
                if checker.bases(alt.tui_base_strings):
                    ctype = sent.header("content-type")
                    return Mistake(
                        "body_added", "The consumer signed the body's parameters, but the "
                        f"request's Content-Type ({ctype or 'none'}) is not application/"
                        "x-www-form-urlencoded, so the body is not part of the base string.",
                        "Send Content-Type: application/x-www-form-urlencoded with a form "
                        "body, or leave the body out of the signature.",
                        alt.tui_base_strings[0])

    server_bases: tuple[str, ...] = request.tui_base_strings
    if method == RSA_SHA1:
        return None
    # 6. A rotated shared secret.
    if old_secrets:
        tried.append("rotated_secret")
        if checker.keys(old_secrets, checker.token_secret, server_bases):
            return Mistake(
                "rotated_secret", "The consumer signed with the previous shared secret, "
                "which was rotated and is no longer accepted.",
                "Give the consumer the current shared secret (`tui-oauth consumers "
                "rotate-secret` shows a new one only once).",
                None if plaintext else server_bases[0])
    # 7. A stale token (another token's secret of the same consumer), or none.
    if request.resource_owner_key:
        tried.append("stale_token")
        for token, secret in stale:
            if token != request.resource_owner_key and checker.keys(
                    checker.secrets, secret, server_bases):
                return Mistake(
                    "stale_token", f"The consumer sent token {_prefix(request.resource_owner_key)}"
                    f" but signed with the secret of its token {_prefix(token)}: it keeps a "
                    "stale token secret.",
                    "Have the consumer store each token's secret with its token (after a "
                    "renewal, both change), or authorize again.",
                    None if plaintext else server_bases[0])
        tried.append("token_secret_left_out")
        if checker.token_secret and checker.keys(checker.secrets, None, server_bases):
            return Mistake(
                "token_secret_left_out", "The consumer signed without the token secret "
                "(consumer secret + '&' alone).",
                "Have the consumer sign with its token's secret, the one issued with the token.",
                None if plaintext else server_bases[0])
    # 8. PLAINTEXT specifics.
    if plaintext:
        tried.append("plaintext")
        return _plaintext_mistake(checker)
    return None


def _plaintext_mistake(checker: _Checker) -> Mistake | None:
    sent = checker.signature or ""
    ts = checker.token_secret or ""
    for secret in checker.secrets:
        if ts == "" and sent == encode(secret):
            return Mistake("plaintext_no_ampersand",
                           "The PLAINTEXT signature is the consumer secret without the '&' "
                           "that must follow it (secret&token-secret, the token secret "
                           "empty).", "Send oauth_signature=\"<secret>%26\" (the & encoded).")
        if sent == f"{secret}&{ts}" and encode(secret) + "&" + encode(ts) != sent:
            return Mistake("plaintext_not_encoded",
                           "The PLAINTEXT signature holds the secrets without their "
                           "percent-encoding (RFC 5849 3.4.4 encodes each).",
                           "Percent-encode the consumer and token secrets, join them with "
                           "'&', then encode the whole again in the Authorization header.")
        if sent == encode(f"{encode(secret)}&{encode(ts)}"):
            return Mistake("plaintext_double_encoded",
                           "The PLAINTEXT signature is percent-encoded once too often.",
                           "Encode the signature once in the Authorization header.")
        if sent == f"{encode(ts)}&{encode(secret)}":
            return Mistake("plaintext_swapped",
                           "The PLAINTEXT signature has the token secret first; the consumer "
                           "secret comes first.", "Send consumer-secret&token-secret.")
    return None


# Refusal records ----------------------------------------------------------------------


def request_from_refusal(*, base_string: str, signature: str | None, seen_url: str,
                         url: str) -> SentRequest:
    """A request that gives ``base_string`` again (a refusal record's): its OAuth
    parameters in an Authorization header with ``signature``, the others in the query
    of ``seen_url`` (the URL the request reached).  Pass ``server_url=url`` to
    :func:`check`."""
    parts = base_string.split("&")
    if len(parts) != 3:
        raise ValidationError("The refusal's base string cannot be read (it is not "
                              "METHOD&URL&PARAMETERS; was it cut at 16 KiB?).")
    method = unquote(parts[0])
    normalized = unquote(parts[2])
    oauth: list[tuple[str, str]] = []
    other: list[str] = []
    for pair in normalized.split("&") if normalized else []:
        name, _, value = pair.partition("=")
        if unquote(name).startswith("oauth_"):
            oauth.append((name, value))
        else:
            other.append(f"{name}={value}")
    if signature is not None:
        oauth.append(("oauth_signature", encode(signature)))
    header = "OAuth " + ", ".join(f'{n}="{v}"' for n, v in oauth)
    target = seen_url or url
    query = "&".join(other)
    sent_url = f"{target}?{query}" if query else target
    return SentRequest(method, sent_url, (("Authorization", header),),
                       scheme_known=bool(seen_url))


@dataclass(frozen=True)
class Recorded:
    """A refused request rebuilt from its record (:func:`recorded`), with where the
    server checked it."""

    sent: SentRequest
    server_url: str
    internal_urls: tuple[str, ...]

    def check(self, *, secrets: Sequence[str] = (), old_secrets: Sequence[str] = (),
              public_key: Any = None, token_secret: str | None = None,
              stale_token_secrets: Sequence[tuple[str, str]] = ()) -> Report:
        """:func:`check` as the server checked it: against the URL it used, with the
        address it listens on as the internal URLs a consumer may have signed."""
        return check(self.sent, public_url=None, server_url=self.server_url,
                     secrets=secrets, old_secrets=old_secrets, public_key=public_key,
                     token_secret=token_secret, stale_token_secrets=stale_token_secrets,
                     internal_urls=self.internal_urls)


def recorded(*, base_string: str, signature: str | None, seen_url: str, url: str,
             listen_url: str) -> Recorded:
    """A refusal record's request (:func:`request_from_refusal`), to check again."""
    return Recorded(request_from_refusal(base_string=base_string, signature=signature,
                                         seen_url=seen_url, url=url),
                    url, tuple(listen_candidates(listen_url)))


def _on_bases(bases: Sequence[str], path: str, public_url: str | None) -> list[str]:
    """The request's ``path`` on each base URL (http and https), also without the
    public URL's path prefix (a proxy that strips it)."""
    paths = [path]
    prefix = urlsplit(public_url).path.rstrip("/") if public_url else ""
    if prefix and path.startswith(prefix + "/"):
        paths.append(path[len(prefix):])
    out: list[str] = []
    for base in bases:
        if "://" not in base:
            continue
        for variant in (base, _other_scheme(base)):
            out.extend(variant.rstrip("/") + p for p in paths)
    return list(dict.fromkeys(out))


def listen_candidates(listen_url: str) -> list[str]:
    """The address this server listens on (a refusal's ``listen_url``), with http and
    https: what a consumer configured with the internal address signs."""
    if not listen_url or "://" not in listen_url:
        return []
    return [listen_url, _other_scheme(listen_url)]


def finding(report: Report) -> str:
    """A report's verdict in one line for the refusal log (``refusals.finding``): the
    mistake's code and plain words, or "none: ..." when no usual mistake explains it.
    Never a secret (a report holds none)."""
    if report.matches:
        return ("matches: the signature matches the stored key now (the key or secret "
                "changed since?)")
    mistake = report.mistake
    if mistake is None:
        tried = f"; tried: {', '.join(report.tried)}" if report.tried else ""
        return f"{NO_MISTAKE}: none of the usual mistakes explains it{tried}"
    return f"{mistake.code}: {mistake.what}"[:512]
