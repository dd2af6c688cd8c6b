"""`tui-oauth refusals ...`: the requests the provider refused, and why."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from tui_oauth.cli.common import (
    LazyChoice,
    app_context,
    complete_consumer_keys,
    examples,
    join_keyring,
    output_options,
    print_fields,
    print_record,
    print_records,
)
from tui_oauth.core.registry import services

if TYPE_CHECKING:
    from tui_oauth.core.services.refusals import RefusalRow

    # Generic for the type checker only: older click releases cannot subscript it.
    _DateTimeParam = click.ParamType[datetime]
else:
    _DateTimeParam = click.ParamType


def _problems() -> tuple[str, ...]:
    from tui_oauth.core.provider.problems import STATUS

    return tuple(sorted(STATUS))


#: What parse_duration reads (7d, 1d12h): such text is a duration even when refused.
DURATION_SHAPE = re.compile(r"(?:\d+[smhdw])+")


class Since(_DateTimeParam):
    """An ISO time (UTC unless it says otherwise) or a duration back from now (2h, 7d)."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        from tui_oauth.core.timeutil import parse_duration, utcnow

        try:
            return utcnow() - parse_duration(text)
        except ValueError as exc:
            if DURATION_SHAPE.fullmatch(text.lower().replace(" ", "")):  # a duration, too long
                self.fail(f"{exc} Give a shorter duration back from now (30m, 2h, 7d), or "
                          "a time (2026-11-30).", param, ctx)
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{text!r} is neither a time (2026-11-30, '2026-11-30 14:00', "
                      "2026-11-30T14:00:00Z) nor a duration back from now (30m, 2h, 7d).",
                      param, ctx)
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@click.group(epilog=examples(
    "  tui-oauth refusals list --since 2h",
    "  tui-oauth refusals show 42",
))
def refusals() -> None:
    """Requests the provider refused: when, which consumer, the problem, and advice."""


def record(r: RefusalRow) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(r)


def _consumer(r: RefusalRow) -> str:
    key = r.consumer_key or "-"
    return key if r.known else f"{key} (unknown)"


HEADERS = ["id", "at (utc)", "consumer", "problem", "request", "from"]


def _cells(r: RefusalRow) -> list[Any]:
    problem = r.problem if r.answered == r.problem else f"{r.problem} (answered {r.answered})"
    return [r.id, r.at.strftime("%Y-%m-%d %H:%M:%S"), _consumer(r), problem,
            f"{r.method} {r.url}", r.client_addr or "-"]


@refusals.command("list", epilog=examples(
    "  tui-oauth refusals list --consumer jira:1354 --since 7d",
    "  tui-oauth refusals list --problem timestamp_refused --since '2026-11-30 08:00'",
    "  tui-oauth refusals list --since 2h -o jsonl | jq -r .advice",
    "  for id in $(tui-oauth refusals list -q --problem signature_invalid --limit 5); do",
    "      tui-oauth refusals show \"$id\"",
    "  done",
))
@click.option("--consumer", "consumer_key", metavar="KEY", shell_complete=complete_consumer_keys,
              help="Only this consumer key (as sent; unknown keys too).")
@click.option("--problem", type=LazyChoice(_problems), metavar="PROBLEM",
              help="Only this oauth_problem (the real cause), e.g. signature_invalid.")
@click.option("--since", type=Since(),
              help="On or after this time (ISO, UTC unless it says) or this long ago "
                   "(30m, 2h, 7d).")
@click.option("--filter", "text", metavar="TEXT",
              help="Key, problem, URL (public, as reached, or the listen address: an "
                   "internal port) or client address containing this (any case).")
@click.option("--limit", type=click.IntRange(1), metavar="N", help="At most N (newest).")
@output_options("refusal ids")
def list_(consumer_key: str | None, problem: str | None, since: datetime | None,
          text: str | None, limit: int | None, output: str) -> None:
    """Refused requests, newest first (streamed: any number).

    The table is one line each; -o json/jsonl gives every field with the record's
    advice, and `tui-oauth refusals show ID` the whole record with its advice."""
    rows = services(app_context().store).refusals.iter(consumer=consumer_key, problem=problem,
                                                       since=since, text=text)
    if limit is not None:
        rows = itertools.islice(rows, limit)
    filtered = bool(consumer_key or problem or since or text)
    print_records(output, rows, record=record, name=lambda r: r.id, headers=HEADERS,
                  cells=_cells, first=200,
                  shorten=[None, None, "middle", None, "end", None],
                  empty="No refusals" + (" match." if filtered else " recorded."),
                  json_key="refusals")


def _finding(r: RefusalRow) -> str | None:
    """The debugger's verdict when the record was written, for people."""
    if r.problem != "signature_invalid":
        return None
    if r.finding is None:
        return "not checked when recorded"
    code, _, words = r.finding.partition(": ")
    return words if code == "none" else f"{code}: {words}"


def show_refusal(r: RefusalRow) -> None:
    offset = None
    if r.offset is not None:
        offset = f"{r.offset:+d} s ({'behind' if r.offset < 0 else 'ahead of'} our clock)" \
            if r.offset else "0 s"
    print_fields([(label, value) for label, value in [
        ("Refusal", r.id),
        ("At", r.at.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("Consumer", _consumer(r)),
        ("Token", r.token_prefix),
        ("Problem", r.problem),
        ("  answered", r.answered if r.answered != r.problem else None),
        ("Request", f"{r.method} {r.url}"),
        ("  reached", r.seen_url if r.seen_url != r.url else None),
        ("  listening on", r.listen_url
         if r.listen_url and r.listen_url not in (r.url, r.seen_url) else None),
        ("From", r.client_addr),
        ("Signature method", r.signature_method),
        ("Timestamp", r.timestamp),
        ("  offset", offset),
        ("Base string", (r.base_string or "") + (" (cut at 16 KiB)" if r.truncated else "")
         if r.base_string else None),
        ("Finding", _finding(r)),
        ("Advice", r.advice),
    ] if value is not None])


@refusals.command("show", epilog=examples(
    "  tui-oauth refusals show 42",
    "  tui-oauth refusals show 42 -o json | jq .check.mistake",
    "  tui-oauth refusals show 42 --no-check   (no keyring)",
))
@click.argument("refusal_id", type=click.IntRange(1), metavar="ID")
@click.option("--check/--no-check", default=True, show_default=True,
              help="For signature_invalid: check the recorded signature against the stored "
                   "key (reads the keyring) and name the usual mistake.")
@output_options("id")
def show(refusal_id: int, check: bool, output: str) -> None:
    """One refusal: every field, advice, and for signature_invalid the debugger's finding."""
    from tui_oauth.core.errors import TuiOAuthError

    store = app_context().store
    row = services(store).refusals.get(refusal_id)
    report = None
    error = None
    checkable = (row.problem == "signature_invalid" and row.base_string and row.signature
                 and not row.truncated)
    if check and checkable:
        if row.signature_method != "RSA-SHA1":
            join_keyring()
        try:
            report = services(store).diagnostics.check_refusal(refusal_id)
        except TuiOAuthError as exc:  # the record still shows; the check says why not
            error = str(exc)

    def people() -> None:
        show_refusal(row)
        if report is not None:
            from tui_oauth.cli.debug import show_report

            click.echo("")
            click.echo("Checked against the stored key:")
            show_report(report)
        elif error is not None:
            print_fields([("Check", f"not possible: {error}")])

    from tui_oauth.cli.debug import report_dict

    print_record(output, {**record(row),
                          "check": report_dict(report) if report is not None else None,
                          "check_error": error},
                 name=row.id, show=people)
