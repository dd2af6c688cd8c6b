"""Adding a consumer: by URL (fetch its consumer-info) or by hand."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Button, Label, Static

from tui_oauth.tui.modals.base import Dialog, dialog_bindings, dialog_body, dialog_buttons


class AddRouteModal(Dialog[str | None]):
    """``u``/``m`` choose; ``ctrl+s`` (or ``enter`` on no other button) is by URL,
    the primary way; ``Esc`` cancels."""

    BINDINGS = [
        Binding("u", "choose('url')", "By URL", id="add_route.url",
                tooltip="Fetch the consumer's consumer-info document"),
        Binding("m", "choose('manual')", "Manual", id="add_route.manual",
                tooltip="Type the fields by hand"),
        *dialog_bindings("add_route", "By URL", "By URL, the usual way (as u)",
                         primary_id="add_route.primary", cancel_tip="Do nothing"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Add a consumer", classes="dialog-title")
            with dialog_body():
                yield Static("By URL fetches BASE/plugins/servlet/oauth/consumer-info from the "
                             "consumer application (JIRA, Confluence...) and shows what it "
                             "found before saving. Manual lets you type or paste every field.",
                             classes="dialog-body")
            with dialog_buttons():
                yield Button("By URL (u)", id="url", variant="primary")
                yield Button("Manual (m)", id="manual")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#url", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_choose(self, route: str | None) -> None:
        self.dismiss(route)

    def action_primary(self) -> None:
        self.dismiss("url")
