"""Fixtures and helpers for the console tests (tests/tui/).

A store on SQLite with an in-memory keyring is enough for the screens; one
test runs over the shared ``store`` fixture to show PostgreSQL works too.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

import pytest
from rich.console import Console
from textual.app import App
from textual.css.model import RuleSet
from textual.css.stylesheet import Stylesheet
from textual.css.types import CSSLocation
from textual.message import Message
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Checkbox
from textual.worker import WorkerCancelled

from tests.keyring_backends import MemoryKeyring
from tui_oauth.core.store import Store, open_store
from tui_oauth.tui.demo import DISPLAY_URL, fill_demo_store

if TYPE_CHECKING:  # a plugin of every test run (conftest): the console loads when used
    from tui_oauth.tui.app import OAuthAdminApp
    from tui_oauth.tui.screens.consumer_by_url import ConsumerByUrlScreen


# Frames of a headless console are not drawn.  Textual's headless driver drops every
# frame it is given (App._display), but each screen refresh still drew the changed
# regions first: a third of the console tests' CPU (tests/tui: 173 s -> 115 s of CPU).
# Layout, focus, mouse-over and every message still run as in a terminal.  A test that
# reads the screen draws it whole (screen_text, the snapshots' export_screenshot), and
# every console run draws its last screen whole at its end (run_test below), so a
# widget that cannot draw itself still fails its test (test_headless_drawing.py).  The
# real terminal is drawn, frame by frame, in the tmux tests.
_draw_frame = Screen._compositor_refresh
_run_test = App.run_test


def _compositor_refresh_headless(self: Screen[object]) -> None:
    app = self.app
    if app.is_headless and not app.is_inline and self is app.screen:
        self._compositor._dirty_regions.clear()
        self._dirty_widgets.clear()
        app._update_mouse_over(self)
        return
    _draw_frame(self)


@asynccontextmanager
async def _run_test_drawn_at_end(self: App[object], *args: object,
                                 **kwargs: object) -> AsyncIterator[Pilot[object]]:
    async with _run_test(self, *args, **kwargs) as pilot:  # type: ignore[arg-type]
        yield pilot
        if self.is_running and self._exception is None:
            self.screen._compositor.render_update(
                full=True, screen_stack=self._background_screens)


# Each console a test starts parses the same stylesheets (Textual's and ours) with the
# same theme: a sixth of a console start's CPU.  Textual keeps what it parsed for one
# app (Stylesheet._parse_cache); the test processes keep it for every app, keyed also
# by the theme's variables.  A stylesheet that fails to parse is not kept, so it fails
# every time.
_parse_rules = Stylesheet._parse_rules
_parsed: dict[tuple[object, ...], list[RuleSet]] = {}


def _parse_rules_once(self: Stylesheet, css: str, read_from: CSSLocation,
                      is_default_rules: bool = False, tie_breaker: int = 0,
                      scope: str = "") -> list[RuleSet]:
    key = (css, read_from, is_default_rules, tie_breaker, scope,
           frozenset(self._variables.items()))
    rules = _parsed.get(key)
    if rules is None:
        rules = _parsed[key] = _parse_rules(self, css, read_from, is_default_rules,
                                            tie_breaker, scope)
    return rules


Stylesheet._parse_rules = _parse_rules_once  # type: ignore[method-assign]
Screen._compositor_refresh = _compositor_refresh_headless  # type: ignore[method-assign,assignment]
App.run_test = _run_test_drawn_at_end  # type: ignore[method-assign,assignment]


@pytest.fixture
def tui_store(sqlite_store: Store) -> Store:
    """The console's store: conftest's SQLite store with an in-memory keyring."""
    return sqlite_store


@pytest.fixture
def demo_store(tui_store: Store) -> Store:
    """Fixed content (times, keys, ids) so that snapshots are stable."""
    fill_demo_store(tui_store)
    tui_store.url = DISPLAY_URL  # the header shows this, not the temporary path
    return tui_store


@pytest.fixture
def read_only_store(sqlite_url: str, memory_keyring: MemoryKeyring) -> Iterator[Store]:
    writable = open_store(sqlite_url, secrets_backend=memory_keyring)
    fill_demo_store(writable)
    writable.close()
    store = open_store(sqlite_url, secrets_backend=memory_keyring, read_only=True)
    yield store
    store.close()


def at_rest(app: App[Any]) -> bool:
    """No worker running and no message waiting anywhere on the screen: what the last
    results asked for has been done."""
    if any(not worker.is_finished for worker in app.workers):
        return False
    nodes = [app, *app.screen.walk_children(with_self=True)]
    return all(node._message_queue.empty() for node in nodes)


async def settle(pilot: Pilot[None], rounds: int = 3) -> None:
    """Let workers finish and their results reach the screen."""
    deadline = time.monotonic() + 10
    done = 0
    while done < rounds or (not at_rest(pilot.app) and time.monotonic() < deadline):
        # A worker superseded by a newer one in its group (a refresh after a change made
        # elsewhere) ends cancelled: that is done too.
        with suppress(WorkerCancelled):
            await pilot.app.workers.wait_for_complete()
        # Textual's pause waits for the CPU to go quiet, which a loaded machine can fake:
        # the rounds go on until nothing is left to do (a list's status line came after
        # a snapshot), within ten seconds.
        await pilot.pause()
        done += 1


async def wait_for(pilot: Pilot[None], condition: Callable[[], bool],
                   timeout: float = 10.0) -> bool:
    """Let the app run until ``condition()`` holds (a reload after a save is a
    message and a worker away); returns the condition's last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await settle(pilot, rounds=1)
        await asyncio.sleep(0.02)
    return True


@asynccontextmanager
async def open_console(store: Store, *, size: tuple[int, int] = (100, 30),
                       message_hook: Callable[[Message], None] | None = None,
                       ) -> AsyncIterator[tuple[OAuthAdminApp, Pilot[None]]]:
    """The console on ``store``, run headless and settled: ``(app, pilot)``."""
    from tui_oauth.tui.app import make_app

    app = make_app(store)
    async with app.run_test(size=size, message_hook=message_hook) as pilot:
        await settle(pilot)
        yield app, pilot


def current_screen(pilot: Pilot[None]) -> Screen[object]:
    """The app's screen now (mypy keeps ``app.screen`` narrowed across the awaits of key
    presses; this call's answer is not narrowed)."""
    return pilot.app.screen


async def fetch_by_url(pilot: Pilot[None], url: str) -> ConsumerByUrlScreen:
    """From the consumers list, add a consumer by URL (a, u) served on loopback (private
    addresses allowed): type ``url``, fetch and let the preview or the error show."""
    from tui_oauth.tui.screens.consumer_by_url import ConsumerByUrlScreen

    await pilot.press("a", "u")
    screen = current_screen(pilot)
    assert isinstance(screen, ConsumerByUrlScreen)
    screen.query_one("#allow_private", Checkbox).value = True  # a loopback server
    await pilot.press(*url, "enter")
    await settle(pilot)
    return screen


def screen_text(pilot: Pilot[None]) -> str:
    """Everything the screen shows (with the screens under a dialog), as plain text."""
    app = pilot.app
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system=None, record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    return console.export_text()


async def type_text(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*text)


def press_keys(*presses: str) -> Callable[[Pilot[None]], object]:
    """A snapshot's run_before: settle, press each key and settle after it."""
    async def run(pilot: Pilot[None]) -> None:
        await settle(pilot)
        for key in presses:
            await pilot.press(key)
            await settle(pilot)
        await pilot.pause(0.1)

    return run
