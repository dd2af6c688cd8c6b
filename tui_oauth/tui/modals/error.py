"""An unexpected failure, in words: what was being done and what went wrong."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from tui_oauth.tui.text import plain


class ErrorModal(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,enter", "close", "Close", id="error.close", tooltip="Close"),
    ]

    def __init__(self, title: str, body: str) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -error"):
            yield Label(plain(self.title_text), classes="dialog-title")
            yield Static(plain(self.body), classes="dialog-body")
            yield Static("The details are in the log (verbose mode logs more).",
                         classes="field-hint")
            yield Button("Close", id="close", variant="primary")

    def on_button_pressed(self) -> None:
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
