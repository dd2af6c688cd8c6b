"""Rotating a consumer's shared secret: a new one is generated and shown once; the old
one keeps working for the overlap the admin chooses, so the consumer can switch
without an outage."""

from __future__ import annotations

from datetime import timedelta

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Button, Input, Label, Static

from tui_oauth.core.timeutil import parse_duration
from tui_oauth.tui.modals.base import Dialog, dialog_bindings, dialog_body, dialog_buttons
from tui_oauth.tui.text import plain
from tui_oauth.tui.widgets.field import Field

DEFAULT_OVERLAP = "24h"


class RotateSecretModal(Dialog[timedelta | None]):
    """``ctrl+s``/``enter`` rotates with the overlap typed; ``Esc`` does nothing."""

    BINDINGS = [*dialog_bindings("rotate", "Rotate", "Generate a new shared secret")]
    PRIMARY_BUTTON = "rotate"

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(plain(f"Rotate the shared secret of {self.key}?"),
                        classes="dialog-title")
            with dialog_body():
                yield Static("A new shared secret is generated and shown once: give it to "
                             "the consumer's administrator. The old one keeps working for the "
                             "overlap below (0: it stops at once), then it is forgotten.",
                             classes="dialog-body")
                yield Field("overlap", "Overlap", Input(DEFAULT_OVERLAP, id="overlap"),
                            hint="e.g. 24h, 30m, 7d, 0 (at most 90 days)")
            with dialog_buttons():
                yield Button("Rotate", id="rotate", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#overlap", Input).focus()

    def action_primary(self) -> None:
        text = self.query_one("#overlap", Input).value
        try:
            overlap = parse_duration(text)
        except ValueError as exc:
            self.query_one(Field).show_error(str(exc))
            return
        if overlap > timedelta(days=90):
            self.query_one(Field).show_error("The overlap is at most 90 days.")
            return
        self.dismiss(overlap)
