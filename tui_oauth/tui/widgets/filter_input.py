"""The `/` filter line above a list: typing filters, enter goes back to the list, Esc clears."""

from __future__ import annotations

from typing import Any, cast

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class FilterInput(Input):
    BINDINGS = [
        Binding("escape", "clear_filter", "Clear filter", id="filter.clear",
                tooltip="Empty the filter and go back to the list"),
    ]

    class Cleared(Message):
        """Esc was pressed in the filter."""

    def __init__(self, *, placeholder: str, id: str | None = None) -> None:
        super().__init__(placeholder=placeholder, id=id, classes="filter")

    def open(self) -> None:
        self.add_class("-shown")
        self.focus()

    def close(self) -> None:
        self.remove_class("-shown")

    def action_clear_filter(self) -> None:
        self.value = ""
        self.close()
        self.post_message(self.Cleared())


class FilterLine:
    """A FilterInput (id ``FILTER_ID``) over a list (``table``), in a tab or a screen:
    `/` opens it, typing reads the list again (:meth:`filter_changed`), enter goes back
    to the list (an empty filter closes), Esc empties it, reads the whole list again and
    goes back to the list.  What it is mixed into defines ``table`` and
    :meth:`filter_changed`.  Textual calls the handlers of every class of the MRO:
    what it is mixed into defines none of these handlers again."""

    FILTER_ID: str

    @property
    def _host(self) -> Any:  # the tab or screen this is mixed into
        return self

    @property
    def filter_input(self) -> FilterInput:
        return cast(FilterInput, self._host.query_one(f"#{self.FILTER_ID}", FilterInput))

    @property
    def filter_text(self) -> str:
        return self.filter_input.value

    def action_filter(self) -> None:
        self.filter_input.open()

    def filter_changed(self, text: str) -> None:
        """The filter is now ``text`` (typed, or emptied with Esc): read the list again."""
        raise NotImplementedError

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == self.FILTER_ID:
            event.stop()
            self.filter_changed(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == self.FILTER_ID:
            event.stop()
            if not event.value:
                event.input.remove_class("-shown")
            self._focus_list()

    def on_filter_input_cleared(self, event: FilterInput.Cleared) -> None:
        event.stop()
        self.filter_changed("")
        self._focus_list()

    def _focus_list(self) -> None:
        """Now, so that keys typed after enter or Esc go to the list, not to the filter
        again (a burst of Esc: clear, then leave).  A list still loading cannot take
        focus: then nothing has it (the list's keys are the screen's and the app's
        meanwhile), and the list takes it once loaded (the tab's or screen's doing)."""
        table = self._host.table
        if table.focusable:
            table.focus()
        else:
            self._host.screen.set_focus(None)


class FilteredList(FilterLine):
    """For a tab with a FilterInput over its ``table`` (a VirtualTable, whose loads and
    moves update the tab's status line, ``_status()``): the filter line's keys
    (:class:`FilterLine`), and Esc in the list while it is filtered clears the filter
    (the tab binds ``escape`` to ``unfilter``).  The tab (a Widget) defines ``table``,
    ``reload()`` and the filter's id in ``FILTER_ID``."""

    def filter_changed(self, text: str) -> None:
        self._host.reload()
        if bool(text) != bool(getattr(self, "_was_filtered", False)):
            # Esc (clear filter) comes or goes in the footer.  Redrawing the footer
            # costs tens of ms: not on every key, and after the rows are shown.
            self._was_filtered = bool(text)
            self._host.set_timer(0.2, self._host.screen.refresh_bindings)

    # The list (a VirtualTable) ---------------------------------------------------

    def refresh_rows(self) -> None:
        """The store changed elsewhere: read what is shown again, keeping the cursor."""
        self._host.table.load()

    def list_loaded(self) -> None:
        """What a tab does once its list is read (a hook)."""

    def on_virtual_table_loaded(self, event: Any) -> None:
        event.stop()
        tab = self._host
        tab.list_loaded()
        if (tab.screen.is_current and tab.app.focused is None
                and getattr(tab.screen, "active_tab", None)
                == self.FILTER_ID.removesuffix("-filter")):
            tab.table.focus()  # nothing has focus: the list in front takes it
        tab._status()

    def on_virtual_table_highlighted(self, event: Any) -> None:
        event.stop()
        self._host._status()

    def action_unfilter(self) -> None:
        """Esc in the list while it is filtered: the whole list again."""
        self.filter_input.action_clear_filter()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "unfilter":
            return bool(self.filter_text)  # offered (and in the footer) only when filtered
        return cast(bool | None, super().check_action(action, parameters))  # type: ignore[misc]
