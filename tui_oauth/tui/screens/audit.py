"""The audit log: newest first, filtered in the database, one page at a time.

The log can hold millions of entries, so only one page (PAGE rows) is ever
read and put in the table; `n`/`p` page by id (keyset paging), never OFFSET.
"""

from __future__ import annotations

import json

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Label, Static

from tui_oauth.core.models import AuditEntry
from tui_oauth.core.registry import services
from tui_oauth.core.services.audit import AuditPage
from tui_oauth.core.text import visible
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.messages import StoreChanged
from tui_oauth.tui.styles import DETAIL
from tui_oauth.tui.text import dash, plain, plural, when
from tui_oauth.tui.widgets.filter_input import FilterInput, FilterLine
from tui_oauth.tui.widgets.footer import FittingFooter
from tui_oauth.tui.widgets.table import Table

PAGE = 100
# A filter searches this many entries a page at most (a filter that matches nothing read
# the whole log: 4.7 s at 1,000,000 entries); `n` searches the next as many.
SCAN = 50_000


def describe_entry(e: AuditEntry) -> str:
    """The entry for people; every stored field shown with ``visible`` (the actor and
    the address came from the environment of whoever made the change)."""
    lines = [f"#{e.id}  {when(e.at, seconds=True)} UTC  {visible(e.actor)}"
             + (f" from {visible(e.client_addr)}" if e.client_addr else ""),
             visible(f"{e.action} {e.target_type} {e.target}")]
    if e.detail:
        lines.append(visible(e.detail, multiline=True))
    for label, raw in (("before", e.before), ("after", e.after)):
        if raw:
            try:
                data = json.loads(raw)
                text = ", ".join(f"{k}={v!r}" for k, v in data.items())
            except (ValueError, AttributeError):
                text = raw
            lines.append(f"{label}: {visible(text)}")
    return "\n".join(lines)


class AuditScreen(FilterLine, Screen[None]):
    CSS_PATH = DETAIL
    IS_AUDIT = True  # what the app checks, without importing this module (the models)
    AUTO_FOCUS = "#audit-table"
    FILTER_ID = "audit-filter"
    BINDINGS = [
        Binding("escape", "back", "Back", id="audit.back", tooltip="Back to the tabs"),
        Binding("/", "filter", "Filter", id="audit.filter",
                tooltip="Filter by action, target, who or detail (Esc clears)"),
        Binding("n", "next_page", "Older", id="audit.older", tooltip="Next page (older)"),
        Binding("p", "previous_page", "Newer", id="audit.newer",
                tooltip="Previous page (newer)"),
        Binding("ctrl+r", "refresh", "Newest", id="audit.refresh",
                tooltip="Back to the newest entries"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.pages: list[int | None] = [None]
        self.next_before: int | None = None
        self.entries: dict[str, AuditEntry] = {}

    def compose(self) -> ComposeResult:
        yield Label("Audit log, newest first", id="detail-title")
        yield FilterInput(placeholder="Filter: action, target, who or detail", id="audit-filter")
        yield Label("", id="audit-status", classes="status", markup=False)
        yield Table(id="audit-table")
        with VerticalScroll(id="audit-detail"):
            yield Static("", id="audit-entry", markup=False)
        yield FittingFooter()

    def on_mount(self) -> None:
        table = self.query_one("#audit-table", Table)
        table.add_columns("When (UTC)", "Who", "Action", "Target", "Detail")
        table.focus()
        self.load()

    @property
    def table(self) -> Table:
        return self.query_one("#audit-table", Table)

    def load(self, *, quiet: bool = False) -> None:
        store, before, text = store_of(self), self.pages[-1], self.filter_text
        run_job(self, lambda: services(store).audit.list(limit=PAGE, before_id=before,
                                                         text=text or None,
                                                         scan=SCAN),
                self._show, doing="Reading the audit log", group="page",
                loading=None if quiet else self.query_one("#audit-table"))

    def on_store_changed(self, event: StoreChanged) -> None:
        """New entries appear on the first page, newest first; older pages stay put."""
        if self.pages == [None]:
            self.load(quiet=True)

    def _show(self, page: AuditPage) -> None:
        table = self.query_one("#audit-table", Table)
        keep = table.current_key
        table.clear()
        self.entries = {}
        for e in page.entries:
            key = str(e.id)
            self.entries[key] = e
            detail = (e.detail or "").replace("\n", " ")
            target = e.target if len(e.target) <= 32 else e.target[:31] + "…"
            table.add_row(when(e.at, seconds=True), e.actor, e.action, target,
                          detail[:60] + ("…" if len(detail) > 60 else ""), key=key)
        table.select_key(keep)
        self.next_before = page.next_before_id
        if self.is_current and self.app.focused is None:
            table.focus()  # focus was lost while the table was loading
        text = self.filter_text.strip()
        where = f" matching “{text}”" if text else ""
        nav = []
        if page.searched_to_id is not None:  # a bounded search: say so, offer more
            where += (f" among the newest {SCAN:,} entries" if len(self.pages) == 1
                      else f" among the next {SCAN:,} older entries")
        if page.next_before_id:
            nav.append("n: search older" if page.searched_to_id is not None else "n: older")
        if len(self.pages) > 1:
            nav.append("p: newer")
        self.query_one("#audit-status", Label).update(plain(
            f"Page {len(self.pages)}: {plural(len(page.entries), 'entry', 'entries')}"
            f"{where}" + (" · " + "  ".join(nav) if nav else "")))
        self._show_entry(table.current_key)

    def _show_entry(self, key: str | None) -> None:
        entry = self.entries.get(key or "")
        self.query_one("#audit-entry", Static).update(
            plain(describe_entry(entry)) if entry else "No entry.")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_entry(dash(event.row_key.value if event.row_key else None))

    def action_next_page(self) -> None:
        if self.next_before is not None:
            self.pages.append(self.next_before)
            self.load()

    def action_previous_page(self) -> None:
        if len(self.pages) > 1:
            self.pages.pop()
            self.load()

    def action_refresh(self) -> None:
        self.pages = [None]
        self.load()

    def filter_changed(self, text: str) -> None:
        self.action_refresh()  # a new filter starts at the newest entries

    def action_back(self) -> None:
        self.dismiss(None)
