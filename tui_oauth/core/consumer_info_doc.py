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

from dataclasses import dataclass
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element, SubElement, indent, tostring

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from tui_oauth.core.errors import FieldError, ValidationError
from tui_oauth.core.keys import PublicKeyInfo, parse_public_key
from tui_oauth.core.validation import (
    MAX_DESCRIPTION,
    MAX_KEY,
    MAX_NAME,
    Checker,
    url_problem,
)

__all__ = [
    "CONSUMER_INFO_PATH",
    "ConsumerInfoDoc",
    "consumer_info_url",
    "parse_consumer_info",
    "render_consumer_info",
]

CONSUMER_INFO_PATH = "/plugins/servlet/oauth/consumer-info"
MAX_DOCUMENT_BYTES = 1024 * 1024
_FIELDS = {
    "key": "key",
    "name": "name",
    "publicKey": "public_key",
    "description": "description",
    "callback": "callback",
}


@dataclass(frozen=True)
class ConsumerInfoDoc:
    key: str
    name: str
    description: str | None
    callback: str | None
    public_key: PublicKeyInfo


def _check_fields(key: str, name: str, description: str | None, callback: str | None,
                  errors: list[FieldError], *, required: bool = True) -> None:
    """The same rules as a consumer typed in by hand (validation.Checker)."""
    c = Checker()
    if key or required:
        c.identifier("key", key, label="The consumer key", max_len=MAX_KEY)
    c.text("name", name, label="The consumer name", max_len=MAX_NAME, required=required)
    c.text("description", description, label="The description", max_len=MAX_DESCRIPTION,
           multiline=True)
    c.url("callback", callback, label="The callback URL")
    errors.extend(c.errors)


def _doc_error(message: str) -> ValidationError:
    return ValidationError(FieldError("document", message))


def _text(element: Element) -> str:
    return "".join(element.itertext()).strip()


def parse_consumer_info(data: bytes) -> ConsumerInfoDoc:
    """Parse and validate a consumer-info document; see the module docs for the errors."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise _doc_error(
            f"The document is larger than {MAX_DOCUMENT_BYTES // 1024} KiB; "
            "it cannot be a consumer-info document."
        )
    if not data.strip():
        raise _doc_error(
            "The document is empty: expected the consumer-info XML (<consumer>...</consumer>)."
        )
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
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
            errors.append(
                FieldError(
                    field,
                    f"<{element}> {state}: the consumer-info document "
                    f"must give the consumer's {element}.",
                )
            )
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
    return ConsumerInfoDoc(
        key=key, name=name, description=description, callback=callback, public_key=public_key
    )


def render_consumer_info(
    key: str, name: str, description: str | None, callback: str | None, public_key_base64: str,
    previous_public_key_base64: str | None = None,
) -> bytes:
    """The consumer-info XML (UTF-8, with declaration) for our Consumer Info record.

    ``previous_public_key_base64`` (a key rotated with an overlap) is published as
    ``<previousPublicKey>``, after the others: Atlassian's readers, and ours, read
    ``<publicKey>`` only and pass over it; a provider that knows it may accept both."""
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
    if previous_public_key_base64:
        SubElement(root, "previousPublicKey").text = previous_public_key_base64
    indent(root)
    # bytes with an encoding given (the stubs say Any for any encoding but "unicode").
    document: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def consumer_info_url(base_url: str) -> str:
    """``{base}/plugins/servlet/oauth/consumer-info`` for a validated base URL (field ``url``)."""
    url = (base_url or "").strip()
    parts = urlsplit(url) if "://" in url and not url_problem(url, what="") else None
    if not url:
        problem = "Enter the consumer application's base URL, e.g. https://jira.example.com."
    elif "://" not in url:
        problem = f"The URL needs its scheme: https://{url[:80]} or http://{url[:80]}."
    elif parts is None:
        problem = url_problem(url, what="The URL") or "The URL is not valid."
    elif parts.username is not None or parts.password is not None or "@" in parts.netloc:
        problem = (
            "Remove the user name and password from the URL: the consumer-info document "
            "is public and no credentials are sent."
        )
    elif parts.fragment or url.endswith("#"):
        problem = "Remove the #fragment from the URL: give the application's base URL."
    elif parts.query or url.endswith("?"):
        problem = (
            "Remove the ?query from the URL: give the application's base URL, e.g. "
            "https://jira.example.com."
        )
    else:
        url = url.rstrip("/")
        return url if urlsplit(url).path.endswith(CONSUMER_INFO_PATH) else url + CONSUMER_INFO_PATH
    raise ValidationError(FieldError("url", problem))


# --- fetching by URL ------------------------------------------------------------------
