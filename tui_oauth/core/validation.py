"""Field checks shared by the services.  Each raises ValidationError on its field."""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

from tui_oauth.core.errors import FieldError, ValidationError
from tui_oauth.core.text import escape_char

MAX_KEY = 255
MAX_NAME = 255
MAX_DESCRIPTION = 4000
MAX_URL = 2048
MAX_SECRET = 1024


# Control (C0, DEL, C1), format (bidi controls, zero-width), surrogate, private-use,
# unassigned, and the line and paragraph separators U+2028/U+2029.
CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def has_control(value: str) -> bool:
    """True when ``value`` holds a character of :data:`CONTROL_CATEGORIES`."""
    return any(unicodedata.category(ch) in CONTROL_CATEGORIES for ch in value)


def control_problem(value: str, *, label: str, multiline: bool = False) -> str | None:
    """Why ``value`` may not be stored (its control characters, shown escaped), or None.

    The one rule for every text field, wherever it comes from: the CLI, a
    console form (checked again as it is pasted), a fetched document.
    ``multiline`` allows line feeds and tabs (descriptions).
    """
    found = [ch for ch in value if unicodedata.category(ch) in CONTROL_CATEGORIES
             and not (multiline and ch in "\n\t")]
    if not found:
        return None
    shown = ", ".join(escape_char(ch) for ch in dict.fromkeys(found))
    return f"{label} contains control characters ({shown}); remove them."


class Checker:
    """Collects every field error, so a form can show them all at once."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, message))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)

    def text(self, field: str, value: str | None, *, label: str, max_len: int,
             required: bool = False, multiline: bool = False) -> str | None:
        value = (value or "").strip()
        if not value:
            if required:
                self.fail(field, f"{label} is required.")
            return None
        if len(value) > max_len:
            self.fail(field, f"{label} is {len(value)} characters long; at most {max_len} fit.")
            return None
        problem = control_problem(value, label=label, multiline=multiline)
        if problem:
            self.fail(field, problem)
            return None
        return value

    def identifier(self, field: str, value: str | None, *, label: str,
                   max_len: int = MAX_KEY) -> str | None:
        """A key: required, no white space, printable."""
        value = self.text(field, value, label=label, max_len=max_len, required=True)
        if value is not None and any(ch.isspace() for ch in value):
            self.fail(field, f"{label} must not contain spaces (got {value!r}).")
            return None
        return value

    def url(self, field: str, value: str | None, *, label: str,
            required: bool = False) -> str | None:
        value = self.text(field, value, label=label, max_len=MAX_URL, required=required)
        if value is None:
            return None
        problem = url_problem(value, what=label)
        if problem:
            self.fail(field, problem)
            return None
        return value

    def secret(self, field: str, value: str | None, *, label: str) -> str | None:
        """A secret: never echoed back in a message."""
        if value is None:
            return None
        value = value.strip("\r\n")
        if not value:
            self.fail(field, f"{label} is empty; give a value or leave it out.")
            return None
        if len(value) > MAX_SECRET:
            self.fail(field, f"{label} is longer than {MAX_SECRET} characters.")
            return None
        if has_control(value):
            self.fail(field, f"{label} contains control characters (a stray newline?).")
            return None
        return value


def url_problem(url: str, *, what: str = "The URL") -> str | None:
    """Why ``url`` is not an absolute http(s) URL with a host (and no user name,
    password or #fragment), as a sentence starting with ``what``; None when it is."""
    if len(url) > MAX_URL:
        return f"{what} is longer than {MAX_URL} characters."
    if any(c.isspace() for c in url) or has_control(url):
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
    if parts.username is not None or parts.password is not None:
        return f"{what} must not carry a user name or password."
    if parts.fragment:
        return f"{what} must not have a #fragment."
    return None


def is_https(url: str) -> bool:
    return url.lower().startswith("https://")
