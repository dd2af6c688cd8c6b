"""The virtual list (issue 9): rows drawn only when on screen, read a window at a time,
columns fitted to the width, loads that never pile up, the cursor kept by key."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from textual.app import App, ComposeResult
from textual.pilot import Pilot

from tests.tui_support import screen_text, settle, wait_for
from tui_oauth.tui.widgets.virtual_table import (
    KEEP_PAGES,
    PAGE,
    Column,
    FuncSource,
    Row,
    VirtualTable,
    fit_columns,
    shorten,
)

COLUMNS = [Column("Key", min=12, shorten="middle"), Column("Name", min=6),
           Column("Tokens", align="right", drop=1)]


class Listing:
    """A list of rows in memory that counts what it is asked (a stand-in for a service:
    the real ones are tested over SQLite and PostgreSQL in tests/service/test_services_*)."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)
        self.windows: list[tuple[int, int]] = []
        self.counts = 0
        self.lock = threading.Lock()
        self.gate: threading.Event | None = None
        self.asked: list[str] = []  # the filter of each count or window

    def source(self, text: str = "") -> FuncSource:
        def rows() -> list[str]:
            return [k for k in self.keys if text in k]

        def count() -> int:
            if self.gate is not None:
                self.gate.wait(5)
            with self.lock:
                self.counts += 1
                self.asked.append(text)
            return len(rows())

        def window(start: int, size: int, total: int | None) -> list[Row]:
            if self.gate is not None:
                self.gate.wait(5)
            with self.lock:
                self.windows.append((start, size))
                self.asked.append(text)
            return [Row(k, (k, f"name of {k}", str(i))) for i, k in
                    enumerate(rows()[start:start + size], start)]

        def position(key: str) -> int | None:
            found = rows()
            return found.index(key) if key in found else None

        return FuncSource(count, window, position)


class ListApp(App[None]):
    def __init__(self, listing: Listing) -> None:
        super().__init__()
        self.listing = listing

    def compose(self) -> ComposeResult:
        yield VirtualTable(COLUMNS, id="list")

    def on_mount(self) -> None:
        table = self.query_one(VirtualTable)
        table.focus()
        table.load(self.listing.source())


@asynccontextmanager
async def open_list(listing: Listing, size: tuple[int, int] = (60, 12)
                    ) -> AsyncIterator[tuple[VirtualTable, Pilot[None]]]:
    """A ListApp over ``listing``, run headless and settled: its table and the pilot."""
    app = ListApp(listing)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        yield app.query_one(VirtualTable), pilot


async def pause_until(pilot: Pilot[None], condition: Callable[[], bool]) -> bool:
    """Like tui_support.wait_for, without waiting for the workers (one is held here)."""
    for _ in range(150):
        if condition():
            return True
        await pilot.pause(0.02)
    return condition()


def keys(n: int) -> list[str]:
    return [f"app:{i:07d}" for i in range(n)]


async def test_a_hundred_thousand_rows_read_a_window_at_a_time() -> None:
    listing = Listing(keys(100_000))
    async with open_list(listing) as (table, pilot):
        assert table.row_count == 100_000
        assert "▶ app:0000000" in screen_text(pilot)
        assert listing.windows == [(0, PAGE)]  # one page read, not 100,000 rows
        await pilot.press("G")
        await settle(pilot)
        assert table.cursor_row == 99_999 and table.current_key == "app:0099999"
        assert "▶ app:0099999" in screen_text(pilot)
        assert listing.windows[-1] == (99_900, PAGE)
        await pilot.press("g", *["pagedown"] * 3, "j", "k", "j")
        await settle(pilot)
        assert table.cursor_row == 3 * 10 + 1  # a page: the 11 rows shown less one
        assert f"▶ app:{31:07d}" in screen_text(pilot)
        # Pages scrolled past are let go: memory stays the same whatever the size.
        for _ in range(KEEP_PAGES + 4):
            table.move_cursor(table.cursor_row + 5 * PAGE)
            await settle(pilot, rounds=1)
        assert table.current_key == f"app:{table.cursor_row:07d}"
        assert len(table._pages) <= KEEP_PAGES
        assert len(listing.windows) < 2 * (KEEP_PAGES + 4) + 4


