"""What tests/tui_support.py does to make the console tests cheaper must not make them
blind: a headless app's frames are not drawn, yet a widget that cannot draw itself
still fails its test; parsed stylesheets are shared between apps, yet each theme gets
its own colours and a stylesheet that does not parse fails every time."""

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


class Themed(App[None]):
    CSS = "#themed { color: $primary; }"

    def __init__(self, theme: str) -> None:
        super().__init__()
        self._theme_name = theme

    def compose(self) -> ComposeResult:
        yield Static("x", id="themed")

    def on_mount(self) -> None:
        self.theme = self._theme_name


async def test_stylesheets_parsed_once_still_follow_the_theme() -> None:
    """The test processes keep parsed stylesheets across apps (tests/tui_support.py),
    keyed also by the theme: a second theme gets its own colours."""
    colours = []
    for theme in ("textual-dark", "nord", "textual-dark"):
        app = Themed(theme)
        async with app.run_test(size=(20, 4)) as pilot:
            await pilot.pause()
            colours.append(app.query_one("#themed").styles.color)
    assert colours[0] == colours[2] != colours[1]


class Broken(App[None]):
    CSS = "#x { colour: red; }"


async def test_a_stylesheet_that_does_not_parse_fails_every_time() -> None:
    for _ in range(2):
        with pytest.raises(Exception, match=r"(?i)stylesheet|css"):
            async with Broken().run_test(size=(20, 4)):
                pass
