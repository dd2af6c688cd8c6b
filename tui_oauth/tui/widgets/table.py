"""A row-cursor DataTable that moves like k9s: j/k, g/G, and nothing else bound to enter."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist, RowKey

from tui_oauth.core.text import visible
from tui_oauth.tui.widgets.moves import LIST_MOVES
from tui_oauth.tui.widgets.virtual_table import CURSOR


class Table(DataTable[Any], inherit_bindings=False):
    """``enter`` is left to the tab or screen (open); only movement is bound here."""

    BINDINGS = [
        *LIST_MOVES,
        Binding("left", "scroll_left", "Left", show=False, id="list.left",
                tooltip="Scroll left"),
        Binding("right", "scroll_right", "Right", show=False, id="list.right",
                tooltip="Scroll right"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def add_row(self, *cells: Any, height: int | None = 1, key: str | None = None,
                label: Any = None) -> RowKey:
        """Cells that are strings are shown as text, never read as markup, with any
        control, bidi or separator character escaped (core.text.visible).  The row under
        the cursor is marked with ``▶`` in its label, as in the lists of the tabs (told
        apart without colour too, NO_COLOR)."""
        if label is None:
            label = Text(CURSOR if self.row_count == self.cursor_row else " ")
        shown = [Text(visible(c), no_wrap=True, overflow="ellipsis") if isinstance(c, str)
                 else c for c in cells]
        row_key = super().add_row(*shown, height=height, key=key, label=label)
        # Widen auto-width columns now.  DataTable measures new cells only when it
        # next goes idle; a screen drawn (or read by a test) before that showed
        # every column at its header's width ("ji…").
        for column, cell in zip(self.ordered_columns, shown, strict=False):
            if column.auto_width and isinstance(cell, Text):
                column.content_width = max(column.content_width, cell.cell_len)
        return row_key

    def watch_cursor_coordinate(self, old: Coordinate, new: Coordinate) -> None:
        super().watch_cursor_coordinate(old, new)
        if old.row != new.row:
            self._mark(old.row, " ")
            self._mark(new.row, CURSOR)

    def _mark(self, index: int, mark: str) -> None:
        if 0 <= index < self.row_count:
            row = self.rows.get(self._row_locations.get_key(index))  # type: ignore[arg-type]
            if row is not None and row.label is not None:
                row.label = Text(mark)
                self._clear_caches()
                self.refresh_row(index)

    def action_scroll_top(self) -> None:
        if self.row_count:
            self.move_cursor(row=0)

    def action_scroll_bottom(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)

    @property
    def current_key(self) -> str | None:
        """The key of the row under the cursor (None when the table is empty)."""
        if not self.row_count:
            return None
        row = min(self.cursor_row, self.row_count - 1)
        key = self.coordinate_to_cell_key((row, 0)).row_key.value  # type: ignore[arg-type]
        return str(key) if key is not None else None

    def select_key(self, key: str | None) -> None:
        """Put the cursor on the row with this key, if it is there."""
        if key is None:
            return
        with suppress(RowDoesNotExist):  # filtered out or removed meanwhile
            self.move_cursor(row=self.get_row_index(key))
