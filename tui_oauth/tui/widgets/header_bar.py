"""The one-line header: title, which store is open, the keyring backend, READ-ONLY."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Label

from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.text import plain


class HeaderBar(Horizontal):
    keyring: reactive[str] = reactive("keyring: …")

    def compose(self) -> ComposeResult:
        store = store_of(self)
        yield Label("OAuth Administration", id="header-title")
        yield Label(plain(f"store: {store.display_url}", multiline=False), id="header-store")
        yield Label(plain(self.keyring, multiline=False), id="header-keyring")
        if store.read_only:
            yield Label(" READ-ONLY ", id="header-readonly")

    def on_mount(self) -> None:
        store = store_of(self)
        # Resolving the backend may talk to the keyring: never on the UI thread.
        run_job(self, lambda: store.secrets.backend_name, self._show_keyring,
                doing="Checking the keyring", group="keyring")

    def _show_keyring(self, name: str) -> None:
        if " " not in name:  # a class path: the class name says enough
            name = name.rsplit(".", 1)[-1]
        self.keyring = f"keyring: {name}"

    def watch_keyring(self, value: str) -> None:
        if self.is_mounted:
            self.query_one("#header-keyring", Label).update(plain(value, multiline=False))
