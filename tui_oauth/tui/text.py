"""Small formatting helpers shared by the views."""

from __future__ import annotations

from datetime import datetime

from textual.markup import escape


def when(value: datetime | None, *, seconds: bool = False) -> str:
    """A timestamp in UTC as operators read it: ``2024-05-01 12:34``."""
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def day(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d")


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def dash(value: str | None) -> str:
    return value if value else "-"


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


def safe(text: object) -> str:
    """Escape text from a user or the network before it goes into markup."""
    return escape(str(text))


def error_text(exc: BaseException) -> str:
    """What to tell the operator about an error, in words (never a traceback)."""
    from tui_oauth.core.errors import TuiOAuthError

    if isinstance(exc, TuiOAuthError):
        return f"{exc.message} {exc.hint}" if exc.hint else exc.message
    return f"{type(exc).__name__}: {exc}"
