"""One service provider: its fields, the secret masked, its URLs and what to watch for."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, Static

from tui_oauth.core.models import ServiceProvider
from tui_oauth.core.services.providers import provider_warnings
from tui_oauth.tui.guards import ReadOnlyGuard
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.provider_actions import confirm_remove_provider, reveal_secret
from tui_oauth.tui.screens.provider_form import ProviderFormScreen
from tui_oauth.tui.text import dash, field_rows, plain, when

MASK = "••••••••"


def describe_provider(p: ServiceProvider, tokens: int) -> str:
    rows = [
        ("Name", p.name), ("Description", dash(p.description)),
        ("Consumer key", p.consumer_key),
        ("Shared secret", f"{MASK}  (r reveals it for a few seconds)" if p.has_shared_secret
         else "none"),
        ("Signature", p.signature_method),
        ("Request token", p.request_token_url), ("Authorize", p.authorization_url),
        ("Access token", p.access_token_url),
        ("Held tokens", str(tokens)),
        ("Created", when(p.created_at)), ("Updated", when(p.updated_at)),
    ]
    text = field_rows(rows, 15)
    for w in provider_warnings(p):
        text += f"\n\nWarning: {w}"
    return text


class ProviderDetailScreen(ReadOnlyGuard, Screen[None]):
    CHANGES = frozenset({"edit", "remove", "reveal"})
    BINDINGS = [
        Binding("escape", "back", "Back", id="provider.back", tooltip="Back to the list"),
        Binding("e", "edit", "Edit", id="provider.edit", tooltip="Edit this provider"),
        Binding("d", "remove", "Remove", id="provider.remove",
                tooltip="Remove this provider and the tokens we hold from it"),
        Binding("r", "reveal", "Reveal secret", id="provider.reveal",
                tooltip="Show the shared secret for a few seconds (recorded in the audit log)"),
        Binding("ctrl+r", "refresh", "Refresh", id="provider.refresh", show=False,
                tooltip="Read the provider again"),
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.provider_name = name
        self.provider: ServiceProvider | None = None
        self.tokens = 0

    def compose(self) -> ComposeResult:
        yield Label(plain(f"Service provider {self.provider_name}", multiline=False),
                    id="detail-title")
        with VerticalScroll(id="detail-fields"):
            yield Static("Loading…", id="provider-fields", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        store, name = store_of(self), self.provider_name

        def work() -> tuple[ServiceProvider, int]:
            return store.providers.get(name), store.providers.token_count(name)

        run_job(self, work, self._show, doing="Reading the provider", group="detail",
                loading=self.query_one("#detail-fields"))

    def _show(self, found: tuple[ServiceProvider, int]) -> None:
        self.provider, self.tokens = found
        self.provider_name = self.provider.name
        self.query_one("#detail-title", Label).update(
            plain(f"Service provider {self.provider.name}", multiline=False))
        self.query_one("#provider-fields", Static).update(
            plain(describe_provider(self.provider, self.tokens)))

    def action_back(self) -> None:
        self.dismiss(None)

    def action_edit(self) -> None:
        if self.provider is not None:
            self.app.push_screen(ProviderFormScreen(self.provider), self._after_edit)

    def _after_edit(self, _: object) -> None:
        self.action_refresh()

    def action_remove(self) -> None:
        confirm_remove_provider(self, self.provider_name, self.tokens,
                                on_done=lambda: self.dismiss(None))

    def action_reveal(self) -> None:
        if self.provider is not None:
            reveal_secret(self, self.provider.name, self.provider.has_shared_secret)
