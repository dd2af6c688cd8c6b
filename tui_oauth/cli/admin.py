"""`tui-oauth audit`, `doctor` and `db`: looking after the store itself."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from tui_oauth.cli.common import (
    app_context,
    confirm,
    examples,
    fail,
    needs_keyring,
    output_options,
    print_json,
    print_jsonl,
    print_names,
    print_records,
    say,
)
from tui_oauth.core.config import resolve_db_url
from tui_oauth.core.errors import TuiOAuthError
from tui_oauth.core.registry import services

# The database layer (core.database, core.migrations: SQLAlchemy, ~200 ms) is imported
# by each command that runs, not when this module loads (for --help or a TAB).


class DefaultListGroup(click.Group):
    """A group whose bare form (``tui-oauth audit``, or ``tui-oauth audit --limit 5``)
    is its ``list`` command: the name it had before it became a group, kept for the
    scripts that use it.  ``--help`` still shows the group's help; a TAB still offers
    the subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Nothing at all is `list` too, except for a TAB (resilient parsing), which
        # should offer the subcommands.
        if (not args and not ctx.resilient_parsing) or (
                args and args[0].startswith("-") and args[0] not in ctx.help_option_names):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultListGroup, epilog=examples(
    "  tui-oauth audit list --action consumer. --since 2026-01-01",
    "  tui-oauth audit            (the same as `audit list`)",
))
def audit() -> None:
    """The audit log, newest first (`audit` alone is `audit list`)."""


def _entry(e: Any) -> dict[str, Any]:
    return {
        "id": e.id, "at": e.at, "actor": e.actor, "client_addr": e.client_addr,
        "action": e.action, "target_type": e.target_type, "target": e.target,
        "before": json.loads(e.before) if e.before else None,
        "after": json.loads(e.after) if e.after else None, "detail": e.detail,
    }


@audit.command("list", epilog=examples(
    "  tui-oauth audit list --target jira:1354",
    "  tui-oauth audit list --action provider. --since '2026-01-31 00:00' -o jsonl",
    "  tui-oauth audit list --limit 50 --before 1200   (the next page)",
    "  tui-oauth audit list -o json | jq '.entries[] | select(.actor == \"root\")'",
))
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--before", "before_id", type=int, metavar="ID",
              help="Entries older than this id (the next page).")
@click.option("--filter", "text", metavar="TEXT", help="Action, target, actor or detail.")
@click.option("--action", help="Actions starting with this, e.g. consumer. or provider.edit.")
@click.option("--target", help="Exactly this consumer key / provider name.")
@click.option("--actor", help="Exactly this actor as recorded: the OS user, or e.g. "
              "'root (login alice)' when the login name differed (--filter matches part).")
@click.option("--since", type=click.DateTime(), help="On or after this time (UTC).")
@output_options("entry ids")
def audit_list(limit: int, before_id: int | None, text: str | None, action: str | None,
               target: str | None, actor: str | None, since: datetime | None,
               output: str) -> None:
    """The audit log, newest first (JSON carries each change's before and after)."""
    from datetime import UTC

    page = services(app_context().store).audit.list(
        limit=limit, before_id=before_id, text=text, action=action, target=target, actor=actor,
        since=since.replace(tzinfo=UTC) if since else None,
    )
    print_records(
        output, page.entries, record=_entry, name=lambda e: e.id,
        headers=["id", "at (utc)", "who", "action", "target", "detail"],
        cells=lambda e: [e.id, e.at.strftime("%Y-%m-%d %H:%M:%S"),
                         e.actor + (f"@{e.client_addr}" if e.client_addr else ""), e.action,
                         e.target, e.detail or ""],
        empty="No audit entries" + (" match." if text or action or target or actor else "."),
        json_key="entries", json_after={"next_before": page.next_before_id},
    )
    if page.next_before_id and output != "json":
        say(f"(older entries: --before {page.next_before_id})", err=True)


#: Where a check's status puts it in doctor's report: the passing ones first, the
#: failing ones last (where the eye lands when the report ends).
_ORDER = {"ok": 0, "info": 0, "warn": 1, "fail": 2}


@click.command(epilog=examples(
    "  tui-oauth doctor",
    "  tui-oauth doctor -q || echo 'tui-oauth needs attention'",
    "  tui-oauth doctor -o json | jq '.checks[] | select(.status != \"ok\")'",
    "  tui-oauth doctor --fix --yes",
))
@click.option("--fix", is_flag=True, help="Delete keyring items that belong to no row.")
@click.option("--yes", "-y", is_flag=True, help="With --fix: do not ask.")
@output_options("checks that did not pass (warn or fail)")
@needs_keyring
@click.pass_context
def doctor(ctx: click.Context, fix: bool, yes: bool, output: str) -> None:
    """Check the store: location, permissions, keyring backend, orphaned secrets.

    The failing checks are printed last.  Exit status: 0 when every check passes
    (warnings included), 1 when one fails, 2 on a usage error.
    """
    store = app_context().store
    report = services(store).doctor.run()
    # The config file's [serve] table, checked as `serve` would (the CLI knows it); a file
    # that does not read at all is the "config file" check's, said once.
    if not any(c.name == "config file" and c.status == "fail" for c in report.checks):
        try:
            from tui_oauth.cli import _serve_defaults

            _serve_defaults()
        except TuiOAuthError as exc:
            report.add("config file [serve]", "fail", exc.message, fix=exc.hint)
    checks = sorted(report.checks, key=lambda c: _ORDER.get(c.status, 0))
    if output == "json":
        print_json({"ok": report.ok, "checks": checks,
                    "rows_without_secret": report.rows_without_secret,
                    "secrets_without_row": report.secrets_without_row})
    elif output == "jsonl":
        print_jsonl(checks)
    elif output == "name":
        print_names(c.name for c in checks if c.status in ("warn", "fail"))
    else:
        marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "info": "    "}
        for c in checks:
            say(f"[{marks[c.status]}] {c.name}: {c.message}")
            if c.fix and c.status != "ok":
                say(f"       fix: {c.fix}")
    if fix and report.secrets_without_row:
        confirm(f"Delete {len(report.secrets_without_row)} orphaned keyring item(s)?", yes)
        removed = services(store).doctor.remove_orphan_secrets(only=report.secrets_without_row)
        # Beside the table; after JSON or names, on stderr (stdout stays data).
        say(f"Deleted {len(removed)} orphaned keyring item(s).", err=output != "table")
    if not report.ok:
        ctx.exit(1)


@click.group(epilog=examples(
    "  tui-oauth --db /srv/oauth/store.db db init",
    "  tui-oauth db upgrade",
    "  tui-oauth db vacuum",
))
def db() -> None:
    """The database itself."""


@db.command("init", epilog=examples(
    "  tui-oauth --db /srv/oauth/store.db db init",
    "  tui-oauth --db postgresql+psycopg://oauth@db.example.com/oauth db init",
))
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


@db.command("upgrade", epilog=examples(
    "  tui-oauth db upgrade",
    "  TUI_OAUTH_DB=postgresql+psycopg://oauth@db.example.com/oauth tui-oauth db upgrade",
))
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


@db.command("vacuum", epilog=examples(
    "  tui-oauth tokens purge && tui-oauth db vacuum",
))
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
