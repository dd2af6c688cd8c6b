"""Service Providers tab: third parties whose resources we consume."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Label

from tui_oauth.core.services.providers import ProviderSummary
from tui_oauth.tui.guards import ReadOnlyGuard
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.provider_actions import confirm_remove_provider, reveal_secret
from tui_oauth.tui.screens.provider_detail import MASK, ProviderDetailScreen
from tui_oauth.tui.screens.provider_form import ProviderFormScreen
from tui_oauth.tui.text import plain, plural
from tui_oauth.tui.widgets.filter_input import FilteredList, FilterInput
from tui_oauth.tui.widgets.table import Table


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
        Binding("/", "filter", "Filter", id="providers.filter",
                tooltip="Filter by name, consumer key or description (Esc clears)"),
    ]

    def __init__(self) -> None:
        super().__init__(id="providers-tab")
        self.rows: list[ProviderSummary] = []

    def compose(self) -> ComposeResult:
        yield FilterInput(placeholder="Filter providers: name, consumer key or description",
                          id="providers-filter")
        yield Label("", id="providers-status", classes="status", markup=False)
        yield Table(id="providers-table")

    def on_mount(self) -> None:
        self.table.add_columns("Name", "Consumer key", "Signature", "Secret", "Tokens",
                               "Request token URL")
        self.reload()

    @property
    def table(self) -> Table:
        return self.query_one("#providers-table", Table)


    def reload(self, select: str | None = None) -> None:
        store, text = store_of(self), self.filter_text
        run_job(self, lambda: store.providers.list(text), lambda rows: self._show(rows, select),
                doing="Reading the service providers", group="list", loading=self.table)

    def _show(self, rows: list[ProviderSummary], select: str | None) -> None:
        table = self.table
        keep = select or table.current_key
        table.clear()
        for r in rows:
            table.add_row(r.name, r.consumer_key, r.signature_method,
                          MASK if r.has_shared_secret else "none", str(r.token_count),
                          r.request_token_url, key=r.name)
        table.select_key(keep)
        if (self.screen.is_current and self.app.focused is None
                and getattr(self.screen, "active_tab", None) == "providers"):
            table.focus()  # focus was lost while the table was loading
        self.rows = rows
        text = self.filter_text.strip()
        self.query_one("#providers-status", Label).update(plain(
            plural(len(rows), "service provider") + (f" matching “{text}”" if text else "")
            + " · enter: open  r: reveal secret  /: filter"))

    def selected(self) -> ProviderSummary | None:
        key = self.table.current_key
        return next((r for r in self.rows if r.name == key), None)

    # Actions --------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        row = self.selected()
        if row is not None:
            self.app.push_screen(ProviderDetailScreen(row.name), lambda _: self.reload())

    def action_add(self) -> None:
        self.app.push_screen(ProviderFormScreen())

    def action_edit(self) -> None:
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
