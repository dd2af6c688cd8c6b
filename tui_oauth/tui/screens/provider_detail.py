"""One service provider: its settings, the tokens we hold from it, and using it.

Three panes: **Provider** (the settings, the secret masked, and the held tokens),
**Test** (``t``: each check shown as it comes), **Request** (``u``: a signed call
with the selected held token).  ``c`` connects (a dialog: the authorization URL,
the verifier, the exchange), ``f`` forgets the selected held token.  Every call
runs in a worker; every failure is said in words on the screen.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Label, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from tui_oauth.core.models import ServiceProvider
from tui_oauth.core.registry import services
from tui_oauth.core.services.connect import HeldTokenInfo
from tui_oauth.core.services.providers import provider_warnings
from tui_oauth.tui.guards import ReadOnlyGuard
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.messages import StoreChanged
from tui_oauth.tui.modals.confirm import ConfirmModal
from tui_oauth.tui.modals.connect import ConnectModal
from tui_oauth.tui.provider_actions import confirm_remove_provider, reveal_secret
from tui_oauth.tui.screens.provider_form import ProviderFormScreen
from tui_oauth.tui.styles import DETAIL, sheets
from tui_oauth.tui.text import MASK, dash, day, error_text, field_rows, plain, plural, when, yes_no
from tui_oauth.tui.widgets.check_list import CheckList
from tui_oauth.tui.widgets.footer import FittingFooter
from tui_oauth.tui.widgets.request_pane import RequestPane
from tui_oauth.tui.widgets.table import Table

PANES = ("overview", "test", "request")
NO_USER = "\x00"  # the row key of a token held for no named local user


def describe_provider(p: ServiceProvider, tokens: int) -> str:
    rows = [
        ("Name", p.name), ("Description", dash(p.description)),
        ("Consumer key", p.consumer_key),
        ("Shared secret", f"{MASK}  (r reveals it for a few seconds)" if p.has_shared_secret
         else "none"),
        ("Signature", p.signature_method),
        ("Request token", p.request_token_url), ("Authorize", p.authorization_url),
        ("Access token", p.access_token_url),
        ("Private addr.", yes_no(p.allow_private)),
        ("Held tokens", str(tokens)),
        ("Created", when(p.created_at)), ("Updated", when(p.updated_at)),
    ]
    text = field_rows(rows, 15)
    for w in provider_warnings(p):
        text += f"\n\nWarning: {w}"
    return text


class ProviderDetailScreen(ReadOnlyGuard, Screen[None]):
    CSS_PATH = [*DETAIL, *sheets("screens/provider_detail.tcss", "widgets/request_pane.tcss")]
    HELP_TITLE = "Service provider"
    AUTO_FOCUS = "#held-tokens"
    CHANGES = frozenset({"edit", "remove", "reveal", "connect", "forget"})
    #: At 80 columns its own keys (test, connect, forget, request, edit, remove) keep
    #: the footer before the app's l and ! (widgets/footer.py).
    FOOTER_SPARES = ("refusals", "audit")
    BINDINGS = [
        Binding("escape", "back", "Back", id="provider.back", tooltip="Back to the list"),
        Binding("t", "test", "Test", id="provider.test",
                tooltip="Test the connection: URLs, clock, a request token (no approval)"),
        Binding("c", "connect", "Connect", id="provider.connect",
                tooltip="Get a token: approve in a browser, type the verifier"),
        Binding("f", "forget", "Forget", id="provider.forget",
                tooltip="Forget the selected held token (asks first)"),
        Binding("u", "request", "Request", id="provider.request",
                tooltip="Call the provider with the selected held token"),
        Binding("e", "edit", "Edit", id="provider.edit", tooltip="Edit this provider"),
        Binding("d", "remove", "Remove", id="provider.remove",
                tooltip="Remove this provider and the tokens we hold from it"),
        Binding("r", "reveal", "Reveal secret", id="provider.reveal",
                tooltip="Show the shared secret for a few seconds (recorded in the audit log)"),
        Binding("]", "next_pane", "Next pane", id="provider.next_pane", show=False,
                tooltip="Next pane: Provider, Test, Request"),
        Binding("[", "previous_pane", "Previous pane", id="provider.previous_pane",
                show=False, tooltip="Previous pane: Provider, Test, Request"),
        Binding("ctrl+r", "refresh", "Refresh", id="provider.refresh", show=False,
                tooltip="Read the provider and its held tokens again"),
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.provider_name = name
        self.provider: ServiceProvider | None = None
        self.tokens = 0
        self.held: dict[str, HeldTokenInfo] = {}

    def compose(self) -> ComposeResult:
        yield Label(plain(f"Service provider {self.provider_name}", multiline=False),
                    id="detail-title")
        with TabbedContent(initial="overview", id="provider-panes"):
            with TabPane("Provider", id="overview"):
                with VerticalScroll(id="detail-fields"):
                    yield Static("Loading…", id="provider-fields", markup=False)
                yield Label("Held tokens: reading…", id="tokens-title", markup=False)
                yield Table(id="held-tokens")
            with TabPane("Test (t)", id="test"):
                yield CheckList(id="checks")
            with TabPane("Request (u)", id="request"):
                yield RequestPane(self.provider_name, id="request-pane")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.query_one("#held-tokens", Table).add_columns(
            "Local user", "Issued", "Expires", "Renews", "Last used", "Approval until")
        self.action_refresh()

    # Loading -----------------------------------------------------------------

    def action_refresh(self, quiet: bool = False) -> None:
        store, name = store_of(self), self.provider_name

        def work() -> tuple[ServiceProvider, int]:
            return services(store).providers.get(name), services(store).providers.token_count(name)

        run_job(self, work, self._show, doing="Reading the provider", group="detail",
                loading=None if quiet else self.query_one("#detail-fields"))
        self._load_tokens()

    def on_store_changed(self, event: StoreChanged) -> None:
        """Changed elsewhere: read the provider and the tokens we hold again, quietly."""
        self.action_refresh(quiet=True)

    def _show(self, found: tuple[ServiceProvider, int]) -> None:
        self.provider, self.tokens = found
        self.provider_name = self.provider.name
        self.query_one(RequestPane).provider = self.provider.name
        self.query_one("#detail-title", Label).update(
            plain(f"Service provider {self.provider.name}", multiline=False))
        self.query_one("#provider-fields", Static).update(
            plain(describe_provider(self.provider, self.tokens)))

    def _load_tokens(self) -> None:
        store, name = store_of(self), self.provider_name
        run_job(self, lambda: services(store).consumer_side.tokens(name), self._show_tokens,
                doing="Reading the held tokens", group="tokens", failed=self._tokens_failed)

    def _tokens_failed(self, exc: Exception) -> bool:
        self.query_one("#tokens-title", Label).update(
            plain(f"Held tokens: cannot read them: {error_text(exc)}"))
        return True

    def _show_tokens(self, tokens: list[HeldTokenInfo]) -> None:
        table = self.query_one("#held-tokens", Table)
        keep = table.current_key
        table.clear()
        self.held = {}
        for t in tokens:
            key = NO_USER if t.user is None else t.user
            self.held[key] = t
            table.add_row(dash(t.user), day(t.issued_at), when(t.expires_at),
                          yes_no(t.renewable), when(t.last_used_at),
                          day(t.authorization_expires_at), key=key)
        table.select_key(keep)
        self.tokens = len(tokens)
        self.query_one("#tokens-title", Label).update(plain(
            f"Held tokens: {plural(len(tokens), 'token')} · c: connect · f: forget the "
            "selected · u: call with it" if tokens else
            "Held tokens: none yet · c connects (approve in a browser, type the verifier)"))
        self._selected_user_changed()

    @property
    def selected_token(self) -> HeldTokenInfo | None:
        key = self.query_one("#held-tokens", Table).current_key
        return None if key is None else self.held.get(key)

    def _selected_user_changed(self) -> None:
        token = self.selected_token
        self.query_one(RequestPane).set_local_user(token.user if token else None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "held-tokens":
            self._selected_user_changed()

    # Panes -------------------------------------------------------------------

    @property
    def active_pane(self) -> str:
        return self.query_one("#provider-panes", TabbedContent).active

    def show_pane(self, pane: str) -> None:
        self.query_one("#provider-panes", TabbedContent).active = pane
        self._focus_pane(pane)

    def _focus_pane(self, pane: str) -> None:
        if pane == "overview":
            self.query_one("#held-tokens", Table).focus()
        elif pane == "test":
            self.query_one("#checks", CheckList).focus()
        else:
            self.query_one(RequestPane).focus_url()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.tabbed_content.id == "provider-panes" and event.pane.id:
            self.call_after_refresh(self._focus_pane, event.pane.id)

    def action_next_pane(self) -> None:
        self.show_pane(PANES[(PANES.index(self.active_pane) + 1) % len(PANES)])

    def action_previous_pane(self) -> None:
        self.show_pane(PANES[(PANES.index(self.active_pane) - 1) % len(PANES)])

    def action_request(self) -> None:
        self.show_pane("request")

    # Test connection ---------------------------------------------------------

    def action_test(self) -> None:
        self.show_pane("test")
        checks = self.query_one("#checks", CheckList)
        checks.start(self.provider_name)
        store, name, app = store_of(self), self.provider_name, self.app

        def post(fn: Callable[..., Any], *args: Any) -> None:
            with suppress(RuntimeError):  # the app is closing
                app.call_from_thread(fn, *args)

        def body() -> None:
            worker = get_current_worker()
            try:
                for result in services(store).consumer_side.test(name):
                    if worker.is_cancelled:
                        return
                    post(checks.add, result)
            except Exception as exc:  # said in the pane, in words
                if not worker.is_cancelled:
                    post(checks.fail, exc)
                return
            if not worker.is_cancelled:
                post(checks.finish)

        self.run_worker(body, name="Testing the connection", group="test", thread=True,
                        exclusive=True, exit_on_error=False)

    # Connect and forget ------------------------------------------------------

    def action_connect(self) -> None:
        token = self.selected_token
        self.app.push_screen(ConnectModal(self.provider_name, token.user if token else None),
                             self._connected)

    def _connected(self, info: HeldTokenInfo | None) -> None:
        if info is None:
            return
        self.notify(f"Connected to {self.provider_name}: a token is held for local user "
                    f"{info.user}.", markup=False)
        self.show_pane("overview")
        self._load_tokens()
        self.call_after_refresh(self.query_one("#held-tokens", Table).select_key,
                                NO_USER if info.user is None else info.user)

    def action_forget(self) -> None:
        token = self.selected_token
        if token is None:
            self.notify("No held token selected (the Provider pane lists them).",
                        severity="warning", markup=False)
            return
        if token.user is None and len(self.held) > 1:
            self.notify("This token is held for no named local user, and the store can "
                        "only forget such a token together with all others: remove and "
                        "re-add the provider, or use `tui-oauth providers forget`.",
                        severity="warning", markup=False)
            return
        store, name, user = store_of(self), self.provider_name, token.user
        who = f"local user {user}" if user is not None else "no named local user"

        def forgotten(n: int) -> None:
            self.notify(f"Forgot {plural(n, 'held token')} from {name} ({who}).",
                        markup=False)
            self.action_refresh()

        def answered(yes: bool | None) -> None:
            if yes:
                run_job(self, lambda: services(store).consumer_side.forget(name, user), forgotten,
                        doing="Forgetting the held token", group="forget")

        self.app.push_screen(ConfirmModal(
            "Forget this held token?",
            f"The access token held from {name} for {who} is deleted from this store; "
            "calls for that user need a new connect (c). The provider is not told: revoke "
            "it there too if it must stop working.", yes="Forget"), answered)

    def on_request_pane_called(self, event: RequestPane.Called) -> None:
        self._load_tokens()  # last used, or a renewed token

    # Settings ----------------------------------------------------------------

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
