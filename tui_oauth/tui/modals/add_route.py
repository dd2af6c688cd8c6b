"""Adding a consumer: by URL (fetch its consumer-info) or by hand."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class AddRouteModal(ModalScreen[str | None]):
    BINDINGS = [
        Binding("u", "choose('url')", "By URL", id="add_route.url",
                tooltip="Fetch the consumer's consumer-info document"),
        Binding("m", "choose('manual')", "Manual", id="add_route.manual",
                tooltip="Type the fields by hand"),
        Binding("escape", "choose(None)", "Cancel", id="add_route.cancel", tooltip="Do nothing"),
    ]

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Add a consumer", classes="dialog-title")
            yield Static("By URL fetches BASE/plugins/servlet/oauth/consumer-info from the "
                         "consumer application (JIRA, Confluence...) and shows what it found "
                         "before saving. Manual lets you type or paste every field.",
                         classes="dialog-body")
            yield Button("By URL (u)", id="url", variant="primary")
            yield Button("Manual (m)", id="manual")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id)

    def action_choose(self, route: str | None) -> None:
        self.dismiss(route)
