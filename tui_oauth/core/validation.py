"""Field checks shared by the services.  Each raises ValidationError on its field."""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

from tui_oauth.core.errors import FieldError, ValidationError

MAX_KEY = 255
MAX_NAME = 255
MAX_DESCRIPTION = 4000
MAX_URL = 2048
MAX_SECRET = 1024


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value)


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
        bad = value.replace("\n", "").replace("\t", "") if multiline else value
        if _has_control(bad):
            self.fail(field, f"{label} contains control characters; remove them.")
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
        problem = url_problem(value)
        if problem:
            self.fail(field, f"{label}: {problem}")
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
        if _has_control(value):
            self.fail(field, f"{label} contains control characters (a stray newline?).")
            return None
        return value


def url_problem(value: str) -> str | None:
    """Why ``value`` is not an absolute http(s) URL, or None when it is."""
    if any(ch.isspace() for ch in value):
        return "a URL cannot contain spaces."
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError as exc:
        return f"{value!r} is not a valid URL ({exc})."
    if parts.scheme.lower() not in ("http", "https"):
        return f"{value!r} must start with https:// (or http://)."
    if not parts.hostname:
        return f"{value!r} has no host name."
    if parts.username or parts.password:
        return "a URL must not carry a user name or password."
    if parts.fragment:
        return f"{value!r} must not have a #fragment."
    return None


def is_https(url: str) -> bool:
    return url.lower().startswith("https://")
