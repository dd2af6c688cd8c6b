"""Service Providers tab: third parties whose resources we consume."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Label

from tui_oauth.tui.guards import ReadOnlyGuard
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.provider_actions import confirm_remove_provider, reveal_secret
from tui_oauth.tui.text import MASK, plain, plural
from tui_oauth.tui.widgets.filter_input import FilteredList, FilterInput
from tui_oauth.tui.widgets.virtual_table import Column, FuncSource, Row, VirtualTable

if TYPE_CHECKING:  # the screens a key opens are imported when it is pressed (see consumers)
    from tui_oauth.core.services.providers import ProviderSummary

COLUMNS = [
    Column("Name", min=10, max=40),
    Column("Consumer key", min=12, shorten="middle"),
    Column("Signature", drop=2),
    Column("Secret", drop=1),
    Column("Tokens", align="right", drop=3),
    Column("Request token URL", min=16, shorten="middle", drop=4),
]


class ProvidersTab(FilteredList, ReadOnlyGuard, Vertical):
    FILTER_ID = "providers-filter"
    TITLE = "Service Providers"
    CHANGES = frozenset({"add", "edit", "remove", "reveal"})
    BINDINGS = [
        Binding("enter", "open", "Open", id="providers.open",
                tooltip="Show the service provider"),
        Binding("a", "add", "Add", id="providers.add", tooltip="Add a service provider"),
        Binding("e", "edit", "Edit", id="providers.edit", tooltip="Edit the selected provider"),
        Binding("d", "remove", "Remove", id="providers.remove",
                tooltip="Remove the selected provider and the tokens we hold from it"),
        Binding("r", "reveal", "Reveal", id="providers.reveal",
                tooltip="Show the shared secret for a few seconds (recorded in the audit log)"),
        Binding("escape", "unfilter", "Clear filter", id="providers.unfilter",
                tooltip="Show the whole list again"),
        Binding("/", "filter", "Filter", id="providers.filter",
                tooltip="Filter by name, consumer key or description (Esc clears)"),
    ]

    def __init__(self) -> None:
        super().__init__(id="providers-tab")

    def compose(self) -> ComposeResult:
        # Nothing until the tab is first shown or its list is needed (show_content): the
        # first screen, where this tab is hidden, does without (benchmarks/startup.py).
        yield from ()

    def show_content(self) -> None:
        """Mount the filter, status line and list, once (in the DOM when this returns)."""
        if not self.children:
            self.mount_all(self._content())

    def _content(self) -> ComposeResult:
        yield FilterInput(placeholder="Filter providers: name, consumer key or description",
                          id="providers-filter")
        yield Label("", id="providers-status", classes="status", markup=False)
        yield VirtualTable(COLUMNS, id="providers-table", doing="Reading the service providers")

    @property
    def table(self) -> VirtualTable:
        self.show_content()
        return self.query_one("#providers-table", VirtualTable)

    @property
    def filter_input(self) -> FilterInput:
        self.show_content()
        return super().filter_input

    def source(self) -> FuncSource:
        service, text = store_of(self).providers, self.filter_text

        def window(start: int, size: int, total: int | None) -> list[Row]:
            return [Row(r.name, (r.name, r.consumer_key, r.signature_method,
                                 MASK if r.has_shared_secret else "none", f"{r.token_count:,}",
                                 r.request_token_url), r)
                    for r in service.window(text, start=start, size=size, total=total)]

        return FuncSource(lambda: service.count(text), window,
                          lambda name: service.position(name, text))

    def reload(self, select: str | None = None) -> None:
        self.table.load(self.source(), keep=select)

    def _status(self) -> None:
        table, text = self.table, self.filter_text.strip()
        key = table.current_key
        at = f"{table.cursor_row + 1:,}/{table.row_count:,} {key} · " if key else ""
        self.query_one("#providers-status", Label).update(plain(
            at + plural(table.row_count, "service provider")
            + (f" matching “{text}”" if text else "")
            + " · enter: open  r: reveal secret  /: filter", multiline=False))

    def selected(self) -> ProviderSummary | None:
        row = self.table.current_row
        return row.data if row is not None else None

    # Actions --------------------------------------------------------------

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        row = self.selected()
        if row is not None:
            from tui_oauth.tui.screens.provider_detail import ProviderDetailScreen

            self.app.push_screen(ProviderDetailScreen(row.name))  # see ConsumersTab.action_open

    def action_add(self) -> None:
        from tui_oauth.tui.screens.provider_form import ProviderFormScreen

        self.app.push_screen(ProviderFormScreen())

    def action_edit(self) -> None:
        from tui_oauth.tui.screens.provider_form import ProviderFormScreen

        row = self.selected()
        if row is None:
            return
        store = store_of(self)
        run_job(self, lambda: store.providers.get(row.name),
                lambda p: self.app.push_screen(ProviderFormScreen(p)),
                doing="Reading the provider", group="open", loading=self.table)

    def action_remove(self) -> None:
        row = self.selected()
        if row is not None:
            confirm_remove_provider(self, row.name, row.token_count)

    def action_reveal(self) -> None:
        row = self.selected()
        if row is not None:
            reveal_secret(self, row.name, row.has_shared_secret)
