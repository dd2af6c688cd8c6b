"""The keys that move in a list, shared by the virtual list and the small tables: j/k,
g/G and pages, as k9s and less move."""

from __future__ import annotations

from textual.binding import Binding, BindingType

LIST_MOVES: list[BindingType] = [
    Binding("down,j", "cursor_down", "Down", show=False, id="list.down", tooltip="Next row"),
    Binding("up,k", "cursor_up", "Up", show=False, id="list.up", tooltip="Previous row"),
    Binding("home,g", "scroll_top", "First", show=False, id="list.first", tooltip="First row"),
    Binding("end,G", "scroll_bottom", "Last", show=False, id="list.last", tooltip="Last row"),
    Binding("pagedown", "page_down", "Page down", show=False, id="list.page_down",
            tooltip="One screen down"),
    Binding("pageup", "page_up", "Page up", show=False, id="list.page_up",
            tooltip="One screen up"),
]
