"""An unexpected failure, in words: what was being done and what went wrong."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Button, Label, Static

from tui_oauth.tui.modals.base import Dialog, dialog_bindings, dialog_body, dialog_buttons
from tui_oauth.tui.text import plain


class ErrorModal(Dialog[None]):
    BINDINGS = [
        *dialog_bindings("error", "Close", "Close", primary_id="error.close",
                         cancel="Close", cancel_tip="Close", cancel_id="error.dismiss"),
    ]
    PRIMARY_BUTTON = "close"

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -error"):
            yield Label(plain(self.title_text), classes="dialog-title")
            with dialog_body():
                yield Static(plain(self.body), classes="dialog-body")
                yield Static("The details are in the log (verbose mode logs more).",
                             classes="field-hint")
            with dialog_buttons():
                yield Button("Close", id="close", variant="primary")

    def action_primary(self) -> None:
        self.dismiss(None)
