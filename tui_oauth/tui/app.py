"""The console's first screen: the three OAuth Administration tabs, read-only lists.

Editing from the console comes with the TUI issue; until then every change is
made with the CLI (`tui-oauth --help`).
"""

from __future__ import annotations

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from tui_oauth.core.errors import TuiOAuthError
from tui_oauth.core.store import Store


class OAuthAdminApp(App[None]):
    TITLE = "OAuth Administration"
    CSS = """
    #info-text { padding: 1 2; }
    .hint { color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("1", "show_tab('consumers')", "Consumers", id="tab.consumers"),
        Binding("2", "show_tab('info')", "Consumer Info", id="tab.info"),
        Binding("3", "show_tab('providers')", "Service Providers", id="tab.providers"),
    ]

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.sub_title = f"{store.display_url}" + ("  READ-ONLY" if store.read_only else "")

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="consumers"):
            with TabPane("Consumers", id="consumers"):
                yield DataTable(id="consumers-table", cursor_type="row")
            with TabPane("Consumer Info", id="info"):
                yield Static("Loading…", id="info-text")
            with TabPane("Service Providers", id="providers"):
                yield DataTable(id="providers-table", cursor_type="row")
        yield Static("Changes are made with the CLI for now: tui-oauth --help", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        consumers = self.query_one("#consumers-table", DataTable)
        consumers.add_columns("Key", "Name", "Signature", "2LO", "Tokens", "Created")
        for r in self.store.consumers.list():
            consumers.add_row(r.key, r.name, r.signature_method, "yes" if r.two_lo_allowed
                              else "no", str(r.token_count), r.created_at.strftime("%Y-%m-%d"))
        providers = self.query_one("#providers-table", DataTable)
        providers.add_columns("Name", "Consumer key", "Signature", "Request token URL")
        for p in self.store.providers.list():
            providers.add_row(p.name, p.consumer_key, p.signature_method, p.request_token_url)
        self.load_info()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def load_info(self) -> None:
        try:
            view = self.store.consumer_info.view()
            i, pk = view.info, view.public_key
            text = (f"Consumer key: {i.key}\nName: {i.name}\nDescription: {i.description or '-'}\n"
                    f"Callback URL: {i.callback_url or '-'}\n"
                    f"Public key: RSA {pk.bits} bits, {pk.fingerprint}\n\n{pk.pem}")
        except TuiOAuthError as exc:
            text = f"Cannot show the Consumer Info: {exc}"
        self.call_from_thread(self.query_one("#info-text", Static).update, text)

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab


def make_app(store: Store) -> OAuthAdminApp:
    return OAuthAdminApp(store)
