"""A list that draws only the rows on screen and asks the database for them a window
at a time: 100,000 consumers open, sort and jump to the end as fast as ten do.

The widget knows rows only through a :class:`Source` (a service's ``count``,
``window`` and ``position`` behind a few lambdas), called in worker threads,
never on the UI thread.  It keeps a few pages of rows around the view, draws a
row not read yet as ``…`` and reads its page; so memory and the work of a key
press stay the same whatever the size of the list (``render_line`` on a
``ScrollView``, as Toolong draws its logs).

Columns fit the width: wide ones are shortened (a key in the middle, so that its
start and end stay readable), and optional ones are left out when even that does
not fit.  The row under the cursor is marked with ``▶`` as well as its colour,
so that it can be told under ``NO_COLOR`` too.  Text is shown as text: every cell
goes through :func:`tui_oauth.core.text.visible`, never through markup.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from tui_oauth.core.text import visible
from tui_oauth.tui.messages import WorkFailed
from tui_oauth.tui.widgets.moves import LIST_MOVES

PAGE = 100  # rows read at once
KEEP_PAGES = 12  # pages kept in memory (the view's and the most recently used)
CURSOR = "▶"


@dataclass(frozen=True)
class Column:
    label: str
    #: narrowest width it is shown at; 0 = at least the label's width
    min: int = 0
    #: widest it grows to (None: as wide as its widest cell)
    max: int | None = None
    #: where a long value loses characters: keys in the middle, prose at the end
    shorten: Literal["end", "middle"] = "end"
    #: optional columns go first when the width is short (higher first); 0 = always
    drop: int = 0
    align: Literal["left", "right"] = "left"


@dataclass(frozen=True)
class Row:
    key: str
    cells: tuple[str, ...]
    #: what the row stands for (a service's summary), for the screen's actions
    data: Any = field(default=None, compare=False)


class Source(Protocol):
    """What the table asks of the list it shows (each call runs in a thread)."""

    def count(self) -> int: ...

    def window(self, start: int, size: int, total: int | None) -> Sequence[Row]:
        """``total`` (when known) lets a window near the end be read from the end."""
        ...

    def position(self, key: str) -> int | None: ...


@dataclass
class FuncSource:
    """A :class:`Source` from three functions (a service's, with the filter and sort bound)."""

    count_fn: Callable[[], int]
    window_fn: Callable[[int, int, int | None], Sequence[Row]]
    position_fn: Callable[[str], int | None] = field(default=lambda key: None)

    def count(self) -> int:
        return self.count_fn()

    def window(self, start: int, size: int, total: int | None) -> Sequence[Row]:
        return self.window_fn(start, size, total)

    def position(self, key: str) -> int | None:
        return self.position_fn(key)


def shorten(text: str, width: int, how: Literal["end", "middle"] = "end") -> str:
    """``text`` in at most ``width`` cells, with ``…`` where characters were left out."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    if how == "middle":
        start = set_cell_size(text, width // 2).rstrip(" ")
        return start + "…" + _last_cells(text, width - 1 - cell_len(start))
    return set_cell_size(text, width - 1).rstrip(" ") + "…"


def _last_cells(text: str, width: int) -> str:
    out, used = "", 0
    for ch in reversed(text):
        w = cell_len(ch)
        if used + w > width:
            break
        out, used = ch + out, used + w
    return out


def fit_columns(columns: Sequence[Column], natural: Sequence[int], width: int) -> list[int]:
    """Each column's width (0: left out) for ``width`` cells, a space between columns
    and a 2-cell gutter for the cursor mark."""
    mins = [max(c.min or cell_len(c.label), 1) for c in columns]
    widths = [max(n, m) if c.max is None else min(max(n, m), max(c.max, m))
              for c, n, m in zip(columns, natural, mins, strict=True)]
    shown = [True] * len(columns)

    def needed(ws: Sequence[int]) -> int:
        kept = [w for w, s in zip(ws, shown, strict=True) if s]
        return 2 + sum(kept) + max(len(kept) - 1, 0)

    # Leave out optional columns while even their narrowest does not fit.
    for i in sorted(range(len(columns)), key=lambda i: -columns[i].drop):
        if needed(mins) <= width or columns[i].drop == 0:
            break
        shown[i] = False
    # Then take cells from the widest column that can give one, until it fits.
    excess = needed(widths) - width
    while excess > 0:
        spare = [(widths[i] - mins[i], i) for i in range(len(columns))
                 if shown[i] and widths[i] > mins[i]]
        if not spare:
            break
        _, i = max(spare)
        widths[i] -= 1
        excess -= 1
    return [w if s else 0 for w, s in zip(widths, shown, strict=True)]


class _TableMessage(Message):
    def __init__(self, table: VirtualTable) -> None:
        super().__init__()
        self.table = table

    @property
    def control(self) -> VirtualTable:
        return self.table


class VirtualTable(ScrollView, can_focus=True):
    """A row-cursor table over a :class:`Source`; moves like k9s: j/k, g/G, pages."""

    COMPONENT_CLASSES = {
        "virtual-table--header", "virtual-table--cursor", "virtual-table--even-row",
        "virtual-table--placeholder",
    }
    DEFAULT_CSS = """
    VirtualTable {
        height: 1fr;
        overflow-x: hidden;
        overflow-y: auto;
        background: $surface;
        color: $foreground;
        &:focus { background-tint: $foreground 5%; }
        & > .virtual-table--header { text-style: bold; background: $panel; }
        & > .virtual-table--even-row { background: $surface-lighten-1 50%; }
        & > .virtual-table--placeholder { color: $text-muted; }
        & > .virtual-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
        }
        &:focus > .virtual-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """
    BINDINGS = LIST_MOVES

    class Highlighted(_TableMessage):
        """The cursor is on another row (``key`` None while its row is being read)."""

        def __init__(self, table: VirtualTable, key: str | None) -> None:
            super().__init__(table)
            self.key = key

    class Selected(_TableMessage):
        """A click on the row under the cursor (enter is the screen's to bind)."""

        def __init__(self, table: VirtualTable, key: str) -> None:
            super().__init__(table)
            self.key = key

    class Loaded(_TableMessage):
        """A (re)load finished: ``row_count`` rows match now."""

        def __init__(self, table: VirtualTable, row_count: int) -> None:
            super().__init__(table)
            self.row_count = row_count

    def __init__(self, columns: Sequence[Column], *, id: str | None = None,
                 doing: str = "Reading the list") -> None:
        super().__init__(id=id)
        self.columns = list(columns)
        self.doing = doing
        self.row_count = 0
        self.cursor_row = 0
        self.loaded = False  # a first load has finished
        self.loads = 0  # loads finished (a benchmark waits on it)
        self.shows = 0  # times new rows were put on screen (early or finished)
        self.counting = False  # rows shown, their number still being counted
        self._early = 0  # the generation whose first rows were shown before the count
        self._source: Source | None = None
        self._generation = 0
        self._pages: OrderedDict[int, list[Row]] = OrderedDict()
        self._reading: set[int] = set()
        self._natural = [cell_len(c.label) for c in columns]
        self._fitted: tuple[tuple[int, tuple[int, ...]], list[int]] | None = None
        # Loads running: generation -> counting (its rows shown, its length being
        # counted).  A new load starts when none runs, or beside one that only counts:
        # never more than two at once, and typing never waits for a count.
        self._loads_running: dict[int, bool] = {}
        self._next_load: tuple[Source, str | None, bool] | None = None
        self._last_key: str | None = None

    # Loading -----------------------------------------------------------------

    def load(self, source: Source | None = None, *, keep: str | None = None,
             top: bool = False) -> None:
        """Read the list (again): from ``source`` (a new filter or sort) or the current
        one (a refresh).  The cursor stays on the row ``keep`` (default: the current
        row's) if it is still listed, else at the same place; ``top`` goes to the first
        row.  Loads never pile up: while one runs, only the newest request waits."""
        source = source or self._source
        if source is None:
            return
        if keep is None and not top:
            keep = self.current_key
        self._next_load = (source, keep, top)
        self._maybe_start()

    def _maybe_start(self) -> None:
        if self._next_load is not None and len(self._loads_running) < 2 and all(
                self._loads_running.values()):
            self._start_next_load()

    def _start_next_load(self) -> None:
        if self._next_load is None:
            return
        source, keep, top = self._next_load
        self._next_load = None
        self._generation += 1
        generation = self._generation
        self._loads_running[generation] = False
        cursor = 0 if top else self.cursor_row
        scroll = 0 if top else int(self.scroll_y)
        height = max(self.size.height - 1, 1)

        def place(row: int, total: int) -> int:
            """The first row on screen: the cursor keeps its line if it can."""
            if scroll <= cursor < scroll + height:
                top_row = row - (cursor - scroll)
            elif scroll <= row < scroll + height:
                top_row = scroll
            else:
                top_row = row - height // 2
            return max(0, min(top_row, total - height))

        def work() -> tuple[int, int, int, dict[int, list[Row]]]:
            at = source.position(keep) if keep is not None else None
            row = max(at if at is not None else cursor, 0)
            first = row // PAGE
            rows = list(source.window(first * PAGE, PAGE, None))
            if len(rows) < PAGE and (rows or first == 0):
                total = first * PAGE + len(rows)  # the list ends on this page: no count
            else:
                if rows:  # show these rows now; counting a filtered list scans it
                    early = first * PAGE + len(rows)
                    self.app.call_from_thread(self._shown_early, generation, source, row,
                                              place(row, early), early, first, rows)
                total = source.count()
            row = max(0, min(row, total - 1))
            top_row = place(row, total)
            pages = {first: rows} if rows else {}
            for page in sorted({row // PAGE, top_row // PAGE,
                                min(top_row + height, max(total - 1, 0)) // PAGE}):
                if page * PAGE < total and page not in pages:
                    pages[page] = list(source.window(page * PAGE, PAGE, total))
            return total, row, top_row, pages

        def body() -> None:
            try:
                outcome: tuple[Callable[..., None], Any] = (self._loaded, work())
            except Exception as exc:
                outcome = (self._load_failed, exc)
            if not get_current_worker().is_cancelled:
                with suppress(RuntimeError):  # the app is closing
                    self.app.call_from_thread(outcome[0], generation, source, outcome[1])

        self.run_worker(body, name=self.doing, group="virtual-table-load", thread=True,
                        exit_on_error=False)

    def _shown_early(self, generation: int, source: Source, row: int, top_row: int,
                     at_least: int, page: int, rows: list[Row]) -> None:
        """The rows around the cursor, before the count: the list is right at once and
        its length follows (``counting`` until then)."""
        if generation in self._loads_running:
            self._loads_running[generation] = True
        if generation == self._generation:
            self._early = generation
            self._show(source, at_least, row, top_row, {page: rows})
            self.counting = True
        self._maybe_start()

    def _show(self, source: Source, total: int, row: int, top_row: int,
              pages: dict[int, list[Row]]) -> None:
        self._source = source
        self._pages = OrderedDict(sorted(pages.items()))
        self._reading.clear()
        self._natural = [cell_len(c.label) for c in self.columns]
        for rows in pages.values():
            self._measure(rows)
        self.row_count = total
        self.cursor_row = row
        self.loaded = True
        self.shows += 1
        self.virtual_size = Size(self.size.width, total + 1)
        self.scroll_to(y=top_row, animate=False, immediate=True)
        self.refresh()
        self._ensure_pages()
        self._highlighted()

    def _loaded(self, generation: int, source: Source,
                result: tuple[int, int, int, dict[int, list[Row]]]) -> None:
        self._loads_running.pop(generation, None)
        if generation == self._generation:
            total, row, top_row, pages = result
            self.counting = False
            if self._early == generation:  # the cursor may have moved since: it stays
                row = max(0, min(self.cursor_row, total - 1))
                top_row = max(0, min(int(self.scroll_y), total - 1))
                pages = {**self._pages, **pages}
            self._show(source, total, row, top_row, pages)
            self.loads += 1
            self.post_message(self.Loaded(self, total))
        self._maybe_start()

    def _load_failed(self, generation: int, source: Source, exc: Exception) -> None:
        self._loads_running.pop(generation, None)
        if generation == self._generation:
            self.counting = False
            self.app.post_message(WorkFailed(exc, self.doing))
        self._maybe_start()

    def _read_page(self, page: int) -> None:
        """Read one page of the current list in a thread, unless already there or on
        the way, or scrolled out of view before its turn came."""
        source, generation = self._source, self._generation
        if source is None or page in self._pages or page in self._reading:
            return
        self._reading.add(page)
        total = self.row_count

        def body() -> None:
            if not self._page_in_view(page):
                with suppress(RuntimeError):  # the app is closing
                    self.app.call_from_thread(self._page_skipped, page)
                return
            try:
                rows: list[Row] | Exception = list(source.window(page * PAGE, PAGE, total))
            except Exception as exc:
                rows = exc
            with suppress(RuntimeError):  # the app is closing
                self.app.call_from_thread(self._page_read, generation, page, rows)

        self.run_worker(body, name=self.doing, group=f"virtual-table-page-{page}",
                        thread=True, exit_on_error=False)

    def _page_skipped(self, page: int) -> None:
        """Scrolled out of view before it was read; it may be back in view meanwhile
        (its rows then asked for it while it was still on the way)."""
        self._reading.discard(page)
        self._ensure_pages()

    def _page_read(self, generation: int, page: int, rows: list[Row] | Exception) -> None:
        self._reading.discard(page)
        if generation != self._generation:
            self._ensure_pages()  # read for a list since replaced: read what shows now
            return
        if isinstance(rows, Exception):
            self.app.post_message(WorkFailed(rows, self.doing))
            return
        self._pages[page] = rows
        self._measure(rows)
        visible_pages = self._pages_in_view()
        while len(self._pages) > KEEP_PAGES:
            old = next((p for p in self._pages if p not in visible_pages), None)
            if old is None:
                break
            del self._pages[old]
        self.refresh()
        if self.cursor_row // PAGE == page:
            self._highlighted()

    def _ensure_pages(self) -> None:
        """Ask for every page on screen (and the cursor's) not read nor on its way: after
        any move, resize or page read, so that no row stays ``…`` for want of a redraw."""
        if self._source is None or not self.row_count:
            return
        for page in sorted(self._pages_in_view() | {self.cursor_row // PAGE}):
            if page * PAGE < self.row_count:
                self._read_page(page)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self.call_later(self._ensure_pages)

    def _page_in_view(self, page: int) -> bool:
        return page in self._pages_in_view() or page == self.cursor_row // PAGE

    def _pages_in_view(self) -> set[int]:
        first = int(self.scroll_y)
        last = first + max(self.size.height - 1, 1)
        return set(range(first // PAGE, last // PAGE + 1))

    def _measure(self, rows: Sequence[Row]) -> None:
        natural = self._natural
        for row in rows:
            for i, cell in enumerate(row.cells[:len(natural)]):
                w = cell_len(visible(cell))
                if w > natural[i]:
                    natural[i] = w

    # Rows --------------------------------------------------------------------

    def row_at(self, index: int) -> Row | None:
        """The row at ``index`` if it has been read (None while it is on its way)."""
        page = self._pages.get(index // PAGE)
        if page is None:
            return None
        offset = index % PAGE
        return page[offset] if offset < len(page) else None

    @property
    def busy(self) -> bool:
        """A load runs or waits."""
        return bool(self._loads_running) or self._next_load is not None

    @property
    def current_row(self) -> Row | None:
        return self.row_at(self.cursor_row) if self.row_count else None

    @property
    def current_key(self) -> str | None:
        row = self.current_row
        return row.key if row else None

    def get_row_at(self, index: int) -> tuple[str, ...]:
        row = self.row_at(index)
        if row is None:
            raise LookupError(f"row {index} is not read yet")
        return row.cells

    def get_row(self, key: str) -> tuple[str, ...]:
        for rows in self._pages.values():
            for row in rows:
                if row.key == key:
                    return row.cells
        raise LookupError(f"no row {key!r} read")

    def select_key(self, key: str | None) -> None:
        """Put the cursor on the row with this key (found by the database if it is not
        among the rows read)."""
        if key is None:
            return
        for page, rows in self._pages.items():
            for i, row in enumerate(rows):
                if row.key == key:
                    self.move_cursor(page * PAGE + i)
                    return
        self.load(keep=key)

    # Cursor ------------------------------------------------------------------

    def move_cursor(self, row: int) -> None:
        if not self.row_count:
            return
        row = max(0, min(row, self.row_count - 1))
        if row == self.cursor_row:
            return
        self.cursor_row = row
        height = max(self.size.height - 1, 1)
        top = int(self.scroll_y)
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + height:
            self.scroll_to(y=row - height + 1, animate=False, immediate=True)
        self.refresh()
        self._ensure_pages()
        self._highlighted()

    def _highlighted(self) -> None:
        key = self.current_key
        if key != self._last_key or key is None:
            self._last_key = key
            self.post_message(self.Highlighted(self, key))

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor_row + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor_row - 1)

    def action_scroll_top(self) -> None:
        self.move_cursor(0)

    def action_scroll_bottom(self) -> None:
        self.move_cursor(self.row_count - 1)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor_row + max(self.size.height - 2, 1))

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor_row - max(self.size.height - 2, 1))

    async def _on_click(self, event: events.Click) -> None:
        index = int(self.scroll_y) + event.y - 1
        if event.y < 1 or index >= self.row_count:
            return
        was = self.cursor_row
        self.move_cursor(index)
        key = self.current_key
        if index == was and key is not None:
            self.post_message(self.Selected(self, key))

    # Drawing -----------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, self.row_count + 1)
        self.call_later(self._ensure_pages)

    def _widths(self, width: int) -> list[int]:
        """The columns' widths, fitted once per width and content, not once per line."""
        key = (width, tuple(self._natural))
        if self._fitted is None or self._fitted[0] != key:
            self._fitted = (key, fit_columns(self.columns, self._natural, width))
        return self._fitted[1]

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        widths = self._widths(width)
        if y == 0:
            style = base + self.get_component_rich_style("virtual-table--header")
            return self._strip("  ", [c.label for c in self.columns], widths, style, width)
        index = int(self.scroll_y) + y - 1
        if index >= self.row_count:
            return Strip.blank(width, base)
        row = self.row_at(index)
        style = base
        if index % 2:
            style += self.get_component_rich_style("virtual-table--even-row")
        mark = "  "
        if index == self.cursor_row:
            style += self.get_component_rich_style("virtual-table--cursor")
            mark = CURSOR + " "
        if row is None:  # its page is on its way (_ensure_pages asked for it)
            style += self.get_component_rich_style("virtual-table--placeholder")
            return self._strip(mark, ["…"], widths[:1], style, width)
        return self._strip(mark, [visible(c) for c in row.cells], widths, style, width)

    def _strip(self, mark: str, cells: Sequence[str], widths: Sequence[int], style: Style,
               width: int) -> Strip:
        # Text and the spaces around it in segments of their own: an SVG export (the
        # screenshots, the snapshot tests) drops the spaces that begin a segment.
        parts = [mark[:1], " " * (cell_len(mark) - 1)]
        for column, cell, w in zip(self.columns, cells, widths, strict=False):
            if not w:
                continue
            text = shorten(cell, w, column.shorten)
            pad = " " * (w - cell_len(text))
            parts += [pad, text, " "] if column.align == "right" else [text, pad + " "]
        segments, used = [], 0
        for part in parts:
            if part and used < width:
                part = set_cell_size(part, min(cell_len(part), width - used))
                segments.append(Segment(part, style))
                used += cell_len(part)
        if used < width:
            segments.append(Segment(" " * (width - used), style))
        return Strip(segments, width)
