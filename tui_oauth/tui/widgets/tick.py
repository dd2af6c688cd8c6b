"""A checkbox says ticked or not with a glyph, not only with colour.

Textual draws the same ``X`` in a checkbox either way and tells on from off by its
colour alone, which is lost under ``NO_COLOR`` (and on a monochrome terminal).
:func:`keep_ticks` shows a tick in a ticked box and nothing in an empty one.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.dom import DOMNode
from textual.widgets import Checkbox

TICKED = "✔"
EMPTY = " "


def show_tick(box: Checkbox) -> None:
    box.BUTTON_INNER = TICKED if box.value else EMPTY  # read when the box is drawn
    box.refresh()


def keep_ticks(owner: DOMNode, *boxes: Checkbox) -> None:
    """Show each box's state as a glyph, now and whenever it changes."""
    for box in boxes:
        owner.watch(box, "value", _shower(box))


def _shower(box: Checkbox) -> Callable[[], None]:
    def show() -> None:
        show_tick(box)

    return show
