"""tui_oauth/tui/textual_fixes.py: the race it closes, made to happen every time."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Label

import tui_oauth.tui.textual_fixes as fixes


class OneLine(App[None]):
    def compose(self) -> ComposeResult:
        yield Label("", id="line")


async def width_after_update_in_the_window(*, fixed: bool) -> int:
    """Update an auto-sized label while the screen's map is out of date and its
    parent's arrangement was cleared (a sibling refreshed), then lay out again."""
    app = OneLine()
    async with app.run_test(size=(60, 5)) as pilot:
        await pilot.pause()
        line = app.query_one(Label)
        compositor = app.screen._compositor
        compositor._full_map_invalidated = True
        compositor._visible_map = None
        app.screen._clear_arrangement_cache()
        update = fixes._update_measured_afresh if fixed else fixes._update
        update(line, "twelve chars")
        await pilot.pause()
        app.screen._refresh_layout()
        return line.size.width


async def test_a_label_updated_in_the_window_takes_its_new_width() -> None:
    assert await width_after_update_in_the_window(fixed=True) == len("twelve chars")


async def test_without_the_fix_the_label_keeps_its_old_width() -> None:
    """Textual's own update, in the same window: the line stays blank.  When Textual
    fixes this, this test fails, and textual_fixes.py can go."""
    assert await width_after_update_in_the_window(fixed=False) == 0
