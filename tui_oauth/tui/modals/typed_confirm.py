"""Destructive and far-reaching changes: say what goes, and have the operator type a word."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Button, Input, Label, Static

from tui_oauth.core.text import visible
from tui_oauth.tui.modals.base import Dialog, dialog_bindings, dialog_body, dialog_buttons
from tui_oauth.tui.text import plain

#: the empty field's placeholder: never the word to type (it would look typed)
TYPED_PLACEHOLDER = "type the word above"


class TypedConfirmModal(Dialog[bool]):
    """Dismisses True only when ``expected`` was typed exactly: as it is shown, so a
    key that holds control characters (shown escaped, e.g. ``\\x1b``) is typed the
    way it reads. ``ctrl+s`` and ``enter`` confirm only then; ``Esc`` cancels."""

    CANCEL = False
    BINDINGS = [
        *dialog_bindings("typed_confirm", "Confirm",
                         "Go ahead, once the word asked for is typed",
                         cancel_tip="Do nothing"),
    ]

    def __init__(self, title: str, body: str, expected: str, *, action: str = "Remove") -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.expected = visible(expected)
        self.action_label = action

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(plain(self.title_text), classes="dialog-title")
            with dialog_body():
                yield Static(plain(self.body), classes="dialog-body")
                yield Label(plain(f"Type {self.expected} to confirm:"),
                            classes="dialog-prompt")
                # Not the word itself: grey on a terminal without colour it reads as
                # typed already. The word is named in the prompt above.
                yield Input(id="typed", placeholder=TYPED_PLACEHOLDER)
                yield Static("", id="typed-error", classes="field-error", markup=False)
            with dialog_buttons():
                yield Button(plain(self.action_label), id="confirm", variant="error",
                             disabled=True)
                yield Button("Cancel", id="cancel", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#typed", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = event.value != self.expected

    def action_primary(self) -> None:
        if self.query_one("#typed", Input).value == self.expected:
            self.dismiss(True)
        else:
            self.query_one("#typed-error", Static).update(
                plain(f"That is not {self.expected}; nothing was changed. Esc cancels."))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm" and self.query_one("#typed", Input).value == self.expected:
            self.dismiss(True)
        else:
            self.dismiss(False)
