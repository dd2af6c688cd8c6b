"""A fix to Textual (pinned at 8.2.8) that the console needs: kept in one place.

``Static.update`` sets the new content, then ``refresh(layout=True)``.  Inside it,
Textual marks the widget dirty before it forgets the widget's measured size, and
marking it dirty reads the widget's region: when the screen's map is out of date and
the parent's arrangement was cleared (another child of the same tab refreshed just
before, as a list coming back does), that read lays the parent out again at once,
with the old measurement.  The arrangement is kept under the widget's new layout
count, so every later layout reuses it: an auto-sized line written as a list first
came back (a status line, the tokens title) stayed as wide as its old text, blank.
Forgetting the measurement before the update closes that window
(tests/tui/test_textual_fixes.py shows the race without it).
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

_update = Static.update


def _update_measured_afresh(self: Static, content: Any = "", *, layout: bool = True) -> None:
    self.clear_cached_dimensions()
    _update(self, content, layout=layout)


Static.update = _update_measured_afresh  # type: ignore[method-assign]
