"""Yes or no, with No focused: enter on its own never destroys anything."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Button, Label, Static

from tui_oauth.tui.modals.base import Dialog, dialog_bindings, dialog_body, dialog_buttons
from tui_oauth.tui.text import plain


class ConfirmModal(Dialog[bool]):
    """``ctrl+s`` (or ``y``) answers yes, ``Esc`` (or ``n``) no; ``enter`` presses the
    focused button, No unless another was chosen."""

    CANCEL = False
    BINDINGS = [
        *dialog_bindings("confirm", "Yes", "Go ahead", primary_keys="ctrl+s,y",
                         cancel="No", cancel_keys="escape,n", cancel_id="confirm.no",
                         cancel_tip="Do nothing"),
    ]
    PRIMARY_BUTTON = "yes"

    def __init__(self, title: str, body: str, *, yes: str = "Yes") -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(plain(self.title_text), classes="dialog-title")
            with dialog_body():
                yield Static(plain(self.body), classes="dialog-body")
            with dialog_buttons():
                yield Button(plain(self.yes), id="yes", variant="error")
                yield Button("No", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_primary(self) -> None:
        self.dismiss(True)
