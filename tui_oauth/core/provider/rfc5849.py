"""What a client signed: its OAuth parameters and the signature base string, computed
as RFC 5849 section 3.4.1 says and as the clients in the field compute it.

oauthlib's own request parsing is stricter than the RFC (and than Atlassian's
provider) in ways that refuse real clients, and looser in others, so the
provider parses each request here and hands oauthlib a request already parsed
(:class:`ParsedEndpoint` replaces oauthlib's ``_create_request`` and
``_check_signature``; its validation flows are unchanged):

- **Sources** (section 3.4.1.3.1): the query, the ``Authorization: OAuth`` header
  (without its ``realm``) and a form-encoded body all count. Protocol parameters
  may be split between them (a popular Node client puts ``oauth_callback`` or
  ``oauth_verifier`` in the body and the rest in the header; Atlassian accepts
  it) as long as none appears twice: a true duplicate is refused, naming it.
- **Other schemes**: an ``Authorization`` header that is not ``OAuth`` (a fronting
  proxy's ``Basic``, a ``Bearer``) is ignored, not an error.
- **The body** counts when its media type is ``application/x-www-form-urlencoded``,
  compared case-insensitively (media types are), with or without parameters
  such as ``; charset=utf-8``.
- **Decoding** happens once, to octets, and the base string encodes the octets
  again (section 3.6): raw ``[`` ``]`` in a query, ``+`` for a space and non-UTF-8
  escapes such as ``%FF`` give the same base string as the clients that sent them.
- **realm**: only the header's ``realm`` is left out of the base string; a
  ``realm`` in the query or the body is an ordinary parameter (section 3.4.1.3.1).
- **Decoded twice**: two popular Python clients decode ``oauth_`` values a second
  time when they sign (Authlib wherever they are, oauthlib in the query or the
  body), so an ``oauth_callback`` holding ``%20`` is signed as if it held a space.
  When an ``oauth_`` value still holds a percent-escape, a signature over that
  second reading is accepted too; the value used (the callback stored) is the
  one the RFC reads.

Octets that are not UTF-8 travel inside ``str`` values as surrogate escapes
(``surrogateescape``); such values are never printable, so the engine's checks
refuse them wherever a value is used as a key, token or user name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_from_bytes, unquote, unquote_to_bytes
from urllib.request import parse_http_list

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from oauthlib.common import Request
from oauthlib.oauth1 import (
    AccessTokenEndpoint,
    RequestTokenEndpoint,
    ResourceEndpoint,
    SignatureOnlyEndpoint,
)
from oauthlib.oauth1.rfc5849.signature import base_string_uri

from tui_oauth.core.models import HMAC_SHA1, PLAINTEXT, RSA_SHA1
from tui_oauth.core.provider.problems import Problem

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
#: The most names a refusal lists (a hostile body could repeat thousands).
MAX_NAMED = 10
_SCHEME = re.compile(r"[^\s,]+")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def media_type(content_type: str | None) -> str:
    """``Application/X-WWW-Form-URLEncoded; charset=UTF-8``: the part before ``;``,
    lower-cased (``application/x-www-form-urlencoded``)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_form(content_type: str | None) -> bool:
    return media_type(content_type) == FORM_MEDIA_TYPE


