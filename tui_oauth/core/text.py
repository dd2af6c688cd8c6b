"""Text from outside, shown on a terminal: the one escaping function.

Names, descriptions, keys, callbacks, audit fields, fetched documents, token
users and the error messages that quote them are stored as they came (new
values are checked by :class:`tui_oauth.core.validation.Checker`, which
refuses control characters, but older rows, a foreign database or another
program's writes may still hold them).  Printed raw, an ESC or a C1 control
could clear the operator's screen, set its title or fill its clipboard
(OSC 52), and a bidi override or a line separator makes text read otherwise
than it is.  :func:`visible` shows every such character as a Python-style
escape (``\\x1b``, ``\\u202e``), so the CLI and the console print nothing raw
but printable text; :func:`visible_json` does the same inside JSON.

Shown escaped (Unicode categories):

- ``Cc``: C0 controls (ESC, BEL, CR, ...), DEL and the C1 controls U+0080-U+009F;
- ``Cf``: format characters, among them the bidi embeddings, overrides and
  isolates U+202A-U+202E and U+2066-U+2069, U+200E/U+200F, zero-width
  characters, the soft hyphen and the tag characters;
- ``Zl``/``Zp``: U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR;
- ``Cs``: lone surrogates (undecodable bytes), which cannot be printed anyway.

A backslash is left alone, so a name that holds the four characters ``\\x1b``
looks like one that holds an ESC; the values the tool writes are checked on
the way in, so only foreign rows can look like that, and they are harmless
either way.
"""

from __future__ import annotations

import logging
import re
import shlex
import unicodedata
from typing import Any

HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})

# Printable ASCII never needs a look: only the rest is checked, one by one.
_CANDIDATE = re.compile(r"[^\x20-\x7e]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def is_hidden(ch: str) -> bool:
    """True for a character that :func:`visible` shows escaped."""
    return unicodedata.category(ch) in HIDDEN_CATEGORIES


def escape_char(ch: str) -> str:
    """One character as Python writes it in a string: ``\\x1b``, ``\\u202e``, ``\\n``."""
    n = ord(ch)
    if ch in _NAMED:
        return _NAMED[ch]
    if n <= 0xFF:
        return f"\\x{n:02x}"
    if n <= 0xFFFF:
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


def _escape_hidden(match: re.Match[str]) -> str:
    ch = match.group()
    return escape_char(ch) if is_hidden(ch) else ch


def _escape_hidden_keep_lines(match: re.Match[str]) -> str:
    ch = match.group()
    return ch if ch in "\n\t" else _escape_hidden(match)


def visible(text: str, *, multiline: bool = False) -> str:
    """``text`` with every control, format and separator character shown as an escape.

    ``multiline`` keeps line feeds and tabs (a description shown over several
    lines); everything else in :data:`HIDDEN_CATEGORIES` (CR included) is
    escaped either way.
    """
    if text.isascii() and text.isprintable():
        return text
    return _CANDIDATE.sub(_escape_hidden_keep_lines if multiline else _escape_hidden, text)


def _json_escape(match: re.Match[str]) -> str:
    ch = match.group()
    if not is_hidden(ch):
        return ch
    n = ord(ch)
    if n <= 0xFFFF:
        return f"\\u{n:04x}"
    n -= 0x10000  # JSON spells a character beyond the BMP as a surrogate pair
    return f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}"


_JSON_CANDIDATE = re.compile(r"[^\x00-\x7e]")


def visible_json(dumped: str) -> str:
    """JSON from ``json.dumps(..., ensure_ascii=False)`` with nothing hidden left raw.

    ``json.dumps`` escapes C0 controls but writes DEL, the C1 controls, the
    bidi controls and U+2028/U+2029 as they are.  Outside strings JSON is
    ASCII, so each of them is inside a string, where ``\\uXXXX`` stands for
    the same character: the document parses to exactly the same values, and
    other non-ASCII text (``é``, ``日本``) stays readable.
    """
    return _JSON_CANDIDATE.sub(_json_escape, dumped)


def command_line(*words: str, values: tuple[str, ...] | list[str] = ()) -> str:
    """A ``tui-oauth`` command to print for someone to run: ``words`` (the command and
    its options, as written), then ``--`` and the positional ``values``, each quoted
    for a POSIX shell.  ``--`` ends the options, so a token, key or name that starts
    with ``-`` (one token in 64 does) is read as a value, never as an option."""
    parts = ["tui-oauth", *words]
    if values:
        parts += ["--", *(shlex.quote(v) for v in values)]
    return " ".join(parts)


class VisibleFormatter(logging.Formatter):
    """Log lines quote text from outside (a consumer key or a user name from a request,
    a path): each message is shown with :func:`visible` on one line (a line feed in it
    cannot forge the next entry), and a traceback keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return visible(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return visible(super().formatException(ei), multiline=True)
