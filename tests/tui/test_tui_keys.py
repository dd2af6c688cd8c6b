"""Keys never go astray: app letters stay out of forms, a changed form asks before it
is dropped, and keys typed ahead in one burst land on the widget focused by the key
before them."""

from __future__ import annotations

import unicodedata

from textual import events
from textual.keys import _character_to_key, _get_unicode_name_from_key
from textual.pilot import Pilot
from textual.widgets import Button, Checkbox, Input, Static

from tests.tui_support import current_screen, open_console, settle, wait_for
from tui_oauth.core.store import Store
from tui_oauth.tui.app import make_app
from tui_oauth.tui.modals.confirm import ConfirmModal
from tui_oauth.tui.screens.audit import AuditScreen
from tui_oauth.tui.screens.consumer_form import ConsumerFormScreen
from tui_oauth.tui.screens.main import MainScreen
from tui_oauth.tui.widgets.virtual_table import VirtualTable


async def burst(pilot: Pilot[None], keys: str | list[str]) -> None:
    """Every key queued at once, as a paste or a slow SSH link delivers them: no
    pause between keys, so nothing deferred runs between two of them."""
    app = pilot.app
    driver = app._driver
    assert driver is not None
    for key in keys:
        if len(key) == 1 and not key.isalnum():
            key = _character_to_key(key)
        try:
            char: str | None = unicodedata.lookup(_get_unicode_name_from_key(key))
        except KeyError:
            char = key if len(key) == 1 else None
        event = events.Key(key, char)
        event.set_sender(app)
        driver.send_message(event)
    await settle(pilot)


async def open_manual_form(pilot: Pilot[None]) -> ConsumerFormScreen:
    await settle(pilot)
    await pilot.press("a", "m")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, ConsumerFormScreen)
    return screen


async def test_app_letters_do_nothing_in_a_form(demo_store: Store) -> None:
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_manual_form(pilot)
        for target in (form.query_one("#three_lo_allowed", Checkbox),
                       form.query_one("#save", Button)):
            target.focus()
            await pilot.pause()
            for key in ("q", "l", "question_mark", "1", "3", "]"):
                await pilot.press(key)
                assert app.is_running and app.screen is form, (target, key)
                assert isinstance(app.screen_stack[1], MainScreen)
        # typed into a field, the letters are text
        form.query_one("#name", Input).focus()
        await pilot.press("q", "l", "question_mark")
        assert form.query_one("#name", Input).value == "ql?"
        assert app.screen is form


async def test_leaving_a_changed_form_asks(demo_store: Store) -> None:
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_manual_form(pilot)
        # unchanged: Esc just closes
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        form = await open_manual_form(pilot)
        await pilot.press("x")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")  # keep the form as typed
        await settle(pilot)
        assert current_screen(pilot) is form and form.query_one("#key", Input).value == "x"
        # ctrl+q (the one quit key that works in a form) asks too
        await pilot.press("ctrl+q")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal) and app.is_running
        await pilot.press("n")
        await settle(pilot)
        assert current_screen(pilot) is form
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        # The keys that open the form, text and Esc in one burst: the text typed ahead
        # is a change too (not the values the form opened with), so Esc asks.
        await burst(pilot, ["a", "m", "x", "y", "escape"])
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal)), \
            app.screen_stack
        await pilot.press("n")
        await settle(pilot)
        assert current_screen(pilot).query_one("#key", Input).value == "xy"


async def test_app_letters_still_work_on_the_lists(demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(app.screen, AuditScreen)
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("q")
    assert app.return_code == 0


async def test_fields_keep_their_value_on_focus(demo_store: Store) -> None:
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_manual_form(pilot)
        await pilot.press(*"abc", "tab", *"Name", "shift+tab", "d")
        assert form.query_one("#key", Input).value == "abcd"
async def test_a_burst_after_slash_goes_into_the_filter(demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        table = app.screen.query_one("#consumers-table", VirtualTable)
        assert table.cursor_row == 0
        await burst(pilot, "/jira")
        filt = app.screen.query_one("#consumers-filter", Input)
        assert filt.value == "jira"
        assert isinstance(app.screen, MainScreen)  # `a` did not open Add
        assert await wait_for(pilot, lambda: table.row_count == 1)


async def test_a_burst_with_tab_fills_two_fields(demo_store: Store) -> None:
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_manual_form(pilot)
        await burst(pilot, [*"key", "tab", *"name"])
        assert form.query_one("#key", Input).value == "key"
        assert form.query_one("#name", Input).value == "name"




async def test_a_burst_after_enter_in_the_filter_goes_to_the_list(demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        await burst(pilot, ["/", *"jira", "enter", "l"])
        assert isinstance(app.screen, AuditScreen)  # `l` reached the list, not the filter
        assert app.screen_stack[1].query_one("#consumers-filter", Input).value == "jira"


async def test_a_burst_opening_a_form_fills_it(demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        await burst(pilot, ["a", "m", *"key", "tab", *"name"])
        form = app.screen
        assert isinstance(form, ConsumerFormScreen)
        assert form.query_one("#key", Input).value == "key"
        assert form.query_one("#name", Input).value == "name"


async def test_read_only_says_refused_at_every_key(read_only_store: Store) -> None:
    async with open_console(read_only_store) as (app, pilot):
        for key in ("a", "a", "d"):
            await pilot.press(key)
        for tab, key in (("3", "r"), ("2", "K")):
            await pilot.press(tab)
            await settle(pilot)
            await pilot.press(key)
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        said = [str(n.message) for n in app._notifications]
        assert sum("read-only: refused" in m for m in said) == 5, said
        assert not any("--" in m for m in said)  # no CLI flag quoted in the console


async def test_a_field_error_clears_once_the_field_is_changed(demo_store: Store) -> None:
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_manual_form(pilot)
        await pilot.press(*"bad key", "ctrl+s")
        await settle(pilot)
        fields = form.fields()
        assert fields["key"].error and fields["name"].error
        form.query_one("#key", Input).focus()
        await pilot.press("backspace")
        await settle(pilot)
        assert fields["key"].error == "" and not fields["key"].has_class("-invalid")
        assert fields["name"].error  # the others keep theirs until changed
        general = form.query_one("#form-error", Static)
        assert general.has_class("-shown") and general.display


def test_console_texts_quote_no_cli_flag() -> None:
    import inspect

    from tui_oauth.tui import commands
    from tui_oauth.tui.modals import error
    from tui_oauth.tui.widgets import request_pane

    assert "--" not in commands.READ_ONLY_REFUSAL
    assert "--" not in request_pane.READ_ONLY_CALL
    assert "--verbose" not in inspect.getsource(error)
