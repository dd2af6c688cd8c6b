"""Every dialog answers the same keys the same way: Esc dismisses it with its cancel
answer, ctrl+s and enter with its primary answer (enter where no focused control
takes it: a focused button presses itself, a text field submits)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input

from tests.tui_support import settle, wait_for
from tui_oauth.core.registry import services
from tui_oauth.core.services.connect import ConnectStep
from tui_oauth.core.store import Store
from tui_oauth.tui import commands
from tui_oauth.tui.app import make_app
from tui_oauth.tui.modals.add_route import AddRouteModal
from tui_oauth.tui.modals.base import Dialog
from tui_oauth.tui.modals.confirm import ConfirmModal
from tui_oauth.tui.modals.connect import ConnectModal
from tui_oauth.tui.modals.error import ErrorModal
from tui_oauth.tui.modals.export import ExportModal
from tui_oauth.tui.modals.help import HelpModal
from tui_oauth.tui.modals.reveal_secret import RevealSecretModal
from tui_oauth.tui.modals.typed_confirm import TYPED_PLACEHOLDER, TypedConfirmModal
from tui_oauth.tui.widgets.tick import EMPTY, TICKED

Make = Callable[[Any], ModalScreen[Any]]


def _help(app: Any) -> ModalScreen[Any]:
    return HelpModal(commands.entries(app, app.screen), read_only=False)


# name: (make the dialog, its cancel answer, its primary answer)
DIALOGS: dict[str, tuple[Make, object, object]] = {
    "confirm": (lambda app: ConfirmModal("Remove?", "It goes."), False, True),
    "add_route": (lambda app: AddRouteModal(), None, "url"),
    "error": (lambda app: ErrorModal("Broken", "It broke."), None, None),
    "help": (_help, None, None),
    "reveal_secret": (lambda app: RevealSecretModal("jira", "s3cret", seconds=60), None, None),
}


async def open_dialog(pilot: Pilot[None], make: Make) -> list[object]:
    """Push the dialog (over the main page, loaded once); the returned list gets its
    answer."""
    if not getattr(pilot.app, "_dialog_test_settled", False):
        await settle(pilot)
        pilot.app._dialog_test_settled = True  # type: ignore[attr-defined]
    answers: list[object] = []
    pilot.app.push_screen(make(pilot.app), answers.append)
    await pilot.pause()
    assert isinstance(pilot.app.screen, Dialog)
    return answers


KEYS = ("escape", "ctrl+s", "enter")


async def test_each_dialog_answers_esc_ctrl_s_and_enter(demo_store: Store) -> None:
    """One console, every dialog, each key (a console a case cost 1.5 s each)."""
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        for name, (make, cancel, primary) in sorted(DIALOGS.items()):
            for key in KEYS:
                answers = await open_dialog(pilot, make)
                await pilot.press(key)
                await pilot.pause()
                if name == "confirm" and key == "enter":
                    expected = cancel  # enter presses the focused button: No
                else:
                    expected = cancel if key == "escape" else primary
                assert answers == [expected], (name, key)
                assert not isinstance(app.screen, ModalScreen), (name, key)


async def test_confirm_enter_presses_the_focused_button(demo_store: Store) -> None:
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        answers = await open_dialog(pilot, lambda app: ConfirmModal("Remove?", "It goes."))
        assert app.focused is app.screen.query_one("#no", Button)
        app.screen.query_one("#yes", Button).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert answers == [True]


async def test_typed_confirm_answers_only_the_right_word(demo_store: Store) -> None:
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        for key in KEYS:
            answers = await open_dialog(
                pilot, lambda app: TypedConfirmModal("Remove jira?", "It goes.", "jira"))
            modal = app.screen
            # The word is named in the prompt; the empty field's placeholder is not the
            # word (grey, or under NO_COLOR, it would read as typed already).
            typed = modal.query_one("#typed", Input)
            assert typed.placeholder == TYPED_PLACEHOLDER and "jira" not in typed.placeholder
            assert "Type jira to confirm" in str(modal.query_one(".dialog-prompt").render())
            if key == "escape":
                await pilot.press(*"jira", key)  # even with the word typed
                await pilot.pause()
                assert answers == [False]
                continue
            # in the field, where the word is typed: not yet
            await pilot.press(*"jir", key)
            await pilot.pause()
            assert answers == [] and app.screen is modal, key
            assert "That is not jira" in str(modal.query_one("#typed-error").render())
            await pilot.press("a", key)
            await pilot.pause()
            assert answers == [True], key


async def test_export_dialog_keys(demo_store: Store, tmp_path: Path) -> None:
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        for key in KEYS:
            folder = tmp_path / key
            folder.mkdir()
            answers = await open_dialog(pilot, lambda app: ExportModal(folder))  # noqa: B023
            if key == "escape":
                # The Overwrite checkbox shows its state as a glyph, not only a colour.
                box = app.screen.query_one("#overwrite", Checkbox)
                assert box.BUTTON_INNER == EMPTY
                box.value = True
                await pilot.pause()
                assert box.BUTTON_INNER == TICKED
            await pilot.press(key)
            assert await wait_for(pilot, lambda: bool(answers), timeout=3), key  # noqa: B023
            target = folder / "consumer-info.xml"
            if key == "escape":
                assert answers == [None] and not target.exists()
            else:
                assert answers == [str(target)] and target.exists(), key


async def test_connect_dialog_keys(demo_store: Store,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    step = ConnectStep(provider="jira", token="t", secret="s", callback="oob",
                       authorization_url="https://jira.example/authorize?t=1")
    held = SimpleNamespace(user="ops")
    exchanged: list[tuple[object, str, str]] = []

    def exchange(got: object, verifier: str, user: str) -> object:
        exchanged.append((got, verifier, user))
        return held

    monkeypatch.setattr(services(demo_store).consumer_side, "request_token", lambda name: step)
    monkeypatch.setattr(services(demo_store).consumer_side, "exchange", exchange)
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        for key in KEYS:
            exchanged.clear()
            answers = await open_dialog(pilot, lambda app: ConnectModal("jira", "ops"))
            assert await wait_for(pilot, lambda: isinstance(app.screen, ConnectModal)
                                  and app.screen.step is step)
            await pilot.press(*"1234", key)
            assert await wait_for(pilot, lambda: bool(answers), timeout=3)  # noqa: B023
            if key == "escape":
                assert answers == [None] and exchanged == []
            else:
                assert answers == [held] and exchanged == [(step, "1234", "ops")], key


async def test_every_dialog_shares_the_keys() -> None:
    """Each dialog's bindings: ctrl+s to its primary action, escape to cancel, with ids
    and tooltips."""
    for cls in (ConfirmModal, TypedConfirmModal, AddRouteModal, ConnectModal, ErrorModal,
                ExportModal, HelpModal, RevealSecretModal):
        assert issubclass(cls, Dialog)
        by_action: dict[str, list[str]] = {}
        for binding in cls.BINDINGS:
            assert not isinstance(binding, tuple)
            assert binding.id and binding.tooltip, (cls, binding)
            by_action.setdefault(binding.action, []).extend(binding.key.split(","))
        assert "ctrl+s" in by_action["primary"], cls
        assert "escape" in by_action["cancel"], cls



LONG = "\n".join(f"Line {i} of a long explanation that wraps at sixty columns." for i in range(30))
SMALL_DIALOGS: dict[str, Make] = {
    "confirm": lambda app: ConfirmModal("Remove?", LONG),
    "typed_confirm": lambda app: TypedConfirmModal("Remove jira?", LONG, "jira"),
    "add_route": lambda app: AddRouteModal(),
    "error": lambda app: ErrorModal("Broken", LONG),
    "help": _help,
    "reveal_secret": lambda app: RevealSecretModal("jira", "s3cret " * 40, seconds=60),
    "export": lambda app: ExportModal(Path("/nonexistent") / ("deep" * 20)),
    "connect": lambda app: ConnectModal("jira", "ops"),
}


async def test_dialog_buttons_stay_in_sight_on_a_small_terminal(demo_store: Store) -> None:
    """Every dialog at 60x20, with a body longer than the screen: the body scrolls,
    the buttons stay docked in sight."""
    from textual.geometry import Region

    size = (60, 20)
    app = make_app(demo_store)
    async with app.run_test(size=size) as pilot:
        screen_region = Region(0, 0, *size)
        for name, make in sorted(SMALL_DIALOGS.items()):
            await open_dialog(pilot, make)
            dialog = app.screen.query_one(".dialog")
            assert screen_region.contains_region(dialog.region), name
            buttons = list(app.screen.query(Button))
            assert buttons, name
            for button in buttons:
                assert button.region.height == 3, (name, button)
                assert dialog.region.contains_region(button.region), (name, button)
            app.pop_screen()
            await pilot.pause()
