"""A shared secret shown on purpose, for a few seconds, then hidden again."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Button, Label, Static

from tui_oauth.tui.modals.base import Dialog, dialog_bindings, dialog_body, dialog_buttons
from tui_oauth.tui.text import plain

REVEAL_SECONDS = 10


class RevealSecretModal(Dialog[None]):
    """Every dialog key hides it: ``ctrl+s``/``enter`` (and ``r``), ``Esc``."""

    BINDINGS = [
        Binding("c", "copy", "Copy", id="reveal.copy",
                tooltip="Copy the secret to the clipboard (OSC 52, works over SSH)"),
        *dialog_bindings("reveal", "Hide", "Hide the secret now",
                         primary_keys="ctrl+s,enter,r", cancel="Hide",
                         cancel_tip="Hide the secret now"),
    ]
    PRIMARY_BUTTON = "hide"

    def __init__(self, provider: str, secret: str, seconds: int | None = None, *,
                 note: str = "This reveal is recorded in the audit log.") -> None:
        super().__init__()
        self.provider = provider
        self.secret = secret
        self.note = note
        self.remaining = REVEAL_SECONDS if seconds is None else seconds
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(plain(f"Shared secret of {self.provider}"), classes="dialog-title")
            with dialog_body():
                yield Static(plain(self.secret), id="secret-value")
                yield Static("", id="secret-countdown", classes="dialog-body")
                yield Static(plain(self.note), classes="field-hint")
            with dialog_buttons():
                yield Button("Hide", id="hide", variant="primary")

    def on_mount(self) -> None:
        self._tick_label()
        self._timer = self.set_interval(1, self._tick)

    def _tick_label(self) -> None:
        self.query_one("#secret-countdown", Static).update(
            plain(f"Hidden again in {self.remaining} s (c copies it; Esc hides it now)."))

    def _tick(self) -> None:
        self.remaining -= 1
        if self.remaining <= 0:
            self.action_close()
        else:
            self._tick_label()

    def action_copy(self) -> None:
        if self.secret:
            self.app.copy_to_clipboard(self.secret)
            self.notify("Copied — your terminal must allow OSC 52.", markup=False)

    def action_primary(self) -> None:
        self.action_close()

    def action_cancel(self) -> None:
        self.action_close()

    def action_close(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self.secret = ""
        self.dismiss(None)
