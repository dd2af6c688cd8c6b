"""One refused request: every field, the advice for this record, the base string the
server computed, and the check of the request against the stored key (the signature
debugger, in a worker).  Read-only: nothing here changes the store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.screen import Screen
from textual.widgets import Label, Static

from tui_oauth.core.registry import services
from tui_oauth.core.text import visible
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.screens.refusals import clock_words, consumer_label
from tui_oauth.tui.styles import REFUSALS
from tui_oauth.tui.text import dash, plain, when
from tui_oauth.tui.widgets.footer import FittingFooter

if TYPE_CHECKING:
    from tui_oauth.core.provider.debugger import Report
    from tui_oauth.core.services.refusals import RefusalRow

BASE_TITLE = "Signature base string (what this server signed) · c: copy"
CHECK_TITLE = "Against the stored key · t: check"
NOT_CHECKED = ("Not checked yet: t rebuilds the request from this record and checks its "
               "signature with the consumer's stored secret or public key, trying the usual "
               "mistakes (internal URL, http vs https, port, encoding, a rotated secret).")


def offset_words(offset: int | None) -> str:
    if offset is None:
        return ""
    return f" ({clock_words(offset)})"


def record_rows(r: RefusalRow) -> list[tuple[str, str]]:
    """Every field of the record: label, value (as stored)."""
    key = consumer_label(r) + ("" if r.known or not r.consumer_key else
                               "  (no consumer has this key)")
    answered = r.answered if r.answered == r.problem else (
        f"{r.answered} (problem_detail=minimal hides the cause from the client)")
    rows = [
        ("Refusal", f"#{r.id}"),
        ("When", f"{when(r.at, seconds=True)} UTC"),
        ("Consumer key", key),
        ("Token", dash(r.token_prefix)),
        ("Problem", r.problem),
        ("Answered", answered),
        # what the server told the client beyond the problem (its oauth_problem_advice)
        *([("Told the client", told)] if (told := getattr(r, "detail", None)) else []),
        ("Method", dash(r.method)),
        ("URL (signed)", dash(r.url)),
        *([("Reached us as", r.seen_url)] if r.seen_url and r.seen_url != r.url else []),
        # the address the server listens on, which the advice may name (as `refusals show`)
        *([("Listening on", r.listen_url)]
          if r.listen_url and r.listen_url not in (r.url, r.seen_url) else []),
        ("Client", dash(r.client_addr)),
        ("Signature", dash(r.signature_method)),
        ("Timestamp", ("-" if r.timestamp is None else str(r.timestamp))
         + offset_words(r.offset)),
        ("Signature sent", dash(r.signature)),
    ]
    return rows


def describe_finding(report: Report) -> str:
    """What the signature debugger found, in words."""
    mistake = report.mistake
    if report.matches:
        lines = ["The signature matches the stored key: signed right, as recorded (was the "
                 "key or the consumer changed since?)."]
    elif mistake is not None:
        lines = [f"Found it ({mistake.code}): {mistake.what}", f"Fix: {mistake.fix}"]
        if mistake.base_string and mistake.base_string != report.base_string:
            lines.append(f"The consumer signed: {mistake.base_string}")
    else:
        lines = ["The signature does not match the stored key, and none of the usual mistakes "
                 "explains it: the consumer probably signs with another key or secret."]
    if report.tried:
        from tui_oauth.core.provider.debugger import TRIED_WORDS

        lines.append("Tried: " + ", ".join(TRIED_WORDS.get(t, t.replace("_", " "))
                                           for t in report.tried))
    lines += [f"Note: {note}" for note in report.notes]
    return "\n".join(lines)


class RefusalRecordScreen(Screen[None]):
    CSS_PATH = REFUSALS
    HELP_TITLE = "Refusal"
    AUTO_FOCUS = "#record-body"
    BINDINGS = [
        Binding("escape", "back", "Back", id="refusal.back", tooltip="Back to the list"),
        Binding("t", "check", "Check key", id="refusal.check",
                tooltip="Check the recorded request against the consumer's stored key"),
        Binding("c", "copy_base_string", "Copy base string", id="refusal.copy",
                tooltip="Copy the signature base string to the clipboard (OSC 52)"),
    ]

    def __init__(self, row: RefusalRow) -> None:
        super().__init__()
        self.row = row

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Without a base string (any problem but signature_invalid) there is nothing to
        copy or check: the keys leave the footer."""
        return bool(self.row.base_string) or action not in ("check", "copy_base_string")

    def compose(self) -> ComposeResult:
        r = self.row
        yield Label(plain(f"Refusal #{r.id}: {r.problem} — {consumer_label(r)}",
                          multiline=False), id="detail-title")
        with VerticalScroll(id="record-body"):
            # The advice first: what a 24-line terminal shows without scrolling.
            yield Static(plain(r.advice), id="record-advice", markup=False)
            yield Label("The request", classes="section", markup=False)
            # A grid (label, value): a value longer than the line wraps under itself,
            # not back under the labels (refusals.tcss).
            with Grid(id="record-fields"):
                for label, value in record_rows(r):
                    yield Label(plain(label), classes="record-label")
                    yield Static(plain(value), classes="record-value", markup=False)
            if r.base_string:
                yield Label(plain(BASE_TITLE), classes="section")
                cut = "\n(cut at 16 KiB: the rest was not recorded)" if r.truncated else ""
                # One long word: folded at the width, never cut.
                yield Static(Text(visible(r.base_string) + cut, overflow="fold"),
                             id="record-base-string", markup=False)
                yield Label(plain(CHECK_TITLE), classes="section")
                yield Static(plain(NOT_CHECKED), id="record-finding", markup=False)
        yield FittingFooter()

    def action_back(self) -> None:
        self.dismiss(None)

    def action_copy_base_string(self) -> None:
        if not self.row.base_string:
            return
        self.app.copy_to_clipboard(self.row.base_string)
        self.notify("Copied the base string — your terminal must allow OSC 52.", markup=False)

    def action_check(self) -> None:
        if not self.row.base_string:
            return
        store, refusal_id = store_of(self), self.row.id
        finding = self.query_one("#record-finding", Static)
        finding.update(Text("Checking…"))
        run_job(self, lambda: services(store).diagnostics.check_refusal(refusal_id), self._checked,
                doing="Checking the request against the stored key", group="check",
                loading=finding, failed=self._check_failed)

    def _checked(self, report: Report) -> None:
        self._finding(describe_finding(report))

    def _finding(self, text: str) -> None:
        finding = self.query_one("#record-finding", Static)
        finding.update(plain(text))
        # under the base string: bring it up, at once (not an animation a key or a
        # reader of the screen could catch half way)
        self.call_after_refresh(finding.scroll_visible, animate=False)

    def _check_failed(self, exc: Exception) -> bool:
        """A known error (the consumer is gone, no key stored) is the finding, in words."""
        from tui_oauth.core.errors import TuiOAuthError
        from tui_oauth.tui.text import error_text

        if isinstance(exc, TuiOAuthError):
            self._finding(f"Could not check: {error_text(exc)}")
            return True
        return False
