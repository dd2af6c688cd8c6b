"""`?`: every binding of the current screen, grouped, with what it does: the keys that
work here when typed (in a form, ``ctrl+q`` and ``F1``; ``q`` and ``?`` are text)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Button, DataTable, Label, Static

from tui_oauth.tui.commands import Entry
from tui_oauth.tui.modals.base import Dialog, dialog_bindings, dialog_buttons
from tui_oauth.tui.text import plain

DIALOG_WIDTH = 96  # as #help-dialog in dialog.tcss
# The dialog's border and padding, the table's scroll bar, and a column of padding on
# either side of each of the three cells.
CHROME = 2 + 2 + 2 + 6
KEY_WIDTH = 16
ACTION_WIDTH = 18
MIN_WHAT = 20


class HelpModal(Dialog[None]):
    """Every key answers as in any dialog: ``ctrl+s``/``enter`` and ``Esc`` close it
    (and ``?``, ``F1`` and ``q``, the keys that may have opened it)."""

    HELP_TITLE = "Help"
    BINDINGS = [
        *dialog_bindings("help", "Close", "Close the help",
                         primary_keys="ctrl+s,enter,question_mark,f1,q",
                         primary_id="help.close", cancel="Close", cancel_tip="Close the help",
                         cancel_id="help.cancel"),
    ]
    PRIMARY_BUTTON = "close"

    def __init__(self, entries: list[Entry], read_only: bool) -> None:
        super().__init__()
        self.entries = entries
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="help-dialog"):
            yield Label("Keys on this screen", classes="dialog-title")
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            note = ("ctrl+p opens the command palette: every action by name. Esc closes. "
                    "To remap a key, name the id shown after its action in TUI_OAUTH_KEYMAP, "
                    "e.g. TUI_OAUTH_KEYMAP=\"consumers.add=A\".")
            if self.read_only:
                note += " Read-only: dimmed actions are refused."
            yield Static(plain(note), classes="field-hint")
            with dialog_buttons():
                yield Button("Close", id="close", variant="primary")

    def on_mount(self) -> None:
        table = self.query_one("#help-table", DataTable)
        # Fixed widths, so that a long key list or description wraps onto more lines
        # of its row instead of being cut at the edge (80 columns is enough).
        inner = min(DIALOG_WIDTH, self.app.size.width) - CHROME
        what_width = max(MIN_WHAT, inner - KEY_WIDTH - ACTION_WIDTH)
        table.add_column("Key", width=KEY_WIDTH)
        table.add_column("Action", width=ACTION_WIDTH)
        table.add_column("What it does", width=what_width)
        section = None
        for e in self.entries:
            if not e.help_keys:
                continue  # no key does it here (in a form, l and ! are text): ctrl+p does
            if e.section != section:
                section = e.section
                table.add_row(Text(section, style="bold"), "", "")
            what = e.tooltip + ("  (refused: read-only)" if e.read_only
                                else "" if e.enabled else "  (not here now)")
            style = "" if e.enabled else "dim"
            # The binding's id: what TUI_OAUTH_KEYMAP names to remap it.
            table.add_row(Text(e.help_keys, style=style), Text(e.description, style=style),
                          Text.assemble((what, style), (f"  [{e.binding.id}]", "italic")),
                          height=None)
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.dismiss(None)  # enter on the table: as anywhere in a dialog

    def action_primary(self) -> None:
        self.dismiss(None)
