"""The console's main page: header, tabs, keys, help, palette, error handling, sizes."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import TabbedContent

from tests.tui_support import open_console, screen_text, settle, wait_for
from tui_oauth.core.errors import StoreError
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store
from tui_oauth.tui.app import OAuthAdminApp, keymap_from_env, make_app
from tui_oauth.tui.modals.error import ErrorModal
from tui_oauth.tui.modals.help import HelpModal
from tui_oauth.tui.screens.main import MainScreen
from tui_oauth.tui.widgets.header_bar import HeaderBar
from tui_oauth.tui.widgets.table import Table
from tui_oauth.tui.widgets.virtual_table import VirtualTable


async def test_header_tabs_and_tab_keys(demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        text = screen_text(pilot)
        assert "sqlite:////srv/oauth/tui-oauth.db" in text
        assert "keyring: MemoryKeyring" in text
        assert "READ-ONLY" not in text
        # A long backend name is shown whole where the store's leaves room for it (at
        # 120 columns it was cut at 30% of the line: "SecretService (gnome-key…").
        header = app.screen.query_one(HeaderBar)
        header._show_keyring("SecretService (gnome-keyring)")
        await pilot.resize_terminal(120, 30)
        await pilot.pause()
        first = screen_text(pilot).splitlines()[0]
        assert "keyring: SecretService (gnome-keyring)" in first
        assert "sqlite:////srv/oauth/tui-oauth.db" in first
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        tabs = app.screen.query_one(TabbedContent)
        assert tabs.active == "consumers"
        table = app.screen.query_one("#consumers-table", VirtualTable)
        assert table.row_count == 3
        assert "jira:6f1c2a4e" in text and "Partner portal" in text
        for key, tab in (("2", "info"), ("3", "providers"), ("1", "consumers"),
                         ("]", "info"), ("]", "providers"), ("]", "consumers"),
                         ("[", "providers"), ("[", "info")):
            await pilot.press(key)
            assert tabs.active == tab, key
        await settle(pilot)
        assert "tui-oauth:2f9c1d7e" in screen_text(pilot)
        await pilot.press("q")
    assert app.return_code == 0


async def test_jkgG_move_in_lists(demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        table = app.screen.query_one("#consumers-table", VirtualTable)
        assert table.cursor_row == 0
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("G")
        assert table.cursor_row == 2


async def test_filter_and_escape_clears(demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        table = app.screen.query_one("#consumers-table", VirtualTable)
        await pilot.press("slash", *"wiki")  # matches Confluence's description
        await settle(pilot)
        assert table.row_count == 1
        assert table.current_key == "confluence:13549426"
        assert "1 consumer matching “wiki”" in screen_text(pilot)
        await pilot.press("enter")  # back to the list, filter kept
        assert app.focused is table
        assert table.row_count == 1
        assert await wait_for(pilot, lambda: "esc Clear filter" in screen_text(pilot))
        await pilot.press("escape")  # in the filtered list: the whole list again
        await settle(pilot)
        assert table.row_count == 3 and app.focused is table
        assert await wait_for(pilot, lambda: "Clear filter" not in screen_text(pilot))
        await pilot.press("slash", "escape")
        await settle(pilot)
        assert table.row_count == 3
        assert app.focused is table
        # providers filter too
        await pilot.press("3", "slash", *"crm")
        await settle(pilot)
        providers = app.screen.query_one("#providers-table", VirtualTable)
        assert providers.row_count == 1 and providers.current_key == "Legacy CRM"


async def test_sort_cycles_columns_and_reverses(demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        table = app.screen.query_one("#consumers-table", VirtualTable)

        def keys() -> list[str]:
            return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]

        assert keys() == sorted(keys())
        await pilot.press("s")  # name
        await settle(pilot)
        assert [str(table.get_row_at(i)[1]) for i in range(3)] == [
            "Confluence", "JIRA", "Partner portal"]
        await pilot.press("S")
        await settle(pilot)
        assert [str(table.get_row_at(i)[1]) for i in range(3)] == [
            "Partner portal", "JIRA", "Confluence"]
        assert "sorted by name ↓" in screen_text(pilot)


async def test_help_lists_every_binding_of_the_screen(demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpModal)
        described = {(e.section, e.description) for e in app.screen.entries}
        for expected in [("Consumers", "Add"), ("Consumers", "Filter"), ("Consumers", "Sort"),
                         ("Consumer Info", "Export"), ("Service Providers", "Reveal"),
                         ("Main page", "Refresh"), ("Lists", "Down"), ("Everywhere", "Quit"),
                         ("Everywhere", "Audit")]:
            assert expected in described
        # Outside a form the letters work, and ctrl+q (which works everywhere) is named.
        keys = {e.binding.id: e.help_keys for e in app.screen.entries
                if e.section == "Everywhere"}
        assert (keys["app.quit"], keys["app.help"], keys["app.audit"]) == ("q, ^q", "?", "l")
        assert "Every action by name" in screen_text(pilot) or "ctrl+p" in screen_text(pilot)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_palette_offers_every_action_by_name(demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for title in ["Consumers: Add", "Consumers: Edit", "Consumers: Remove",
                      "Consumers: Filter", "Consumer Info: Export", "Consumer Info: Copy key",
                      "Consumer Info: New key pair", "Service Providers: Add",
                      "Service Providers: Reveal", "Main page: Refresh", "Everywhere: Audit",
                      "Everywhere: Quit"]:
            assert title in titles
        # Running one switches to its tab and runs it.
        command = next(c for c in app.get_system_commands(app.screen)
                       if c.title == "Service Providers: Add")
        command.callback()
        await settle(pilot)
        assert type(app.screen).__name__ == "ProviderFormScreen"


async def test_palette_opens_with_ctrl_p(demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert type(app.screen).__name__ == "CommandPalette"
        await pilot.press(*"reveal")
        await pilot.pause(0.3)
        assert "Service Providers: Reveal" in screen_text(pilot)


def test_every_binding_has_an_id() -> None:
    import importlib
    import pkgutil

    from textual.binding import Binding
    from textual.dom import DOMNode

    import tui_oauth.tui as pkg

    seen = 0
    for mod in pkgutil.walk_packages(pkg.__path__, "tui_oauth.tui."):
        module = importlib.import_module(mod.name)
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, DOMNode)
                    and obj.__module__ == module.__name__):
                for b in obj.__dict__.get("BINDINGS", []):
                    assert isinstance(b, Binding) and b.id, f"{obj.__name__}: {b}"
                    seen += 1
    assert seen > 40


def test_keymap_from_environment() -> None:
    assert keymap_from_env("consumers.add=A; app.quit=ctrl+q;bad") == {
        "consumers.add": "A", "app.quit": "ctrl+q"}


async def test_keys_can_be_remapped_by_binding_id(demo_store: Store) -> None:
    app = OAuthAdminApp(demo_store, keymap={"consumers.add": "A"})
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        await pilot.press("A")
        await pilot.pause()
        assert type(app.screen).__name__ == "AddRouteModal"


async def test_a_failing_worker_shows_words_not_a_traceback(
        demo_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    async with open_console(demo_store) as (app, pilot):

        def broken(*args: object, **kwargs: object) -> None:
            raise StoreError("The database went away [bold]now[/bold].", hint="Try again.")

        monkeypatch.setattr(services(demo_store).consumers, "window", broken)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert app.is_running
        messages = [n.message for n in app._notifications]
        assert any("The database went away [bold]now[/bold]. Try again." in str(m)
                   for m in messages)

        def crash(*args: object, **kwargs: object) -> None:
            raise ZeroDivisionError("division by zero")

        monkeypatch.setattr(services(demo_store).consumers, "window", crash)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert isinstance(app.screen, ErrorModal)
        assert "ZeroDivisionError: division by zero" in screen_text(pilot)
        assert "Traceback" not in screen_text(pilot)
        await pilot.press("escape")
        assert app.is_running


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_usable_at_80x24_and_120x40(demo_store: Store, size: tuple[int, int]) -> None:
    app = make_app(demo_store)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        text = screen_text(pilot)
        assert "Consumers" in text and "Add" in text and "Quit" in text
        assert "jira:6f1c2a4e" in text
        await pilot.press("2")
        await settle(pilot)
        assert "Consumer key" in screen_text(pilot)
        await pilot.press("3")
        await settle(pilot)
        assert "Example Inc" in screen_text(pilot)
        await pilot.press("1", "a", "m")
        await settle(pilot)
        text = screen_text(pilot)
        assert "Consumer key" in text and "Add consumer" in text  # the save button shows


def test_no_color_is_respected(demo_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert make_app(demo_store).no_color


async def test_works_on_postgresql_too(store: Store) -> None:
    services(store).consumers.add(key="jira:42", name="JIRA", shared_secret="x",
                                  signature_method="HMAC-SHA1")
    async with open_console(store) as (app, pilot):
        assert app.screen.query_one("#consumers-table", VirtualTable).current_key == "jira:42"
        await pilot.press("2")
        await settle(pilot)
        assert "tui-oauth:" in screen_text(pilot)
        await pilot.press("l")
        await settle(pilot)
        assert "consumer.add" in screen_text(pilot)


async def test_table_columns_fit_new_rows_at_once() -> None:
    """Columns widen as rows are added, not only when the table next goes idle (a
    screen drawn in between showed every column at its header's width: "ji…")."""
    from textual.app import App, ComposeResult


    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield Table(id="t")

    app = One()
    async with app.run_test(size=(100, 10)):
        table = app.query_one(Table)
        table.add_columns("Key", "Created")
        table.add_row("jira:6f1c2a4e-1b7d", "2026-11-23", key="k")
        key_col, created_col = table.ordered_columns
        assert key_col.content_width >= len("jira:6f1c2a4e-1b7d")
        assert created_col.content_width >= len("2026-11-23")


async def test_a_superseded_job_takes_its_loading_indicator_away() -> None:
    """A quiet refresh (no indicator) replacing a load in the same group: the load's
    indicator goes too (it stayed, and the tab's keys left the footer, after a key
    rotation met a change seen by the store watch)."""
    import threading

    from textual.app import App, ComposeResult
    from textual.widgets import Static

    from tui_oauth.tui.jobs import run_job

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield Static("x", id="box")

    gate = threading.Event()
    got: list[object] = []
    app = One()
    async with app.run_test() as pilot:
        box = app.query_one("#box", Static)
        run_job(box, lambda: gate.wait(5), got.append, doing="slow", group="g", loading=box)
        await pilot.pause()
        assert box.loading
        run_job(box, lambda: "quiet", got.append, doing="quiet", group="g")
        gate.set()
        assert await wait_for(pilot, lambda: not box.loading and got == ["quiet"], timeout=5)
        run_job(box, lambda: gate.wait(5), got.append, doing="slow", group="g", loading=box)
        gate.clear()
        run_job(box, lambda: gate.wait(5), got.append, doing="load", group="g", loading=box)
        await pilot.pause()
        assert box.loading  # the newer job's own indicator stays while it runs
        gate.set()
        assert await wait_for(pilot, lambda: not box.loading and len(got) == 2, timeout=5)


async def test_the_first_screen_is_painted_before_the_store_opens(
        demo_store: Store) -> None:
    """The console paints its tabs while the store opens behind them (issue 10: the
    database layer is imported after the first screen), then shows the rows."""
    import threading

    from tui_oauth.tui.pending import PendingStore

    gate = threading.Event()

    def opener() -> Store:
        gate.wait(5)
        return demo_store

    pending = PendingStore(opener, url="postgresql+psycopg://app:s3cret@db/oauth",
                           read_only=False)
    app = make_app(pending)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        text = screen_text(pilot)
        assert "1 Consumers" in text and "Key" in text and "Signature" in text
        assert "postgresql+psycopg://app:***@db/oauth" in text and "s3cret" not in text
        assert not app.store_ready
        gate.set()
        table = app.screen.query_one("#consumers-table", VirtualTable)
        assert await wait_for(pilot, lambda: table.row_count == 3)
        assert app.store is demo_store


def test_a_store_that_cannot_open_closes_the_console_and_is_said(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tui_oauth.tui import run_console
    from tui_oauth.tui.pending import PendingStore

    def opener() -> Store:
        raise StoreError("There is no tui-oauth store at /nowhere.")

    async def run(self: OAuthAdminApp, **kwargs: object) -> None:
        async with self.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.5)

    monkeypatch.setattr(OAuthAdminApp, "run", lambda self: asyncio.run(run(self)))
    with pytest.raises(StoreError, match="no tui-oauth store"):
        run_console(PendingStore(opener, url="sqlite:////nowhere", read_only=False))
