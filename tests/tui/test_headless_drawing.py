"""The console tests do not draw a headless app's frames (tests/tui_support.py): a
widget that cannot draw itself must still fail the test it appears in."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Input, Static

from tests.tui_support import screen_text


class CannotDraw(Static):
    def render_line(self, y: int) -> object:  # type: ignore[override]
        raise RuntimeError("this widget cannot draw itself")


class Plain(App[None]):
    def compose(self) -> ComposeResult:
        yield Input(id="typed")


async def test_a_widget_that_cannot_draw_fails_the_test() -> None:
    app = Plain()
    with pytest.raises(RuntimeError, match="cannot draw"):
        async with app.run_test(size=(40, 8)) as pilot:
            await app.mount(CannotDraw("x"))
            await pilot.pause()


async def test_what_is_typed_is_on_the_screen_when_read() -> None:
    app = Plain()
    async with app.run_test(size=(40, 8)) as pilot:
        await pilot.press(*"hello")
        assert "hello" in screen_text(pilot)
        await pilot.press("backspace", "backspace")
        shown = screen_text(pilot)
        assert "hel" in shown and "hello" not in shown
