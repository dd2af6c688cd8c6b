"""The one-line header: title, which store is open, the keyring backend, READ-ONLY."""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.events import Resize
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

    def on_resize(self, event: Resize) -> None:
        self._fit()

    def _fit(self) -> None:
        """The keyring's label takes what the store's does not need (at least 30% of the
        line, as the stylesheet's default): a long backend name was cut beside free space.
        The store's label keeps the rest (at least its min-width)."""
        width = self.size.width
        if not width or not self.is_mounted:
            return
        others = 0
        for label in self.query(Label):
            if label.id != "header-keyring":
                # its text and its padding (the store's: as much as it would show)
                others += cell_len(str(label.render())) + 2
        room = max(width * 3 // 10, width - others)
        self.query_one("#header-keyring", Label).styles.max_width = room

    def _show_keyring(self, name: str) -> None:
        if " " not in name:  # a class path: the class name says enough
            name = name.rsplit(".", 1)[-1]
        self.keyring = f"keyring: {name}"

    def watch_keyring(self, value: str) -> None:
        if self.is_mounted:
            self.query_one("#header-keyring", Label).update(plain(value, multiline=False))
            self._fit()
