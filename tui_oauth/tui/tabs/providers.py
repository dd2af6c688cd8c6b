"""Service Providers tab: third parties whose resources we consume."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.binding import Binding

from tui_oauth.core.registry import services
from tui_oauth.tui.jobs import store_of
from tui_oauth.tui.provider_actions import confirm_remove_provider, reveal_secret
from tui_oauth.tui.tabs.listing import LazyListingTab
from tui_oauth.tui.text import MASK
from tui_oauth.tui.widgets.virtual_table import Column, FuncSource, Row

if TYPE_CHECKING:  # the screens a key opens are imported when it is pressed (see consumers)
    from tui_oauth.core.models import ServiceProvider
    from tui_oauth.core.services.providers import ProviderSummary
    from tui_oauth.core.store import Store

COLUMNS = [
    Column("Name", min=10, max=40),
    Column("Consumer key", min=12, shorten="middle"),
    Column("Signature", drop=2),
    Column("Secret", drop=1),
    Column("Tokens", align="right", drop=3),
    Column("Request token URL", min=16, shorten="middle", drop=4),
]


class ProvidersTab(LazyListingTab):
    """Mounted when first shown or its list is needed (a change read from the store): the
    first screen, where this tab is hidden, does without (benchmarks/startup.py)."""

    NAME = "providers"
    NOUN = "service provider"
    TITLE = "Service Providers"
    COLUMNS = COLUMNS
    PLACEHOLDER = "Filter providers: name, consumer key or description"
    DOING = "Reading the service providers"
    READING = "Reading the provider"
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

    def source(self) -> FuncSource:
        service, text = services(store_of(self)).providers, self.filter_text

        def window(start: int, size: int, total: int | None) -> list[Row]:
            return [Row(r.name, (r.name, r.consumer_key, r.signature_method,
                                 MASK if r.has_shared_secret else "none", f"{r.token_count:,}",
                                 r.request_token_url), r)
                    for r in service.window(text, start=start, size=size, total=total)]

        return FuncSource(lambda: service.count(text), window,
                          lambda name: service.position(name, text))

    def status_hint(self) -> str:
        return "enter: open  r: reveal secret  /: filter"

    # The selected provider ------------------------------------------------

    def open_row(self, row: ProviderSummary) -> None:
        from tui_oauth.tui.screens.provider_detail import ProviderDetailScreen

        self.app.push_screen(ProviderDetailScreen(row.name))

    def action_add(self) -> None:
        from tui_oauth.tui.screens.provider_form import ProviderFormScreen

        self.app.push_screen(ProviderFormScreen())

    def read_row(self, store: Store, row: ProviderSummary) -> ServiceProvider:
        return services(store).providers.get(row.name)

    def edit_row(self, record: ServiceProvider) -> None:
        from tui_oauth.tui.screens.provider_form import ProviderFormScreen

        self.app.push_screen(ProviderFormScreen(record))

    def remove_row(self, row: ProviderSummary) -> None:
        confirm_remove_provider(self, row.name, row.token_count)

    def action_reveal(self) -> None:
        row = self.selected()
        if row is not None:
            reveal_secret(self, row.name, row.has_shared_secret)
