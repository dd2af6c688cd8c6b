"""Credentials out of log lines: ``redact(text)`` and a :class:`RedactFilter` for handlers.

The values of ``oauth_signature``, ``oauth_verifier``, ``oauth_token``,
``oauth_session_handle`` and of anything named ``*secret*`` or ``*password*`` become
``[redacted]``.  Used by ``serve`` (every handler of the root and uvicorn loggers) and
by the console's log file.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["REDACTED", "RedactFilter", "redact"]

#: Names whose values never appear in a log line.
_OAUTH = r"(?:oauth_signature|oauth_verifier|oauth_token|oauth_session_handle)"
_NAME = r"(?:" + _OAUTH + r"|[A-Za-z0-9_\-]*(?:secret|password|passwd)[A-Za-z0-9_\-]*)"
REDACTED = "[redacted]"
_VALUE = (r"(?!\"?\[redacted\])"  # already done (filters may run twice)
          r"(\"(?:[^\"\\]|\\.)*\"|(?:(?!%26|%2526)[^\s&\"',;)\]}>])+)")
# name=value (query, form, Authorization header, base string with %3D / %253D), and
# "oauth_token: value"; a value ends at & or its encodings, white space, a quote or a
# bracket.
_ASSIGNED = re.compile(
    r"(?i)(?<![A-Za-z_])(" + _NAME + r"(?:\s*=\s*|%3D|%253D)|" + _OAUTH + r"\s*:\s*)"
    + _VALUE)
# 'name': 'value', ("name", "value"), b'name': b'value' (reprs, JSON).
_QUOTED = re.compile(
    r"(?i)(['\"])(" + _NAME + r")\1(\s*[:,=]\s*b?)(['\"])((?:\\.|(?!\4).)*)\4")


def _assigned(match: re.Match[str]) -> str:
    value = match.group(2)
    shown = f'"{REDACTED}"' if value.startswith('"') else REDACTED
    return f"{match.group(1)}{shown}"


def _quoted(match: re.Match[str]) -> str:
    q1, name, sep, q2 = match.group(1, 2, 3, 4)
    return f"{q1}{name}{q1}{sep}{q2}{REDACTED}{q2}"


def redact(text: str) -> str:
    """``text`` with every OAuth credential and ``*secret*`` value replaced."""
    if not text:
        return text
    return _ASSIGNED.sub(_assigned, _QUOTED.sub(_quoted, text))


_PLAIN = (int, float, bool, type(None))


class RedactFilter(logging.Filter):
    """Redacts credentials in a record's message, arguments, traceback and stack.

    Arguments are redacted one by one first (so formatters that read
    ``record.args``, like uvicorn's access formatter, keep working); if the
    formatted message still holds a credential (a name in the format string and
    its value in an argument) the message is flattened and redacted whole.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._redact(record)
        except Exception:  # never lose a log line to the filter
            record.msg, record.args = REDACTED + " (a log line that could not be redacted)", None
            record.exc_info = record.exc_text = None
        return True

    def _redact(self, record: logging.LogRecord) -> None:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(self._arg(a) for a in args)
        elif isinstance(args, dict):
            record.args = {k: self._arg(v) for k, v in args.items()}
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None  # formatters print exc_text; keep them from re-formatting
        if record.stack_info:
            record.stack_info = redact(record.stack_info)

    @staticmethod
    def _arg(value: Any) -> Any:
        if isinstance(value, _PLAIN):
            return value
        if isinstance(value, str):
            return redact(value)
        text = str(value)
        cleaned = redact(text)
        return value if cleaned == text else cleaned
