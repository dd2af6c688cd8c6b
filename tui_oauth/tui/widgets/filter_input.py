"""The `/` filter line above a list: typing filters, enter goes back to the list, Esc clears."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class FilterInput(Input):
    BINDINGS = [
        Binding("escape", "clear_filter", "Clear filter", id="filter.clear",
                tooltip="Empty the filter and go back to the list"),
    ]

    class Cleared(Message):
        """Esc was pressed in the filter."""

    def __init__(self, *, placeholder: str, id: str | None = None) -> None:
        super().__init__(placeholder=placeholder, id=id, classes="filter")

    def open(self) -> None:
        self.add_class("-shown")
        self.focus()

    def close(self) -> None:
        self.remove_class("-shown")

    def action_clear_filter(self) -> None:
        self.value = ""
        self.close()
        self.post_message(self.Cleared())
