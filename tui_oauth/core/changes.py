"""Has the store changed?  A marker that costs the same whatever the store's size.

The console keeps a :class:`ChangeWatcher` and polls it about once a second; when
:meth:`ChangeWatcher.poll` says the store changed (a colleague revoked tokens from
the CLI, the provider issued new ones), the screens read again what they show.

SQLite
    ``PRAGMA data_version`` on one connection of the watcher's own, held for its
    life.  The value is per connection: it changes when *another* connection
    commits, which includes every connection of the store's own pool in this
    process, and every other process; the watcher's own reads never change it.
    It reads a header in shared memory: no table is touched.  The file's identity
    (:meth:`Store.check_identity`) is checked first, so a store file removed or
    replaced under the console is reported (StoreGoneError) instead of watching
    the old inode forever.

PostgreSQL
    LISTEN on a connection of the watcher's own.  tui-oauth's engines send
    ``NOTIFY tui_oauth_changes`` in every transaction that writes a table the
    console shows (:func:`tui_oauth.core.database._install_pg_change_notify`: no
    trigger, so no migration), whatever the front door: CLI, console, provider,
    another host.  NOTIFY is delivered at commit, never for a rollback, and the
    provider's nonce-only transactions send none.  A poll is one ``SELECT`` on the
    watcher's connection, which collects the notifications that arrived.
    As a fallback for writers that send no NOTIFY (psql, an older tui-oauth), the
    marker also holds the rows inserted, updated and deleted in those tables
    (``pg_stat_user_tables``: a few rows of the statistics system, reads never
    counted).  Those counters alone were too slow: a backend that went idle less
    than a second after its last statistics flush reports again only after 10 s
    (PostgreSQL 15, PGSTAT_IDLE_INTERVAL; measured 9.98 s in the tests' server).
    Rejected: ``pg_stat_database.xact_commit`` counts read-only transactions (the
    console's own reloads would look like changes) and has the same delay;
    ``pg_current_wal_lsn()`` is for the whole cluster (other databases, nonces,
    vacuum, checkpoints).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tui_oauth.core.database import CHANGE_CHANNEL
from tui_oauth.core.errors import StoreError

if TYPE_CHECKING:
    import psycopg

    from tui_oauth.core.store import Store

log = logging.getLogger(__name__)

#: The tables whose changes the console shows (PostgreSQL; SQLite counts every commit).
WATCHED_TABLES = ("consumers", "consumer_info", "service_providers", "tokens",
                  "held_tokens", "audit_log", "store_meta", "refusals", "consumer_clock")

_PG_MARKER = (
    "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"
    " WHERE schemaname = current_schema() AND relname = ANY(%(tables)s)")


class ChangeWatcher:
    """``poll()``: has the store changed since the previous poll (or since this was made)?

    Thread-safe (one poll at a time); made and polled off the UI thread, since it
    connects and queries.  ``close()`` lets its connection go.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._sqlite: sqlite3.Connection | None = None
        self._pg: psycopg.Connection[Any] | None = None
        self._notified = 0
        self._closed = False
        self._last: Any = None
        self._last = self.marker()

    def marker(self) -> Any:
        """The current marker: equal values mean no change in between (on this watcher)."""
        with self._lock:
            return self._read()

    def poll(self) -> bool:
        """True when the store changed since the last poll.  Raises StoreGoneError when
        the SQLite file was removed or replaced, StoreError when the database fails."""
        with self._lock:
            now = self._read()
            changed = bool(now != self._last)
            self._last = now
            return changed

    def _read(self) -> Any:
        if self._closed:
            raise StoreError("The change watcher is closed.")
        self._store.check_identity()  # StoreGoneError when the file was replaced
        if self._store.dialect == "sqlite":
            return self._sqlite_marker()
        return self._pg_marker()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._sqlite is not None:
                self._sqlite.close()
                self._sqlite = None
            if self._pg is not None:
                self._pg.close()
                self._pg = None

    # SQLite -----------------------------------------------------------------

    def _sqlite_marker(self) -> Any:
        path = self._store.path
        if path is None:  # in memory: no other connection can see it anyway
            return 0
        try:
            if self._sqlite is None:
                # mode=rw: never create a file that is gone; ro when we may not write it.
                uri = f"file:{quote(str(path))}"
                try:
                    conn = sqlite3.connect(f"{uri}?mode=rw", uri=True, isolation_level=None,
                                           check_same_thread=False, timeout=1.0)
                except sqlite3.OperationalError:
                    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None,
                                           check_same_thread=False, timeout=1.0)
                self._sqlite = conn
            row = self._sqlite.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error as exc:
            if self._sqlite is not None:
                self._sqlite.close()
                self._sqlite = None
            raise StoreError(f"The database failed while checking for changes: {exc}") from exc
        return (path, int(row[0]))

    # PostgreSQL -------------------------------------------------------------

    def _pg_marker(self) -> Any:
        import psycopg

        try:
            if self._pg is None:
                url = self._store.engine.url.set(drivername="postgresql")
                conn = psycopg.connect(url.render_as_string(hide_password=False),
                                       autocommit=True, connect_timeout=10,
                                       application_name="tui-oauth watch")
                conn.add_notify_handler(self._on_notify)
                conn.execute(f"LISTEN {CHANGE_CHANNEL}")
                self._pg = conn
            # Any statement collects the notifications waiting on the connection.
            row = self._pg.execute(_PG_MARKER, {"tables": list(WATCHED_TABLES)}).fetchone()
        except psycopg.Error as exc:
            if self._pg is not None:
                self._pg.close()
                self._pg = None
            raise StoreError(f"The database failed while checking for changes: {exc}") from exc
        return (self._notified, int(row[0]) if row and row[0] is not None else 0)

    def _on_notify(self, _notify: Any) -> None:
        self._notified += 1