def octets(text: str) -> bytes:
    """Header and request-target text as received: the web layer decodes them as
    latin-1 (one character per octet); anything else is taken as UTF-8."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def encode(value: str) -> str:
    """Section 3.6: every octet but the unreserved ones as ``%XX`` (upper case)."""
    return quote_from_bytes(value.encode("utf-8", "surrogateescape"), safe="")


def form_pairs(raw: bytes) -> list[tuple[str, str]]:
    """``application/x-www-form-urlencoded`` as the HTML 4 rules have it: ``&``
    between pairs, ``+`` for a space, ``%XX`` an octet, anything else itself; a
    name without ``=`` has the empty value (``flag`` is ``flag=``)."""
    pairs: list[tuple[str, str]] = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        pairs.append((_text(unquote_to_bytes(name.replace(b"+", b" "))),
                      _text(unquote_to_bytes(value.replace(b"+", b" ")))))
    return pairs


def _malformed_header() -> Problem:
    return Problem("parameter_rejected",
                   'The Authorization header cannot be read: write it as OAuth name="value", '
                   "with names and values percent-encoded.")


def authorization_params(value: str) -> tuple[bool, list[tuple[str, str]], str | None]:
    """(is it OAuth, its parameters without realm, its realm) (section 3.5.1).

    Another scheme (``Basic``, ``Bearer``, ...) is not ours: ``(False, [], None)``.
    """
    text = value.strip()
    scheme = _SCHEME.match(text)
    if scheme is None or scheme.group(0).lower() != "oauth":
        return False, [], None
    rest = text[scheme.end():]
    if rest and rest[0] not in " \t":
        raise _malformed_header()
    params: list[tuple[str, str]] = []
    realm: str | None = None
    for item in parse_http_list(rest):
        item = item.strip()
        if not item:
            continue
        name, sep, val = item.partition("=")
        name, val = name.strip(), val.strip()
        if not sep or not name:
            raise _malformed_header()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1]
        elif '"' in val:
            raise _malformed_header()
        if name == "realm":
            realm = val
            continue
        params.append((_text(unquote_to_bytes(octets(name))), _text(unquote_to_bytes(octets(val)))))
    return True, params, realm


def signature_base_string(method: str, uri: str, params: list[tuple[str, str]]) -> str:
    """Section 3.4.1: method, base string URI, normalized parameters (3.4.1.3.2)."""
    normalized = "&".join(f"{n}={v}" for n, v in sorted((encode(n), encode(v))
                                                          for n, v in params))
    return "&".join((encode(method.upper()), encode(base_string_uri(uri)), encode(normalized)))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def parse_request(uri: str, method: str, body: bytes | str, headers: Mapping[str, str]) -> Any:
    """The request as oauthlib's validation flows expect it (an ``oauthlib.common.Request``
    with ``oauth_params``, ``params``, ``client_key``, ...), plus:

    - ``tui_has_oauth``: an OAuth Authorization header or any ``oauth_`` parameter;
    - ``tui_base_strings``: the signature base string (and the reading of clients
      that decode ``oauth_`` values twice, when it differs);
    - ``tui_body``: the body's octets (for ``oauth_body_hash``).

    Raises :class:`Problem` for what cannot be read or a protocol parameter given twice.
    """
    raw_body = body.encode("utf-8") if isinstance(body, str) else bytes(body or b"")
    base, _, query = uri.partition("?")
    header_value = _header(headers, "authorization")
    is_oauth, header_params, realm = (authorization_params(header_value)
                                      if header_value is not None else (False, [], None))
    body_params = form_pairs(raw_body) if is_form(_header(headers, "content-type")) else []
    query_params = form_pairs(octets(query)) if query else []

    seen: dict[str, list[str]] = {}
    for where, pairs in (("header", header_params), ("body", body_params),
                         ("query", query_params)):
        for name, _value in pairs:
            if name.startswith("oauth_"):
                seen.setdefault(name, []).append(where)
    twice = [name for name, places in seen.items() if len(places) > 1]
    if twice:
        named = twice[:MAX_NAMED]
        where = "; ".join(f"{name[:64]!r} in the {' and the '.join(seen[name])}"
                          for name in named)
        raise Problem("parameter_rejected",
                      f"Each OAuth parameter may be given once, in one place: {where}.",
                      {"oauth_parameters_rejected": "&".join(named)})

    everything = header_params + body_params + query_params
    oauth = {name: value for name, value in everything if name.startswith("oauth_")}
    signed = [(n, v) for n, v in everything if n != "oauth_signature"]
    try:
        base_strings = [signature_base_string(method, base, signed)]
        if any(n.startswith("oauth_") and _ESCAPE.search(v) for n, v in signed):
            reread = [(n, unquote(v, errors="surrogateescape") if n.startswith("oauth_")
                       else v) for n, v in signed]
            base_strings.append(signature_base_string(method, base, reread))
    except ValueError:
        raise Problem("parameter_rejected", "The request URL cannot be read.") from None

    request = Request(base, method, "", dict(headers))
    request.uri = uri
    request.oauth_params = oauth
    request.params = signed
    request.signature = oauth.get("oauth_signature")
    request.client_key = oauth.get("oauth_consumer_key")
    request.resource_owner_key = oauth.get("oauth_token")
    request.nonce = oauth.get("oauth_nonce")
    request.timestamp = oauth.get("oauth_timestamp")
    request.redirect_uri = oauth.get("oauth_callback")
    request.verifier = oauth.get("oauth_verifier")
    request.signature_method = oauth.get("oauth_signature_method")
    request.realm = realm
    request.tui_has_oauth = is_oauth or bool(seen)
    request.tui_base_strings = tuple(base_strings)
    request.tui_body = raw_body
    return request


def body_hash(body: bytes) -> str:
    """``oauth_body_hash`` (the OAuth Request Body Hash extension): base64 of the
    SHA-1 of the body's octets, the hash that goes with HMAC-SHA1 and RSA-SHA1."""
    return base64.b64encode(hashlib.sha1(body).digest()).decode("ascii")  # noqa: S324