async def test_the_cursor_stays_on_its_row_when_rows_come_before_it() -> None:
    listing = Listing(keys(500))
    async with open_list(listing) as (table, pilot):
        table.move_cursor(250)
        await settle(pilot)
        top = table.scroll_y
        listing.keys[0:0] = [f"aaa:{i}" for i in range(3)]  # added elsewhere
        table.load()
        await settle(pilot)
        assert table.row_count == 503
        assert table.current_key == "app:0000250" and table.cursor_row == 253
        assert table.scroll_y - top == 3  # on the same line of the screen
        listing.keys.remove("app:0000250")  # removed elsewhere: the cursor stays put
        table.load()
        await settle(pilot)
        assert table.cursor_row == 253 and table.current_key == "app:0000251"


async def test_loads_never_pile_up_only_the_newest_waits() -> None:
    """Seven filter keys while the database is slow: one load runs, the newest waits,
    the five between are never read (issue 9: seven keys started seven full reloads)."""
    listing = Listing(keys(1000))
    async with open_list(listing) as (table, pilot):
        listing.gate = threading.Event()
        listing.asked.clear()
        loads = table.loads
        texts = ["a", "ap", "app", "app:", "app:0", "app:00", "app:0000999"]
        for text in texts:
            table.load(listing.source(text))
        listing.gate.set()
        await settle(pilot)
        assert await wait_for(pilot, lambda: table.row_count == 1)
        assert set(listing.asked) == {"a", "app:0000999"}  # the five between: never
        assert table.loads - loads == 1  # the first, superseded, is not shown
        assert table.current_key == "app:0000999"


async def test_columns_fit_80_cells_keys_shortened_in_the_middle() -> None:
    long_key = "jira:6f1c2a4e-1b3d-4c5e-9f3f-0d2b5e6a7f81-with-a-long-tail"
    listing = Listing([long_key, "short"])
    async with open_list(listing, size=(40, 8)) as (table, pilot):
        lines = screen_text(pilot).splitlines()
        first = next(line for line in lines if line.startswith("▶"))
        assert "jira:6f1c" in first and "…" in first and first.rstrip().endswith("0")
        assert all(cell_len(line) <= 40 for line in lines)
        table.styles.width = 24  # too narrow for Tokens: left out
        await settle(pilot)
        assert "Tokens" not in screen_text(pilot)


async def test_text_from_the_store_is_shown_as_text() -> None:
    listing = Listing(["[bold]x[/bold]\x1b[31m"])
    async with open_list(listing, size=(60, 8)) as (_, pilot):
        text = screen_text(pilot)
        assert "[bold]x[/bold]" in text and "\x1b" not in text


def test_shorten() -> None:
    assert shorten("abcdefghij", 10) == "abcdefghij"
    assert shorten("abcdefghij", 7) == "abcdef…"
    assert shorten("abcdefghij", 7, "middle") == "abc…hij"
    assert shorten("日本語のキー", 7, "middle") == "日…キー"  # wide characters by cells


@given(st.lists(st.integers(0, 80), min_size=3, max_size=3), st.integers(10, 200))
def test_fitted_columns_never_overflow_unless_the_minimum_does(natural: list[int],
                                                               width: int) -> None:
    widths = fit_columns(COLUMNS, natural, width)
    shown = [w for w in widths if w]
    used = 2 + sum(shown) + len(shown) - 1
    minimum = 2 + 12 + 1 + 6
    assert used <= width or used == minimum
    assert widths[0] >= 12 and widths[1] >= 6  # the columns that may not go


async def test_rows_show_before_their_count_and_typing_never_waits_for_it() -> None:
    """A filtered list shows its first rows at once and counts them after; the next
    filter starts beside that count instead of queuing behind it."""
    listing = Listing(keys(1000))
    async with open_list(listing) as (table, pilot):
        gate = threading.Event()
        slow = listing.source("app:0000")  # 1000 rows: more than a page, so counted
        table.load(FuncSource(lambda: gate.wait(5) and slow.count(), slow.window,
                              slow.position))
        assert await pause_until(pilot, lambda: table.counting)
        assert table.row_count == PAGE and table.current_key == "app:0000000"
        table.load(listing.source("app:000099"))  # 10 rows: one page, no count
        assert await pause_until(pilot, lambda: table.row_count == 10 and not table.counting)
        gate.set()
        await settle(pilot)
        assert table.row_count == 10  # the late count of the older list changes nothing
