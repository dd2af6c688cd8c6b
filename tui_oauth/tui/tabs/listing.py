"""What the Consumers and Service Providers tabs share: a filter line, a status line and
a list read a window at a time, whose selected row opens, edits and is removed."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label

from tui_oauth.tui.guards import ReadOnlyGuard
from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.tabs.lazy import MountedWhenShown
from tui_oauth.tui.text import plain, plural
from tui_oauth.tui.widgets.filter_input import FilteredList, FilterInput
from tui_oauth.tui.widgets.virtual_table import Column, FuncSource, VirtualTable


class ListingTab(FilteredList, ReadOnlyGuard, Vertical):
    """A tab listing one kind of record; each tab says only what differs: ``NAME``
    (its widgets' ids start with it), ``NOUN`` (what a row is, in the status line),
    ``COLUMNS``, the filter's ``PLACEHOLDER``, ``DOING`` and ``READING`` (said while
    the list, or a row for its edit form, is read); :meth:`source`,
    :meth:`status_hint`, :meth:`open_row`, :meth:`read_row` with :meth:`edit_row`,
    and :meth:`remove_row`."""

    NAME: ClassVar[str]
    NOUN: ClassVar[str]
    COLUMNS: ClassVar[list[Column]]
    PLACEHOLDER: ClassVar[str]
    DOING: ClassVar[str]
    READING: ClassVar[str]  # said while a row is read for its edit form

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "NAME" in cls.__dict__:
            cls.FILTER_ID = f"{cls.NAME}-filter"

    def __init__(self) -> None:
        super().__init__(id=f"{self.NAME}-tab")

    def compose(self) -> ComposeResult:
        yield from self._content()

    def _content(self) -> ComposeResult:
        yield FilterInput(placeholder=self.PLACEHOLDER, id=self.FILTER_ID)
        yield Label("", id=f"{self.NAME}-status", classes="status", markup=False)
        yield VirtualTable(self.COLUMNS, id=f"{self.NAME}-table", doing=self.DOING)

    @property
    def table(self) -> VirtualTable:
        return self.query_one(f"#{self.NAME}-table", VirtualTable)

    def source(self) -> FuncSource:
        """The list as it is filtered (and sorted) now, read a window at a time."""
        raise NotImplementedError

    def reload(self, select: str | None = None) -> None:
        """Read the list again (filter, sort or a change); the cursor stays on ``select``
        or on the row it was on."""
        self.table.load(self.source(), keep=select)

    def status_hint(self) -> str:
        """What the status line says after the count (the keys worth knowing)."""
        raise NotImplementedError

    def _status(self) -> None:
        table, text = self.table, self.filter_text.strip()
        shown = plural(table.row_count, self.NOUN) + (f" matching “{text}”" if text else "")
        key = table.current_key
        at = f"{table.cursor_row + 1:,}/{table.row_count:,} {key} · " if key else ""
        self.query_one(f"#{self.NAME}-status", Label).update(plain(
            f"{at}{shown} · {self.status_hint()}", multiline=False))

    # Open, edit, remove the selected row ----------------------------------

    def selected(self) -> Any:
        """The selected row's summary (from the service), or None."""
        row = self.table.current_row
        return row.data if row is not None else None

    def on_virtual_table_selected(self, event: VirtualTable.Selected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        row = self.selected()
        if row is not None:
            # No reload on the way back: what the view changed is announced (saved,
            # removed, revoked), and the store watch brings the rest.
            self.open_row(row)

    def action_edit(self) -> None:
        row = self.selected()
        if row is None:
            return
        store = store_of(self)
        run_job(self, lambda: self.read_row(store, row), self.edit_row,
                doing=self.READING, group="open", loading=self.table)

    def action_remove(self) -> None:
        row = self.selected()
        if row is not None:
            self.remove_row(row)

    def open_row(self, row: Any) -> None:
        """Show the record's view."""
        raise NotImplementedError

    def read_row(self, store: Any, row: Any) -> object:
        """The record as the edit form takes it (read in a worker)."""
        raise NotImplementedError

    def edit_row(self, record: Any) -> None:
        """Open the edit form on what :meth:`read_row` read."""
        raise NotImplementedError

    def remove_row(self, row: Any) -> None:
        """Ask, then remove the record."""
        raise NotImplementedError


class LazyListingTab(MountedWhenShown, ListingTab):
    """A listing tab hidden on the first screen: its filter, status line and list are
    mounted when it is first shown or its list is needed (a change read from the store)."""

    @property
    def table(self) -> VirtualTable:
        self.show_content()
        return super().table

    @property
    def filter_input(self) -> FilterInput:
        self.show_content()
        return super().filter_input

