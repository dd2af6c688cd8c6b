"""UTC timestamps that stay timezone-aware on every database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC (SQLite keeps no zone; PostgreSQL does)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # A str only defensively: a hand-edited SQLite file.
        stamp: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w``, combined (``1d12h``), or ``0``: a
    timedelta; ValueError, in words, for anything else."""
    import re

    value = text.strip().lower().replace(" ", "")
    if value in ("0", "none"):
        return timedelta(0)
    parts = re.fullmatch(r"(?:\d+[smhdw])+", value)
    if not value or parts is None:
        raise ValueError(f"{text.strip()!r} is not a duration; write it like 24h, 30m, 7d, "
                         "1d12h or 0.")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in re.findall(r"(\d+)([smhdw])", value))
    if seconds > 10 * 365 * 86400:
        raise ValueError(f"{text.strip()!r} is longer than ten years.")
    return timedelta(seconds=seconds)
