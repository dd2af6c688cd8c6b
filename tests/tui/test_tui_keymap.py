"""Keys remapped with TUI_OAUTH_KEYMAP: a wrong item is said at start, in words (not
dropped silently), and F1 reaches the help where ``?`` is text."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from tests.tui_support import open_console
from tui_oauth.core.store import Store
from tui_oauth.tui.app import keymap_from_env, make_app
from tui_oauth.tui.commands import binding_ids
from tui_oauth.tui.modals.help import HelpModal
from tui_oauth.tui.screens.consumer_form import ConsumerFormScreen


def test_malformed_keymap_items_are_said() -> None:
    problems: list[str] = []
    assert keymap_from_env("foo;=A;app.quit=;consumers.add=A;;", problems) == {
        "consumers.add": "A"}
    assert problems == [
        '"foo": it has no "="; write id=keys, e.g. consumers.add=A',
        '"=A": the id is missing; write id=keys, e.g. consumers.add=A',
        '"app.quit=": no key is given; write id=keys, e.g. consumers.add=A',
    ]


def test_binding_ids_are_every_declared_id() -> None:
    ids = binding_ids()
    for expected in ("consumers.add", "app.quit", "app.help", "list.down", "form.save",
                     "confirm.yes", "typed_confirm.cancel", "help.close"):
        assert expected in ids
    assert "consumers.ad" not in ids


async def test_a_bad_keymap_is_reported_at_start(
        demo_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUI_OAUTH_KEYMAP", "consumers.ad=A;foo;consumers.add=N")
    async with open_console(demo_store) as (app, pilot):
        [note] = list(app._notifications)
        assert note.severity == "warning"
        assert '"consumers.ad=A": no key binding has the id "consumers.ad"; ids are listed ' \
            "in the help (?)" in note.message
        assert '"foo": it has no "="' in note.message
        await pilot.press("N")  # the good item still applies
        await pilot.pause()
        assert type(app.screen).__name__ == "AddRouteModal"
        # ...and the help lists the ids, as the message says
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpModal)
        assert any("[consumers.add]" in row for row in _help_rows(app.screen))


def _help_rows(modal: HelpModal) -> list[str]:
    from textual.widgets import DataTable

    table = modal.query_one("#help-table", DataTable)
    return [" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]


async def test_a_good_keymap_says_nothing(demo_store: Store,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUI_OAUTH_KEYMAP", "consumers.add=N")
    async with open_console(demo_store) as (app, _):
        assert not list(app._notifications)


async def test_f1_opens_the_help_in_a_form_where_question_mark_is_text(
        demo_store: Store) -> None:
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        form = ConsumerFormScreen()  # as a, m open it
        await app.push_screen(form)
        form.query_one("#name", Input).focus()
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen is form and form.query_one("#name", Input).value == "?"
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpModal)
        assert ("Consumer form", "Save") in {(e.section, e.description)
                                            for e in app.screen.entries}
        # Everywhere lists the keys that work in a form: not q, ?, l or ! (text here).
        rows = [row.split("  [")[0] for row in _help_rows(app.screen)]
        everywhere = rows[rows.index("Everywhere  ") + 1:]
        assert everywhere[:3] == ["^q Quit Leave the console", "f1 Help Every key of this "
                                  "screen, in a form too (where ? is text)",
                                  "^p Commands Every action by name"], everywhere
        assert not [row for row in everywhere if row.split()[0] in {"q", "?", "l", "!"}]
        await pilot.press("f1")  # closes it again
        await pilot.pause()
        assert app.screen is form and form.query_one("#name", Input).value == "?"


async def test_a_keymap_warning_says_whether_the_other_items_applied(
        demo_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUI_OAUTH_KEYMAP", "consumers.ad=A;consumers.add=N")
    async with open_console(demo_store) as (app, _pilot):
        [note] = list(app._notifications)
        assert note.title == "1 keymap item not applied (the others are)", note.title
    monkeypatch.setenv("TUI_OAUTH_KEYMAP", "consumers.ad=A")
    async with open_console(demo_store) as (app, _pilot):
        [note] = list(app._notifications)
        assert note.title == "Keys not remapped", note.title
