"""Consumers tab: who may consume our resources."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.binding import Binding

from tui_oauth.core.registry import services
from tui_oauth.tui.consumer_actions import confirm_remove_consumer
from tui_oauth.tui.jobs import store_of
from tui_oauth.tui.tabs.listing import ListingTab
from tui_oauth.tui.text import day, yes_no
from tui_oauth.tui.widgets.virtual_table import Column, FuncSource, Row

if TYPE_CHECKING:
    from tui_oauth.core.services.consumers import ConsumerDetail
    from tui_oauth.core.sqlite_reads import ConsumerSummary
    from tui_oauth.core.store import Store

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


class ConsumersTab(ListingTab):
    NAME = "consumers"
    NOUN = "consumer"
    TITLE = "Consumers"
    COLUMNS = COLUMNS
    PLACEHOLDER = "Filter consumers: key, name or description"
    DOING = "Reading the consumers"
    READING = "Reading the consumer"
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
        super().__init__()
        self.sort_index = 0
        self.descending = False

    def on_mount(self) -> None:
        if getattr(self.app, "store_ready", True):
            self.reload()  # else when the store has opened (MainScreen.store_opened)

    def source(self) -> FuncSource:
        service, text = services(store_of(self)).consumers, self.filter_text
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

    def list_loaded(self) -> None:
        start_tabs = getattr(self.screen, "start_tabs", None)
        if start_tabs is not None:
            start_tabs()  # now the other tabs, which waited for this list

    def status_hint(self) -> str:
        _, label = SORTS[self.sort_index]
        arrow = "↓" if self.descending else "↑"
        return f"sorted by {label} {arrow} · s: sort  /: filter  enter: open"

    # Sort -------------------------------------------------------------------

    def action_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self.reload()

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self.reload()

    # The selected consumer ------------------------------------------------

    def open_row(self, row: ConsumerSummary) -> None:
        from tui_oauth.tui.screens.consumer_detail import ConsumerDetailScreen

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

    def read_row(self, store: Store, row: ConsumerSummary) -> ConsumerDetail:
        return services(store).consumers.detail(row.key)

    def edit_row(self, record: ConsumerDetail) -> None:
        from tui_oauth.tui.screens.consumer_form import ConsumerFormScreen

        pem = record.public_key.pem if record.public_key else ""
        self.app.push_screen(ConsumerFormScreen(record.consumer, pem))

    def remove_row(self, row: ConsumerSummary) -> None:
        confirm_remove_consumer(self, row.key, row.token_count)
