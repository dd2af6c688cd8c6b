"""The base of every form: fields with their errors, save with ctrl+s, Esc cancels.

A failed save keeps every value where it was and shows each message from the
service layer under its field (or at the top when it names no field).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, TextArea

from tui_oauth.core.errors import StaleError, TuiOAuthError, ValidationError
from tui_oauth.tui.styles import FORM
from tui_oauth.tui.text import error_text, plain
from tui_oauth.tui.widgets.field import Field
from tui_oauth.tui.widgets.footer import SteadyFooter
from tui_oauth.tui.widgets.tick import keep_ticks


class FormScreen(Screen[None]):
    CSS_PATH = FORM
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="form.save", tooltip="Save the form"),
        Binding("escape", "cancel", "Cancel", id="form.cancel",
                tooltip="Close the form without saving"),
    ]
    TITLE_TEXT: ClassVar[str] = "Form"

    def __init__(self) -> None:
        super().__init__(classes="form-screen")
        self._initial: dict[int, object] | None = None

    # Changed? ----------------------------------------------------------------

    def _values(self) -> dict[int, object]:
        values: dict[int, object] = {}
        for control in self.query("Input, TextArea, Checkbox, Select").results(Widget):
            if isinstance(control, (Input, Checkbox)):
                values[id(control)] = control.value
            elif isinstance(control, TextArea):
                values[id(control)] = control.text
            elif isinstance(control, Select):
                values[id(control)] = control.value
        return values

    @on(events.Mount)
    def _remember_values(self) -> None:
        for field_input in self.query(Input):
            field_input.select_on_focus = False  # the first key must not erase the value
        keep_ticks(self, *self.query(Checkbox))  # ticked or not without colour (NO_COLOR)
        # After the fields' own on_mount (which may show a stored value escaped).
        self.call_after_refresh(self._take_snapshot)

    def _take_snapshot(self) -> None:
        if self._initial is None:
            self._initial = self._values()

    @property
    def takes_keys(self) -> bool:
        """Keys typed ahead wait (OAuthAdminApp._key_done) until the form has noted the
        values it opened with: typed before, they would count as those values."""
        return self._initial is not None

    @property
    def changed(self) -> bool:
        """Has anything been typed, ticked or chosen since the form opened?"""
        if self._initial is None:
            return False
        now = self._values()
        return any(now.get(k) != v for k, v in self._initial.items())

    def ask_discard(self, then: Callable[[], object]) -> None:
        """``then()`` at once when nothing changed, else after "discard changes?" (No
        focused: enter on its own keeps the form)."""
        if not self.changed:
            then()
            return
        from tui_oauth.tui.modals.confirm import ConfirmModal

        def answer(discard: bool | None) -> None:
            if discard:
                then()

        self.app.push_screen(ConfirmModal(
            "Discard changes?", "What you typed in this form is lost.", yes="Discard"),
            answer)

    def compose(self) -> ComposeResult:
        yield Label(plain(self.form_title(), multiline=False), id="form-title")
        yield Static("", id="form-error", markup=False)
        with VerticalScroll(id="form-body"):
            yield from self.compose_fields()
        yield Static("", id="form-warning", markup=False)
        with Horizontal(id="form-buttons"):
            yield Button(plain(self.save_label()), id="save", variant="primary")
            yield Button("Cancel", id="cancel")
        yield SteadyFooter()

    def form_title(self) -> str:
        return self.TITLE_TEXT

    def save_label(self) -> str:
        return "Save"

    def compose_fields(self) -> ComposeResult:
        yield from ()

    # Errors ------------------------------------------------------------------

    def fields(self) -> dict[str, Field]:
        return {f.field_name: f for f in self.query(Field)}

    def clear_errors(self) -> None:
        for f in self.fields().values():
            f.show_error(None)
        self.show_general_error("")

    def on_field_edited(self, event: Field.Edited) -> None:
        event.stop()
        if not any(f.has_class("-invalid") for f in self.fields().values()):
            self.show_general_error("")

    def show_warning(self, text: str) -> None:
        """Something to know that does not stop the save (shown above the buttons)."""
        self._show_line("#form-warning", text)

    def show_general_error(self, text: str) -> None:
        """What stops the save, beyond the fields' own errors ("" hides it)."""
        self._show_line("#form-error", text)

    def _show_line(self, selector: str, text: str) -> None:
        # The class is on the line, not the screen: a class on the screen restyled
        # every widget of the form at each error shown or cleared.
        line = self.query_one(selector, Static)
        line.update(plain(text))
        line.set_class(bool(text), "-shown")

    def reloaded(self, current: object) -> FormScreen | None:
        """The same form over ``current`` (the record as it is now), for a reload."""
        return None

    def _offer_reload(self, exc: StaleError) -> None:
        from tui_oauth.tui.modals.confirm import ConfirmModal

        fresh = self.reloaded(exc.current)
        self.show_general_error(exc.message)
        if fresh is None:
            return

        def answer(reload: bool | None) -> None:
            if reload:
                self.app.switch_screen(fresh)

        self.app.push_screen(ConfirmModal(
            "Changed elsewhere",
            f"{exc.message}\n\nReload it? The form then shows the current values, and what "
            "you typed here is dropped. No keeps your form open as it is.",
            yes="Reload"), answer)

    def handle_failure(self, exc: Exception) -> bool:
        """Show a service error on the form; the values stay as typed."""
        if isinstance(exc, StaleError):
            self._offer_reload(exc)
            return True
        if isinstance(exc, ValidationError):
            fields = self.fields()
            general: list[str] = []
            first: Field | None = None
            for error in exc.errors:
                target = fields.get(error.field)
                if target is None:
                    general.append(error.message)
                    continue
                previous = target.error
                target.show_error(f"{previous} {error.message}".strip())
                first = first or target
            self.show_general_error(
                " ".join(general) if general else "Please correct the fields marked below."
            )
            if first is not None:
                self._bring_up(first)
            return True
        if isinstance(exc, TuiOAuthError):
            self.show_general_error(error_text(exc))
            return True
        return False

    def _bring_up(self, field: Field) -> None:
        """Focus ``field`` and scroll it into view with its message under it. Once the
        layout has its message's height and the save's loading cover is gone: scrolled
        at once, a field below the fold stayed there."""
        field.control.focus(scroll_visible=False)

        def scroll() -> None:
            if field.is_attached:
                field.scroll_visible(animate=False)

        self.call_after_refresh(scroll)

    # Actions -----------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        elif event.button.id == "cancel":
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        self.clear_errors()
        self.save()

    def save(self) -> None:
        raise NotImplementedError

    def action_cancel(self) -> None:
        self.ask_discard(lambda: self.dismiss(None))

    def value(self, name: str) -> str:
        return self.query_one(f"#{name}", Input).value
