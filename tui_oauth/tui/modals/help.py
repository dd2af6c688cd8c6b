"""`?`: every binding of the current screen, grouped, with what it does."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from tui_oauth.tui.commands import Entry
from tui_oauth.tui.text import plain


class HelpModal(ModalScreen[None]):
    HELP_TITLE = "Help"
    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close",
                tooltip="Close the help"),
    ]

    def __init__(self, entries: list[Entry], read_only: bool) -> None:
        super().__init__(classes="dialog-screen")
        self.entries = entries
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="help-dialog"):
            yield Label("Keys on this screen", classes="dialog-title")
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            note = "ctrl+p opens the command palette: every action by name. Esc closes."
            if self.read_only:
                note += " Read-only: dimmed actions are refused."
            yield Static(plain(note), classes="field-hint")

    def on_mount(self) -> None:
        table = self.query_one("#help-table", DataTable)
        table.add_columns("Key", "Action", "What it does")
        section = None
        for e in self.entries:
            if e.section != section:
                section = e.section
                table.add_row(Text(section, style="bold"), "", "")
            what = e.tooltip + ("" if e.enabled else "  (refused: read-only)")
            style = "" if e.enabled else "dim"
            table.add_row(Text(e.keys, style=style), Text(e.description, style=style),
                          Text(what, style=style))
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
