"""tui_oauth.tui.watch: a write made elsewhere reaches the console's current screen as
StoreChanged within 2 s, polled off the UI thread; no write, no message."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from tests.helpers import pem_spki, rsa_key
from tests.keyring_backends import MemoryKeyring
from tests.tui_support import wait_for
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store, open_store
from tui_oauth.tui.messages import StoreChanged, WorkFailed
from tui_oauth.tui.watch import GROUP, StoreWatch, install_store_watch

INTERVAL = 0.1  # the console polls every second; shorter here, to keep the test short


class Listing(Screen[None]):
    def __init__(self) -> None:
        super().__init__()
        self.changes: list[float] = []

    def compose(self) -> ComposeResult:
        yield Static("consumers")

    def on_store_changed(self, _event: StoreChanged) -> None:
        self.changes.append(time.monotonic())


class WatchingApp(App[None]):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.listing = Listing()
        self.failures: list[WorkFailed] = []
        self.store_watch: StoreWatch | None = None

    def on_mount(self) -> None:
        self.push_screen(self.listing)
        self.store_watch = install_store_watch(self, interval=INTERVAL)

    def on_work_failed(self, event: WorkFailed) -> None:
        self.failures.append(event)


@pytest.fixture
def colleague(sqlite_url: str, memory_keyring: MemoryKeyring,
              sqlite_store: Store) -> Iterator[Store]:
    """Another store on the same file: the CLI in another terminal."""
    s = open_store(sqlite_url, secrets_backend=memory_keyring)
    yield s
    s.close()


def watch_ready(app: WatchingApp) -> bool:
    return app.store_watch is not None and app.store_watch._watcher is not None


async def test_write_elsewhere_reaches_the_screen(sqlite_store: Store, colleague: Store) -> None:
    pem = pem_spki(rsa_key(0))
    app = WatchingApp(sqlite_store)
    async with app.run_test() as pilot:
        assert await wait_for(pilot, lambda: watch_ready(app), timeout=2.0)
        await pilot.pause(2 * INTERVAL)
        assert app.listing.changes == []  # nothing written: no message
        written = time.monotonic()
        services(colleague).consumers.add(key="jira:1", name="JIRA", public_key=pem)
        assert await wait_for(pilot, lambda: bool(app.listing.changes), timeout=2.0), \
            "the write was not reported within 2 s"
        assert app.listing.changes[0] - written < 2.0
        # Polls run in thread workers of their own group, not on the UI thread.
        assert all(w.group == GROUP for w in app.workers if w.name.startswith("watching"))
        await pilot.pause(2 * INTERVAL)
        assert len(app.listing.changes) == 1  # one write, one message
        assert app.failures == []


async def test_replaced_file_is_reported_once(sqlite_store: Store) -> None:
    app = WatchingApp(sqlite_store)
    async with app.run_test() as pilot:
        assert await wait_for(pilot, lambda: watch_ready(app), timeout=2.0)
        path = sqlite_store.path
        assert path is not None
        path.rename(path.with_name("moved.db"))
        assert await wait_for(pilot, lambda: bool(app.failures), timeout=2.0)
        await pilot.pause(2 * INTERVAL)
        assert len(app.failures) == 1  # once, and the watch stopped
        assert "was removed" in str(app.failures[0].error)
        assert app.store_watch is not None and app.store_watch._stopped


async def test_a_store_file_removed_under_the_console_stops_it(sqlite_store: Store) -> None:
    """README ("A store removed or replaced under a running program"): the console stops
    (exit 1) and says why, rather than showing a list that is no longer the store."""
    from tests.tui_support import open_console
    from tui_oauth.core.errors import StoreGoneError

    async with open_console(sqlite_store) as (app, pilot):
        path = sqlite_store.path
        assert path is not None
        path.rename(path.with_name("moved.db"))
        assert await wait_for(pilot, lambda: app.open_error is not None, timeout=5)
        assert isinstance(app.open_error, StoreGoneError)
        assert app.return_code == 1
