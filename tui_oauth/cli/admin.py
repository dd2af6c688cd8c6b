"""`tui-oauth audit`, `doctor` and `db`: looking after the store itself."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import click

from tui_oauth.cli.common import (
    app_context,
    confirm,
    fail,
    needs_keyring,
    print_json,
    print_table,
    say,
)
from tui_oauth.core.config import resolve_db_url

# The database layer (core.database, core.migrations: SQLAlchemy, ~200 ms) is imported
# by each command that runs, not when this module loads (for --help or a TAB).


@click.command()
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--before", "before_id", type=int, metavar="ID",
              help="Entries older than this id (the next page).")
@click.option("--filter", "text", metavar="TEXT", help="Action, target, actor or detail.")
@click.option("--action", help="Actions starting with this, e.g. consumer. or provider.edit.")
@click.option("--target", help="Exactly this consumer key / provider name.")
@click.option("--actor", help="Exactly this actor as recorded: the OS user, or e.g. "
              "'root (login alice)' when the login name differed (--filter matches part).")
@click.option("--since", type=click.DateTime(), help="On or after this time (UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with before/after).")
def audit(limit: int, before_id: int | None, text: str | None, action: str | None,
          target: str | None, actor: str | None, since: datetime | None, as_json: bool) -> None:
    """The audit log, newest first."""
    from datetime import UTC

    page = app_context().store.audit.list(
        limit=limit, before_id=before_id, text=text, action=action, target=target, actor=actor,
        since=since.replace(tzinfo=UTC) if since else None,
    )
    if as_json:
        print_json({
            "entries": [{
                "id": e.id, "at": e.at, "actor": e.actor, "client_addr": e.client_addr,
                "action": e.action, "target_type": e.target_type, "target": e.target,
                "before": json.loads(e.before) if e.before else None,
                "after": json.loads(e.after) if e.after else None, "detail": e.detail,
            } for e in page.entries],
            "next_before": page.next_before_id,
        })
        return
    print_table(
        ["id", "at (utc)", "who", "action", "target", "detail"],
        [[e.id, e.at.strftime("%Y-%m-%d %H:%M:%S"),
          e.actor + (f"@{e.client_addr}" if e.client_addr else ""), e.action, e.target,
          e.detail or ""] for e in page.entries],
        empty="No audit entries" + (" match." if text or action or target or actor else "."),
    )
    if page.next_before_id:
        say(f"(older entries: --before {page.next_before_id})", err=True)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--fix", is_flag=True, help="Delete keyring items that belong to no row.")
@click.option("--yes", "-y", is_flag=True, help="With --fix: do not ask.")
@needs_keyring
def doctor(as_json: bool, fix: bool, yes: bool) -> None:
    """Check the store: location, permissions, keyring backend, orphaned secrets."""
    store = app_context().store
    report = store.doctor.run()
    if as_json:
        print_json({"ok": report.ok, **dataclasses.asdict(report)})
    else:
        marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "info": "    "}
        for c in report.checks:
            say(f"[{marks[c.status]}] {c.name}: {c.message}")
            if c.fix and c.status != "ok":
                say(f"       fix: {c.fix}")
    if fix and report.secrets_without_row:
        confirm(f"Delete {len(report.secrets_without_row)} orphaned keyring item(s)?", yes)
        removed = store.doctor.remove_orphan_secrets(only=report.secrets_without_row)
        say(f"Deleted {len(removed)} orphaned keyring item(s).")
    if not report.ok:
        raise SystemExit(1)


@click.group()
def db() -> None:
    """The database itself."""


@db.command("init")
def db_init() -> None:
    """Make a new, empty store at --db (a SQLite file, or the tables of an empty
    PostgreSQL database).  The default store is made on first use without this."""
    from tui_oauth.core.database import redact_url
    from tui_oauth.core.errors import NoStoreError
    from tui_oauth.core.store import open_store

    ctxobj = app_context()
    if ctxobj.read_only:
        fail("db init creates a store; drop --read-only.")
    url = resolve_db_url(ctxobj.db)
    try:
        existing = open_store(url, create=False, auto_upgrade=False)
    except NoStoreError:
        pass
    else:
        existing.close()
        say(f"{redact_url(url)} is already a tui-oauth store (id {existing.store_id}); "
            "nothing changed.")
        return
    store = open_store(url, create=True)
    store.close()
    say(f"Created a new, empty store at {redact_url(url)} (id {store.store_id}).")


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Bring an existing store's schema to this version's."""
    from tui_oauth.core.database import (
        check_connection,
        make_engine,
        parse_url,
        redact_url,
        sqlite_path,
    )
    from tui_oauth.core.migrations import current_revision, upgrade

    ctxobj = app_context()
    if ctxobj.read_only:
        fail("db upgrade changes the schema; drop --read-only.")
    url = resolve_db_url(ctxobj.db)
    path = sqlite_path(parse_url(url))
    if path is not None and not path.exists():
        fail(f"There is no store at {path}: the file does not exist. Check --db, or make a "
             "new store with `tui-oauth db init`.")
    engine = make_engine(url)
    try:
        check_connection(engine)
        if current_revision(engine) is None:
            fail(f"{redact_url(url)} has no tui-oauth tables: it is not a store. Check --db, "
                 "or make a new store there with `tui-oauth db init`.")
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        say(f"{redact_url(url)} is up to date (revision {after}).")
    else:
        say(f"Upgraded {redact_url(url)} from {before or 'empty'} to {after}.")


@db.command("vacuum")
def db_vacuum() -> None:
    """Give back the space freed by purges (SQLite rewrites the file; PostgreSQL runs
    VACUUM ANALYZE).  Safe while others use the store, but SQLite writers wait."""
    from tui_oauth.core.database import sqlite_space, vacuum

    ctxobj = app_context()
    if ctxobj.read_only:
        fail("db vacuum rewrites the store; drop --read-only.")
    store = ctxobj.store
    before = sqlite_space(store.engine)
    vacuum(store.engine)
    after = sqlite_space(store.engine)
    if before is None or after is None:
        say(f"Vacuumed {store.display_url} (VACUUM ANALYZE).")
        return
    say(f"Vacuumed {store.display_url}: {_mib(before.file_bytes)} -> {_mib(after.file_bytes)} "
        f"(WAL {_mib(before.wal_bytes)} -> {_mib(after.wal_bytes)}).")


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"
