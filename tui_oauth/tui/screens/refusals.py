"""Refused requests, store-wide (or one consumer's): newest first, filtered in the database.

The log is bounded (``refusal_rows_per_consumer`` rows per consumer, one bucket for the
unknown keys), yet it can hold many thousands of rows: only the newest ``LIMIT`` rows
matching the filter are read.  ``enter`` opens the whole record
(:mod:`tui_oauth.tui.screens.refusal_record`).  Everything in a row came from a
client over the network: it is shown as text, never markup, with control characters
escaped (``Table.add_row``, ``plain``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import DataTable, Label, Static

from tui_oauth.core.provider.problems import duration
from tui_oauth.core.registry import services
from tui_oauth.core.text import visible
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.messages import StoreChanged
from tui_oauth.tui.styles import REFUSALS
from tui_oauth.tui.text import dash, plain, plural, when
from tui_oauth.tui.widgets.filter_input import FilterInput, FilterLine
from tui_oauth.tui.widgets.footer import FittingFooter
from tui_oauth.tui.widgets.table import Table
from tui_oauth.tui.widgets.virtual_table import CURSOR, shorten

if TYPE_CHECKING:
    from tui_oauth.core.services.refusals import RefusalRow

LIMIT = 500  # rows read at most; a filter narrows in the database


def clock_words(offset: int) -> str:
    """``7 min 12 s behind ours``, ``3 s ahead of ours``, ``in step with ours``
    (``offset``: their clock minus ours, seconds)."""
    if offset == 0:
        return "in step with ours"
    return f"{duration(offset)} {'behind' if offset < 0 else 'ahead of'} ours"


def clock_text(offset: int, samples: int) -> str:
    """A consumer's clock against ours: ``clock 7 min 12 s behind ours, median of 40
    requests``."""
    return f"clock {clock_words(offset)}, median of {plural(samples, 'request')}"


def shown_text(value: str) -> str:
    """One value from outside on one line, every hidden character written out."""
    return visible(value)


def consumer_label(row: RefusalRow) -> str:
    """The key as sent (``(none)`` when absent)."""
    return row.consumer_key or "(no key)"


def short_advice(advice: str, width: int) -> str:
    """The advice's first sentence, cut to ``width`` cells."""
    first = advice.split(". ")[0].split("; ")[0].rstrip(".")
    return shorten(first.replace("\n", " "), width)


_URL = re.compile(r"https?://[^\s;,)]+")


def compact_advice(row: RefusalRow, width: int) -> str:
    """One line (a consumer's recent refusals, 80 columns): not the advice's opening
    words but the fragment that says what differs, the URL the consumer signed above
    all; the record (enter) has the whole advice.  ``signed http://127.0.0.1:8080/re…``,
    ``clock 7 min 12 s behind ours``, ``another key or secret``."""
    code, _, words = (getattr(row, "finding", None) or "").partition(": ")
    url = _URL.search(words)
    text = ""
    if row.problem == "signature_invalid":
        if code in ("internal_url", "scheme") and url:
            text = f"signed {url.group(0)}"
        elif code == "none":
            text = "another key or secret (no usual mistake)"
        elif code and words:
            text = words.split(". ")[0].split("; ")[0].rstrip(".")
        else:
            others = [u for u in (row.seen_url, getattr(row, "listen_url", ""))
                      if u and u != row.url]
            text = (f"may have signed {others[0]}" if others
                    else "not diagnosed (enter, then t checks it)")
    elif row.problem == "timestamp_refused" and row.offset is not None:
        text = f"clock {clock_words(row.offset)}"
    if not text:
        return short_advice(row.advice, width)
    return shorten(visible(text), width)  # a URL's scheme, host and port first


def describe_briefly(row: RefusalRow) -> str:
    """The selected row, under the list: who, what, from where, and the advice."""
    key = consumer_label(row) + ("" if row.known or not row.consumer_key
                                 else " (no such consumer)")
    lines = [f"#{row.id}  {when(row.at, seconds=True)} UTC  {key}  {row.problem}",
             f"{row.method} {row.url}  from {dash(row.client_addr)}"
             + (f"  {row.signature_method}" if row.signature_method else ""),
             row.advice]
    return "\n".join(lines)


