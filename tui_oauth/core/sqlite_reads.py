"""Reading a SQLite store with the standard library only, for commands that must answer
at once.

The store's own layer (SQLAlchemy and SQLModel) costs about 440 ms to import on the
2-core test machine (`python -X importtime -m tui_oauth consumers list`), more than a
listing on an empty store may take in all (issue 10: 250 ms).  The functions here read
an up-to-date SQLite store directly, read-only, with the same SQL the services' queries
compile to; anything they cannot vouch for (not SQLite, a missing file, another schema
revision, a locked or damaged file) answers ``None`` and the caller takes the service
path, which opens, migrates or explains as usual.  tests/service/test_sqlite_reads.py checks,
on generated stores, that every listing here equals the service's.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

#: The newest schema revision (the migrations' head).  Kept in this light module so that
#: it can be read without SQLAlchemy; tests/service/test_database.py checks it against the
#: migration scripts.
HEAD = "0009"

#: The consumers list's sort orders, each as the SQL the service sorts by (on SQLite).
#: services/consumers.py builds its SQLAlchemy columns for the same names.
CONSUMER_SORTS: dict[str, str] = {
    "created": "created_at",
    "key": "key",
    "name": "lower(name)",  # case-insensitive, like the providers list
    "signature_method": "signature_method",
    # as 0/1: a keyset page compares it with < and >
    "two_lo": "CASE WHEN two_lo_allowed THEN 1 ELSE 0 END",
}

#: The columns the consumers list's filter looks in (for text anywhere in any of them).
CONSUMER_FILTER = ("key", "name", "description")


@dataclass(frozen=True)
class ConsumerSummary:
    """One line of the consumers list: no secret, no key parsing."""

    key: str
    name: str
    signature_method: str
    two_lo_allowed: bool
    token_count: int
    created_at: datetime
    has_public_key: bool
    has_shared_secret: bool


def like_pattern(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, its wildcards escaped with ``\\``."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite://`` URL (None for another database or an in-memory one)."""
    scheme, _, rest = url.partition("://")
    if scheme.split("+")[0] != "sqlite" or not rest.startswith("/"):
        return None
    path = urllib.parse.unquote(rest[1:].split("?", 1)[0])
    return Path(path) if path and path != ":memory:" else None


def connect_read_only(path: Path, *, timeout: float = 0.1) -> sqlite3.Connection:
    """``path`` opened read-only (never creates it); raises sqlite3.Error."""
    uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=timeout)


def open_current(url: str) -> sqlite3.Connection | None:
    """A read-only connection to the SQLite store at ``url`` if it is a tui-oauth store at
    :data:`HEAD`; None in every other case (the caller then opens the store as usual)."""
    path = sqlite_file(url)
    if path is None or not path.is_file():
        return None
    try:
        db = connect_read_only(path, timeout=1.0)
    except sqlite3.Error:
        return None
    try:
        versions = [r[0] for r in db.execute("SELECT version_num FROM alembic_version")]
        store_id = db.execute("SELECT value FROM store_meta WHERE key = 'store_id'").fetchone()
    except sqlite3.Error:
        db.close()
        return None
    if versions != [HEAD] or store_id is None:
        db.close()
        return None
    return db


def _utc(value: object) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value)
    else:
        raise sqlite3.DataError(f"not a date: {value!r}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def consumer_summaries(db: sqlite3.Connection, filter: str | None = None, *,
                       sort: str = "key", descending: bool = False,
                       page_size: int = 1000) -> Iterator[ConsumerSummary]:
    """What ``ConsumerService.iter_list`` yields, read a page at a time (keyset paging on
    the sort column and the key), with each page's token counts."""
    if sort not in CONSUMER_SORTS:
        raise ValueError(f"unknown sort {sort!r}")
    first = CONSUMER_SORTS[sort]
    direction = " DESC" if descending else ""
    order = f"{first}{direction}" + ("" if sort == "key" else f", key{direction}")
    conditions: list[str] = []
    params: list[object] = []
    text = (filter or "").strip()
    if text:
        pattern = like_pattern(text)
        # SQLite's LIKE ignores ASCII case, as the service's filter does on SQLite
        conditions.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'"
                                            for c in CONSUMER_FILTER) + ")")
        params += [pattern] * len(CONSUMER_FILTER)
    after: tuple[object, str] | None = None
    while True:
        where = list(conditions)
        args = list(params)
        if after is not None:  # ties are broken by the key, in the sort's direction
            op = "<" if descending else ">"
            if sort == "key":
                where.append(f"key {op} ?")
                args.append(after[1])
            else:
                where.append(f"({first}, key) {op} (?, ?)")
                args += [after[0], after[1]]
        sql = ("SELECT id, key, name, signature_method, two_lo_allowed, created_at, "  # noqa: S608
               f"public_key IS NOT NULL, has_shared_secret, {first} FROM consumers"
               + (" WHERE " + " AND ".join(where) if where else "")
               + f" ORDER BY {order} LIMIT ?")
        rows = db.execute(sql, [*args, page_size]).fetchall()
        counts: dict[int, int] = {}
        if rows:
            ids = [r[0] for r in rows]
            counts = dict(db.execute(
                "SELECT consumer_id, count(*) FROM tokens WHERE consumer_id IN "  # noqa: S608
                f"({', '.join('?' * len(ids))}) GROUP BY consumer_id", ids).fetchall())
        for r in rows:
            yield ConsumerSummary(key=r[1], name=r[2], signature_method=r[3],
                                  two_lo_allowed=bool(r[4]), token_count=counts.get(r[0], 0),
                                  created_at=_utc(r[5]), has_public_key=bool(r[6]),
                                  has_shared_secret=bool(r[7]))
        if len(rows) < page_size:
            return
        after = (rows[-1][-1], rows[-1][1])
