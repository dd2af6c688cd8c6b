"""Consumers tab: who may consume our resources."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Label

from tui_oauth.tui.consumer_actions import confirm_remove_consumer
from tui_oauth.tui.guards import ReadOnlyGuard
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.text import day, plain, plural, yes_no
from tui_oauth.tui.widgets.filter_input import FilteredList, FilterInput
from tui_oauth.tui.widgets.virtual_table import Column, FuncSource, Row, VirtualTable

if TYPE_CHECKING:
    from tui_oauth.core.services.consumers import ConsumerSummary

# The screens a key opens are imported when it is pressed: with them the services and
# the models (SQLAlchemy, SQLModel, cryptography: ~400 ms) would load before the first
# screen is painted.

COLUMNS = [
    Column("Key", min=12, shorten="middle"),
    Column("Name", min=8, max=40),
    Column("Signature", drop=2),
    Column("2LO", drop=1),
    Column("Tokens", align="right", drop=3),
    Column("Created", drop=4),
]
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
        Binding("escape", "unfilter", "Clear filter", id="consumers.unfilter",
                tooltip="Show the whole list again"),
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

    def compose(self) -> ComposeResult:
        yield FilterInput(placeholder="Filter consumers: key, name or description",
                          id="consumers-filter")
        yield Label("", id="consumers-status", classes="status", markup=False)
        yield VirtualTable(COLUMNS, id="consumers-table", doing="Reading the consumers")

    def on_mount(self) -> None:
        if getattr(self.app, "store_ready", True):
            self.reload()  # else when the store has opened (MainScreen.store_opened)

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#consumers-table", VirtualTable)

    def source(self) -> FuncSource:
        """The list as it is filtered and sorted now, read a window at a time."""
        service, text = store_of(self).consumers, self.filter_text
        sort, _ = SORTS[self.sort_index]
        descending = self.descending

        def window(start: int, size: int, total: int | None) -> list[Row]:
            rows = service.window(text, sort=sort, descending=descending, start=start,
                                  size=size, total=total)
            return [Row(r.key, (r.key, r.name, r.signature_method, yes_no(r.two_lo_allowed),
                                f"{r.token_count:,}", day(r.created_at)), r) for r in rows]

        return FuncSource(lambda: service.count(text), window,
                          lambda key: service.position(key, text, sort=sort,
                                                       descending=descending))

    def reload(self, select: str | None = None) -> None:
        """Read the list again (filter, sort or a change); the cursor stays on ``select``
        or on the row it was on."""
        self.table.load(self.source(), keep=select)

    def list_loaded(self) -> None:
        start_tabs = getattr(self.screen, "start_tabs", None)
        if start_tabs is not None:
            start_tabs()  # now the other tabs, which waited for this list

    def _status(self) -> None:
        table = self.table
        _, label = SORTS[self.sort_index]
        arrow = "↓" if self.descending else "↑"
        text = self.filter_text.strip()
        shown = plural(table.row_count, "consumer") + (f" matching “{text}”" if text else "")
        key = table.current_key
        at = f"{table.cursor_row + 1:,}/{table.row_count:,} {key} · " if key else ""
        self.query_one("#consumers-status", Label).update(plain(
            f"{at}{shown} · sorted by {label} {arrow} · s: sort  /: filter  enter: open",
            multiline=False))

    # Sort -------------------------------------------------------------------

    def action_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self.reload()

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self.reload()

    # Open, add, edit, remove ----------------------------------------------

    def selected(self) -> ConsumerSummary | None:
        row = self.table.current_row
        return row.data if row is not None else None

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        from tui_oauth.tui.screens.consumer_detail import ConsumerDetailScreen

        row = self.selected()
        if row is not None:
            # No reload on the way back: what the view changed is announced (saved,
            # removed, revoked), and the store watch brings the rest.
            self.app.push_screen(ConsumerDetailScreen(row.key))

    def action_add(self) -> None:
        from tui_oauth.tui.modals.add_route import AddRouteModal
        from tui_oauth.tui.screens.consumer_by_url import ConsumerByUrlScreen
        from tui_oauth.tui.screens.consumer_form import ConsumerFormScreen

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
            from tui_oauth.tui.screens.consumer_form import ConsumerFormScreen

            assert isinstance(detail, ConsumerDetail)
            pem = detail.public_key.pem if detail.public_key else ""
            self.app.push_screen(ConsumerFormScreen(detail.consumer, pem))

        run_job(self, lambda: store.consumers.detail(row.key), opened,
                doing="Reading the consumer", group="open", loading=self.table)

    def action_remove(self) -> None:
        row = self.selected()
        if row is not None:
            confirm_remove_consumer(self, row.key, row.token_count)