class RefusalsScreen(FilterLine, Screen[None]):
    CSS_PATH = REFUSALS
    IS_REFUSALS = True  # what the app checks, without importing this module
    HELP_TITLE = "Refusals"
    AUTO_FOCUS = "#refusals-table"
    FILTER_ID = "refusals-filter"
    BINDINGS = [
        Binding("escape", "back", "Back", id="refusals.back",
                tooltip="Clear the filter; without one, back to where you were"),
        Binding("enter", "open", "Open", id="refusals.open",
                tooltip="The whole record: every field, the advice and the base string"),
        Binding("/", "filter", "Filter", id="refusals.filter",
                tooltip="Filter by consumer key, problem, URL or client address (Esc clears)"),
        Binding("ctrl+r", "refresh", "Refresh", id="refusals.refresh", show=False,
                tooltip="Read the refusals again"),
    ]

    def __init__(self, consumer: str | None = None) -> None:
        super().__init__()
        #: one consumer's refusals (from its view), or None for every consumer's
        self.consumer = consumer
        self.rows: dict[str, RefusalRow] = {}
        self._shown: list[RefusalRow] = []

    def compose(self) -> ComposeResult:
        title = (f"Refusals of {self.consumer}, newest first" if self.consumer is not None
                 else "Refused requests, newest first (every consumer)")
        yield Label(plain(title, multiline=False), id="detail-title")
        yield FilterInput(placeholder="Filter: consumer key, problem, URL or client address",
                          id="refusals-filter")
        yield Label("Reading…", id="refusals-status", classes="status", markup=False)
        yield Table(id="refusals-table")
        with VerticalScroll(id="refusals-detail"):
            yield Static("", id="refusals-brief", markup=False)
        yield FittingFooter()

    def on_mount(self) -> None:
        self.query_one("#refusals-table", Table).focus()
        self.load()

    @property
    def table(self) -> Table:
        return self.query_one("#refusals-table", Table)

    def load(self, *, quiet: bool = False) -> None:
        store, consumer, text = store_of(self), self.consumer, self.filter_text.strip()
        run_job(self, lambda: services(store).refusals.list(consumer=consumer, text=text or None,
                                                            limit=LIMIT),
                self._show, doing="Reading the refusals", group="list",
                loading=None if quiet else self.table)

    def on_store_changed(self, event: StoreChanged) -> None:
        self.load(quiet=True)

    def _show(self, rows: list[RefusalRow]) -> None:
        self._shown = rows
        self._fill()
        text = self.filter_text.strip()
        where = f" matching “{text}”" if text else ""
        more = f" (the newest {LIMIT}: / narrows)" if len(rows) >= LIMIT else ""
        status = (f"{plural(len(rows), 'refusal')}{where}{more}" if rows
                  else f"No refusal{where} in the log.")
        self.query_one("#refusals-status", Label).update(plain(status, multiline=False))
        if self.is_current and self.app.focused is None:
            self.table.focus()  # focus was lost while the table was loading

    def _fill(self) -> None:
        """The rows, cut to the width: under 120 columns the client address gives way
        (it shows under the list), under 100 the date loses its year."""
        table, rows = self.table, self._shown
        keep = table.current_key
        width = self.size.width or self.app.size.width
        wide, widest = width >= 100, width >= 120
        # Every value as it will show (escapes written out), then cut to its column.
        shown = [(shown_text(consumer_label(r)), shown_text(r.problem),
                  shown_text(f"{r.method} {r.url}"), shown_text(dash(r.client_addr)))
                 for r in rows]
        when_w = 19 if wide else 14
        problem_w = min(max((cell_len(p) for _, p, _, _ in shown), default=7), 20)
        client_w = min(max((cell_len(c) for *_, c in shown), default=6), 17) if widest else 0
        columns = ["When (UTC)", "Consumer key", "Problem", "Request"]
        if widest:
            columns.append("Client")
        # The cells' padding (each column's and the row label's: the cursor mark), and
        # a vertical scroll bar. Left out, the last column (Client) was cut.
        pad = 2 * table.cell_padding
        chrome = (pad * len(columns) + cell_len(CURSOR) + pad
                  + table.styles.scrollbar_size_vertical)
        rest = width - chrome - when_w - problem_w - client_w
        key_w = max(10, min(max((cell_len(k) for k, *_ in shown), default=12), rest * 2 // 5))
        request_w = max(12, rest - key_w)
        table.clear(columns=True)
        table.add_columns(*columns)
        self.rows = {}
        for r, (key_text, problem, request, client) in zip(rows, shown, strict=True):
            key = str(r.id)
            self.rows[key] = r
            cells = [when(r.at, seconds=True) if wide else r.at.strftime("%m-%d %H:%M:%S"),
                     shorten(key_text, key_w, "middle"), shorten(problem, problem_w),
                     shorten(request, request_w, "middle")]
            if widest:
                cells.append(shorten(client, client_w))
            table.add_row(*cells, key=key)
        table.select_key(keep)
        self._show_brief(table.current_key)

    def on_resize(self, event: Resize) -> None:
        if self._shown:
            self._fill()

    def _show_brief(self, key: str | None) -> None:
        row = self.rows.get(key or "")
        self.query_one("#refusals-brief", Static).update(
            plain(describe_briefly(row)) if row else "")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_brief(event.row_key.value if event.row_key else None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """A click on the selected row opens it, as enter does."""
        self.action_open()

    def action_open(self) -> None:
        row = self.rows.get(self.table.current_key or "")
        if row is None:
            self.notify("No refusal selected.", severity="warning", markup=False)
            return
        from tui_oauth.tui.screens.refusal_record import RefusalRecordScreen

        self.app.push_screen(RefusalRecordScreen(row))

    def action_refresh(self) -> None:
        self.load()

    def filter_changed(self, text: str) -> None:
        self.load()

    def action_back(self) -> None:
        """Esc: clear the filter first (as in the lists of the tabs), then leave."""
        box = self.filter_input
        if box.value:
            box.action_clear_filter()
            return
        box.close()
        self.dismiss(None)