# Signatures (section 3.4.2 - 3.4.4) ----------------------------------------------------


def _same(expected: str, given: str | None) -> bool:
    return hmac.compare_digest(expected.encode("ascii"),
                               (given or "").encode("utf-8", "surrogateescape"))


def verify_hmac_sha1(base_string: str, signature: str | None, client_secret: str,
                     token_secret: str | None) -> bool:
    key = f"{encode(client_secret)}&{encode(token_secret or '')}"
    digest = hmac.new(key.encode("ascii"), base_string.encode("ascii"), hashlib.sha1).digest()
    return _same(base64.b64encode(digest).decode("ascii"), signature)


def verify_plaintext(signature: str | None, client_secret: str,
                     token_secret: str | None) -> bool:
    return _same(f"{encode(client_secret)}&{encode(token_secret or '')}", signature)


def verify_rsa_sha1(base_string: str, signature: str | None, public_key: Any) -> bool:
    try:
        raw = binascii.a2b_base64((signature or "").encode("ascii"))
    except (binascii.Error, ValueError, UnicodeError):
        raw = b""  # still verify: the same work as for a wrong signature
    try:
        public_key.verify(raw, base_string.encode("ascii"), padding.PKCS1v15(),
                          hashes.SHA1())  # noqa: S303 (RSA-SHA1 is SHA-1 by definition)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError, AttributeError):
        return False
    return True


def verify_shared_secret(method: str, signature: str | None, bases: tuple[str, ...],
                         client_secrets: tuple[str, ...], token_secret: str | None) -> bool:
    """An HMAC-SHA1 or PLAINTEXT signature made with any of ``client_secrets`` (the
    current one, and a rotated one's old value while its overlap lasts) over any of
    the accepted ``bases``; False for another method."""
    if method == HMAC_SHA1:
        return any(verify_hmac_sha1(b, signature, secret, token_secret)
                   for secret in client_secrets for b in bases)
    if method == PLAINTEXT:
        return any(verify_plaintext(signature, secret, token_secret)
                   for secret in client_secrets)
    return False


class ParsedEndpoint:
    """oauthlib endpoint behaviour with this module's parsing and base string."""

    request_validator: Any

    def _create_request(self, uri: str, http_method: str, body: Any, headers: Any) -> Any:
        return parse_request(uri, http_method, body if body is not None else b"",
                             dict(headers or {}))

    def _check_signature(self, request: Any, is_token_request: bool = False) -> bool:
        validator = self.request_validator
        method = request.signature_method
        bases: tuple[str, ...] = request.tui_base_strings
        if method == RSA_SHA1:
            key = validator.get_rsa_key(request.client_key, request)
            return any(verify_rsa_sha1(b, request.signature, key) for b in bases)
        # The consumer's shared secrets: the current one, and a rotated one's old value
        # while its overlap lasts (the validator says which).
        client_secrets = validator.get_client_secrets(request.client_key, request)
        token_secret = None
        if request.resource_owner_key:
            get = (validator.get_request_token_secret if is_token_request
                   else validator.get_access_token_secret)
            token_secret = get(request.client_key, request.resource_owner_key, request)
        return verify_shared_secret(method, request.signature, bases, client_secrets,
                                    token_secret)


# oauthlib has no type hints (its endpoints are Any to mypy): subclassing them is
# what the ignores below allow, nothing else.
class RequestTokens(ParsedEndpoint, RequestTokenEndpoint):  # type: ignore[misc]
    pass


class AccessTokens(ParsedEndpoint, AccessTokenEndpoint):  # type: ignore[misc]
    pass


class Resources(ParsedEndpoint, ResourceEndpoint):  # type: ignore[misc]
    pass


class SignatureOnly(ParsedEndpoint, SignatureOnlyEndpoint):  # type: ignore[misc]
    pass
