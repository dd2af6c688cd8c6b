"""The store: one database plus its secrets in the keyring.

It knows nothing of the services above it (tui_oauth.core.services): front doors
(TUI, CLI, web) open a store, then get the services over it from one factory::

    store = open_store("sqlite:///tmp/x.db")
    services(store).consumers.add(key="jira:1", name="JIRA", public_key=pem)

Writes that touch a secret go through :meth:`Store.transaction`, which keeps
the database and the keyring consistent: the row is flushed first (so
constraint errors come before any keyring write), then the keyring is
written, then the transaction commits.  Any failure rolls the database back
and undoes the keyring writes already made, so there is never a row without
its secret nor a secret without its row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, select

from tui_oauth.core import audit as audit_mod
from tui_oauth.core.audit import Actor
from tui_oauth.core.config import resolve_db_url
from tui_oauth.core.database import (
    check_connection,
    checkpoint,
    make_engine,
    parse_url,
    reader,
    redact_url,
    sqlite_path,
)
from tui_oauth.core.errors import (
    NoStoreError,
    ReadOnlyError,
    SecretStoreError,
    StoreError,
    StoreGoneError,
)
from tui_oauth.core.migrations import HEAD, current_revision, upgrade
from tui_oauth.core.models import StoreMeta

if TYPE_CHECKING:
    # The keyring (keyring/store.py imports keyring and its backends: ~20-30 ms, measured with
    # -X importtime) loads on the first secret read or write, not when the store opens:
    # a listing never needs it.
    from keyring.backend import KeyringBackend

    from tui_oauth.core.changes import ChangeWatcher
    from tui_oauth.core.keyring.store import SecretStore

log = logging.getLogger(__name__)

#: PostgreSQL advisory lock key of the keyring lock (see UnitOfWork.guard_keyring).
KEYRING_LOCK_ID = 0x7475_692D_6F61  # "tui-oa"
#: WAL size past which long jobs checkpoint between their transactions.
WAL_CHECKPOINT_AT = 8 * 1024 * 1024


@dataclass
class UnitOfWork:
    """One transaction: a database session plus the keyring writes it made."""

    session: Session
    secrets: SecretStore
    actor: Actor
    _undo: list[Callable[[], None]] = field(default_factory=list)
    _guard: str = ""  # "", "shared" or "exclusive": the keyring lock held

    def guard_keyring(self, *, exclusive: bool = False) -> None:
        """Hold the keyring lock until this transaction ends.

        Every transaction that writes the keyring holds it shared, and the orphan
        sweep (``doctor --fix``) holds it exclusively, so the sweep never sees an
        item written by a transaction that has not committed yet.  On SQLite
        ``BEGIN IMMEDIATE`` already serialises every writer, so this is a no-op;
        on PostgreSQL it is a transaction-level advisory lock.
        """
        if self._guard == "exclusive" or (self._guard == "shared" and not exclusive):
            return
        bind = self.session.get_bind()
        if bind.dialect.name == "postgresql":
            fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
            self.session.connection().execute(text(f"SELECT {fn}(:k)"), {"k": KEYRING_LOCK_ID})
        self._guard = "exclusive" if exclusive else "shared"

    def set_secret(self, name: str, value: str) -> None:
        self.guard_keyring()
        previous = self.secrets.get(name)
        self.secrets.set(name, value)
        if previous is None:
            self._undo.append(lambda: self._quiet_delete(name))
        else:
            self._undo.append(lambda: self.secrets.set(name, previous))

    def delete_secret(self, name: str) -> None:
        self.guard_keyring()
        previous = self.secrets.get(name)
        if previous is None:
            return
        self.secrets.delete(name)
        self._undo.append(lambda: self.secrets.set(name, previous))

    def _quiet_delete(self, name: str) -> None:
        self.secrets.delete(name)

    def audit(self, action: str, target_type: str, target: str, *,
              before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
              detail: str | None = None) -> None:
        audit_mod.record(self.session, self.actor, action, target_type, target,
                         before=before, after=after, detail=detail)

    def undo_secrets(self) -> list[str]:
        """Undo keyring writes, newest first; returns what could not be undone."""
        failures: list[str] = []
        while self._undo:
            step = self._undo.pop()
            try:
                step()
            except SecretStoreError as exc:
                failures.append(str(exc))
        return failures


class Store:
    """An open store: the database, its keyring items, who acts and how.  The services
    over it come from :func:`tui_oauth.core.registry.services`."""

    def __init__(self, engine: Engine, secrets: SecretStore | Callable[[], SecretStore], *,
                 url: str, store_id: str,
                 actor: Actor, read_only: bool = False, path: Path | None = None,
                 identity: tuple[int, int] | None = None) -> None:
        self.engine = engine
        self.path = path  # the SQLite file, or None
        self._identity = identity  # its (device, inode) when opened
        self._reader = reader(engine)
        self._secrets = secrets  # a SecretStore, or what makes one on first use
        self.url = url
        self.store_id = store_id
        self.actor = actor
        self.read_only = read_only
        #: Kept here by the services' factory (registry.services), which alone knows its
        #: type: one set of services per store, made on first use.
        self.services_slot: object | None = None

    @property
    def secrets(self) -> SecretStore:
        """The store's keyring items; made (and keyring imported) on first use."""
        if callable(self._secrets):
            self._secrets = self._secrets()
        return self._secrets

    @property
    def display_url(self) -> str:
        return redact_url(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def check_identity(self, *, deep: bool = False) -> None:
        """Raise StoreGoneError when the store was removed or replaced under this process.

        SQLite: the file at the path must still be the one opened (same device and
        inode); this costs one stat() and runs before every transaction.  With
        ``deep`` (the server's refresh), the database's store id is compared too,
        which also catches a PostgreSQL database dropped and made again.
        """
        if self.path is not None and self._identity is not None:
            now = _file_identity(self.path)
            if now != self._identity:
                what = "removed" if now is None else "replaced by another file"
                raise StoreGoneError(
                    f"The store file {self.path} was {what} after this process opened it; "
                    "nothing more is read from or written to it.",
                    hint="Restart with the store you mean (--db); if it is gone, restore it "
                         "from a backup, or make a new one with `tui-oauth db init`.",
                )
        if deep:
            try:
                with Session(self._reader) as s:
                    meta = s.get(StoreMeta, "store_id")
            except OperationalError as exc:
                raise StoreError(f"The database failed while checking the store id: "
                                 f"{exc.orig}") from exc
            if meta is None or meta.value != self.store_id:
                raise StoreGoneError(
                    f"The database {self.display_url} is no longer the store this process "
                    f"opened (store id {self.store_id}, now "
                    f"{meta.value if meta else 'none'}).",
                    hint="Restart so that the new store (and its own keyring items) is used.",
                )

    def keep_wal_small(self, threshold: int | None = None) -> None:
        """SQLite: checkpoint and truncate the WAL once it passes ``threshold`` bytes.

        For long jobs made of many short transactions (purges): under a server's
        steady stream of overlapping reads, SQLite's automatic checkpoints never
        get to start the WAL again, and it grows without bound.
        """
        if self.path is None:
            return
        try:
            size = Path(f"{self.path}-wal").stat().st_size
        except OSError:
            return
        if size > (WAL_CHECKPOINT_AT if threshold is None else threshold):
            try:
                checkpoint(self.engine, "TRUNCATE")
            except OperationalError as exc:  # busy past the timeout: try after the next batch
                log.info("WAL checkpoint postponed: %s", exc)

    def watch_changes(self) -> ChangeWatcher:
        """A watcher whose ``poll()`` says whether the store changed since the last poll
        (anyone's commit: this process, the CLI, the provider, another host), at a
        cost that does not grow with the store; see :mod:`tui_oauth.core.changes`.
        It connects: make and poll it off a UI thread, and close it when done."""
        from tui_oauth.core.changes import ChangeWatcher

        return ChangeWatcher(self)

    def session(self) -> Session:
        """A read session (no keyring, no audit); on SQLite it never takes the write lock."""
        self.check_identity()
        return Session(self._reader, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        if self.read_only:
            raise ReadOnlyError(
                "This store is open read-only.", hint="Start without --read-only to change it."
            )
        self.check_identity()
        session = Session(self.engine, expire_on_commit=False)
        uow = UnitOfWork(session, self.secrets, self.actor)
        try:
            yield uow
            session.commit()
        except BaseException as exc:
            session.rollback()
            failures = uow.undo_secrets()
            if failures:
                log.error("keyring undo failed after a failed write: %s", "; ".join(failures))
                exc.add_note(
                    "The keyring could not be restored; `tui-oauth doctor` lists any orphan."
                )
            if isinstance(exc, OperationalError):
                raise StoreError(f"The database refused the change: {exc.orig}") from exc
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_unique_violation(exc: IntegrityError) -> bool:
    text = str(exc.orig).lower()
    return "unique" in text or "duplicate key" in text


def _no_store(where: str, why: str) -> NoStoreError:
    return NoStoreError(
        f"There is no tui-oauth store at {where}: {why}.",
        hint="Check the path (--db or TUI_OAUTH_DB); to make a new, empty store there, run "
             "`tui-oauth db init` with the same --db. (Only the default store is created "
             "on first use.)",
    )


def open_store(url: str | None = None, *, secrets_backend: KeyringBackend | None = None,
               read_only: bool = False, actor: Actor | None = None,
               auto_upgrade: bool = True, keyring_timeout: float = 5.0,
               create: bool = True) -> Store:
    """Open (migrating if needed) the store at ``url``.

    ``url`` defaults to ``--db``/``TUI_OAUTH_DB``/the platformdirs file.  With
    ``create`` false a missing store is an error instead of a new, empty one (the
    front doors create one only at the default location, or by `db init`).  The
    keyring is not touched here: it is resolved on the first secret read or
    write, so that listing never needs it.
    """
    resolved = resolve_db_url(url)
    parsed = parse_url(resolved)
    path = sqlite_path(parsed)
    if not create and path is not None and not path.exists():
        raise _no_store(str(path), "the file does not exist")
    engine = make_engine(resolved)
    reads = reader(engine)  # opening never takes the write lock (SQLite: never waits for a writer)
    try:
        identity = _file_identity(path) if path is not None else None
        check_connection(reads)
        revision = current_revision(reads)
        if revision is None and not create:
            raise _no_store(redact_url(resolved), "the database has no tui-oauth tables")
        if revision != HEAD:
            if read_only or not auto_upgrade:
                raise StoreError(
                    f"The database schema is at {revision or 'nothing'}; this version "
                    f"needs {HEAD}.",
                    hint="Run `tui-oauth db upgrade` (without --read-only).",
                )
            upgrade(engine)
        with Session(reads) as session:
            meta = session.exec(select(StoreMeta).where(StoreMeta.key == "store_id")).first()
        if meta is None:
            raise StoreError("The database has no store id (store_meta); is it a tui-oauth store?")
        store_id = meta.value
    except StoreError:
        engine.dispose()
        raise
    except OperationalError as exc:
        engine.dispose()
        raise StoreError(f"Cannot open {redact_url(resolved)}: {exc.orig}") from exc

    def secrets() -> SecretStore:
        from tui_oauth.core.keyring.store import SecretStore

        return SecretStore(namespace=store_id, backend=secrets_backend, timeout=keyring_timeout)

    return Store(engine, secrets, url=resolved, store_id=store_id,
                 actor=actor or Actor.from_environment(), read_only=read_only,
                 path=path, identity=identity)


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino
