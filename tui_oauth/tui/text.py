"""Small formatting helpers shared by the views."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rich.text import Text

from tui_oauth.core.text import visible

MASK = "••••••••"  # a secret not shown


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
    return f"{n:,} {word}" if n == 1 else f"{n:,} {words or word + 's'}"


def plain(text: str, *, multiline: bool = True, style: str = "") -> Text:
    """Text to show in a Static, Label or dialog: a rich ``Text``, never read as markup
    (``[@click=app.quit]`` stays those characters), with every control, bidi and
    separator character shown as an escape (:func:`tui_oauth.core.text.visible`),
    so nothing from a user, a database row or the network reaches the terminal raw."""
    return Text(visible(text, multiline=multiline), style=style)


def shown(value: str | None) -> str:
    """One value from outside as a single line of text for a view (``-`` when empty)."""
    return visible(value) if value else "-"


def field_rows(rows: Iterable[tuple[str, str]], width: int) -> str:
    """``label  value`` lines; every value shown with ``visible`` (a description of
    several lines keeps them, indented under its first)."""
    lines: list[str] = []
    for label, value in rows:
        first, *rest = visible(value, multiline=True).split("\n")
        lines.append(f"{label:<{width}}{first}")
        lines += [" " * width + line for line in rest]
    return "\n".join(lines)


def error_text(exc: BaseException) -> str:
    """What to tell the operator about an error, in words (never a traceback)."""
    from tui_oauth.core.errors import TuiOAuthError

    if isinstance(exc, TuiOAuthError):
        return f"{exc.message} {exc.hint}" if exc.hint else exc.message
    return f"{type(exc).__name__}: {exc}"
