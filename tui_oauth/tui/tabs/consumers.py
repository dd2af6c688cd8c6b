"""Consumers tab: who may consume our resources."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Label

from tui_oauth.core.services.consumers import ConsumerSummary
from tui_oauth.tui.consumer_actions import confirm_remove_consumer
from tui_oauth.tui.guards import ReadOnlyGuard
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.modals.add_route import AddRouteModal
from tui_oauth.tui.screens.consumer_by_url import ConsumerByUrlScreen
from tui_oauth.tui.screens.consumer_detail import ConsumerDetailScreen
from tui_oauth.tui.screens.consumer_form import ConsumerFormScreen
from tui_oauth.tui.text import day, plain, plural, yes_no
from tui_oauth.tui.widgets.filter_input import FilteredList, FilterInput
from tui_oauth.tui.widgets.table import Table

SORTS = [("key", "key"), ("name", "name"), ("signature_method", "signature"),
         ("created", "created")]


class ConsumersTab(FilteredList, ReadOnlyGuard, Vertical):
    FILTER_ID = "consumers-filter"
    TITLE = "Consumers"
    CHANGES = frozenset({"add", "edit", "remove"})
    BINDINGS = [
        Binding("enter", "open", "Open", id="consumers.open",
                tooltip="Show the consumer, its public key and its tokens"),
        Binding("a", "add", "Add", id="consumers.add",
                tooltip="Add a consumer, by URL or by hand"),
        Binding("e", "edit", "Edit", id="consumers.edit", tooltip="Edit the selected consumer"),
        Binding("d", "remove", "Remove", id="consumers.remove",
                tooltip="Remove the selected consumer and its tokens"),
        Binding("/", "filter", "Filter", id="consumers.filter",
                tooltip="Filter by key, name or description (Esc clears)"),
        Binding("s", "sort", "Sort", id="consumers.sort",
                tooltip="Sort by the next column: key, name, signature, created"),
        Binding("S", "reverse", "Reverse", id="consumers.reverse", show=False,
                tooltip="Reverse the sort order"),
    ]

    def __init__(self) -> None:
        super().__init__(id="consumers-tab")
        self.sort_index = 0
        self.descending = False
        self.rows: list[ConsumerSummary] = []

    def compose(self) -> ComposeResult:
        yield FilterInput(placeholder="Filter consumers: key, name or description",
                          id="consumers-filter")
        yield Label("", id="consumers-status", classes="status", markup=False)
        yield Table(id="consumers-table")

    def on_mount(self) -> None:
        self.query_one(Table).add_columns("Key", "Name", "Signature", "2LO", "Tokens", "Created")
        self.reload()

    @property
    def table(self) -> Table:
        return self.query_one("#consumers-table", Table)


    def reload(self, select: str | None = None) -> None:
        store, text = store_of(self), self.filter_text
        sort, _ = SORTS[self.sort_index]
        descending = self.descending
        run_job(self, lambda: store.consumers.list(text, sort=sort, descending=descending),
                lambda rows: self._show(rows, select), doing="Reading the consumers",
                group="list", loading=self.table)

    def _show(self, rows: list[ConsumerSummary], select: str | None) -> None:
        table = self.table
        keep = select or table.current_key
        table.clear()
        for r in rows:
            table.add_row(r.key, r.name, r.signature_method, yes_no(r.two_lo_allowed),
                          str(r.token_count), day(r.created_at), key=r.key)
        table.select_key(keep)
        if (self.screen.is_current and self.app.focused is None
                and getattr(self.screen, "active_tab", None) == "consumers"):
            table.focus()  # focus was lost while the table was loading
        self.rows = rows
        _, label = SORTS[self.sort_index]
        arrow = "↓" if self.descending else "↑"
        text = self.filter_text.strip()
        shown = plural(len(rows), "consumer") + (f" matching “{text}”" if text else "")
        self.query_one("#consumers-status", Label).update(
            plain(f"{shown} · sorted by {label} {arrow} · s: sort  /: filter  enter: open"))

    # Sort -------------------------------------------------------------------

    def action_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self.reload()

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self.reload()

    # Open, add, edit, remove ----------------------------------------------

    def selected(self) -> ConsumerSummary | None:
        key = self.table.current_key
        return next((r for r in self.rows if r.key == key), None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        row = self.selected()
        if row is not None:
            self.app.push_screen(ConsumerDetailScreen(row.key), lambda _: self.reload())

    def action_add(self) -> None:
        def chosen(route: str | None) -> None:
            if route == "url":
                self.app.push_screen(ConsumerByUrlScreen())
            elif route == "manual":
                self.app.push_screen(ConsumerFormScreen())

        self.app.push_screen(AddRouteModal(), chosen)

    def action_edit(self) -> None:
        row = self.selected()
        if row is None:
            return
        store = store_of(self)

        def opened(detail: object) -> None:
            from tui_oauth.core.services.consumers import ConsumerDetail

            assert isinstance(detail, ConsumerDetail)
            pem = detail.public_key.pem if detail.public_key else ""
            self.app.push_screen(ConsumerFormScreen(detail.consumer, pem))

        run_job(self, lambda: store.consumers.detail(row.key), opened,
                doing="Reading the consumer", group="open", loading=self.table)

    def action_remove(self) -> None:
        row = self.selected()
        if row is not None:
            confirm_remove_consumer(self, row.key, row.token_count)
