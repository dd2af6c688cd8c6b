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
)
from tui_oauth.core.config import resolve_db_url
from tui_oauth.core.database import check_connection, make_engine, redact_url
from tui_oauth.core.migrations import upgrade


@click.command()
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--before", "before_id", type=int, metavar="ID",
              help="Entries older than this id (the next page).")
@click.option("--filter", "text", metavar="TEXT", help="Action, target, actor or detail.")
@click.option("--action", help="Actions starting with this, e.g. consumer. or provider.edit.")
@click.option("--target", help="Exactly this consumer key / provider name.")
@click.option("--actor", help="Exactly this OS user.")
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
        click.echo(f"(older entries: --before {page.next_before_id})", err=True)


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
            click.echo(f"[{marks[c.status]}] {c.name}: {c.message}")
            if c.fix and c.status != "ok":
                click.echo(f"       fix: {c.fix}")
    if fix and report.secrets_without_row:
        confirm(f"Delete {len(report.secrets_without_row)} orphaned keyring item(s)?", yes)
        removed = store.doctor.remove_orphan_secrets()
        click.echo(f"Deleted {len(removed)} orphaned keyring item(s).")
    if not report.ok:
        raise SystemExit(1)


@click.group()
def db() -> None:
    """The database itself."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create the schema or bring it to this version's."""
    ctxobj = app_context()
    if ctxobj.read_only:
        fail("db upgrade changes the schema; drop --read-only.")
    url = resolve_db_url(ctxobj.db)
    engine = make_engine(url)
    try:
        check_connection(engine)
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"{redact_url(url)} is up to date (revision {after}).")
    else:
        click.echo(f"Upgraded {redact_url(url)} from {before or 'empty'} to {after}.")
