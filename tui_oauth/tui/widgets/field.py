"""One form field: a label, the input, a hint, and the error said in words under it."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static, TextArea

from tui_oauth.core.text import visible
from tui_oauth.tui.text import plain


class Field(Vertical):
    """Wraps an input widget; ``show_error`` puts the service's message under it."""

    def __init__(self, name: str, label: str, control: Widget, *, hint: str | None = None,
                 id: str | None = None) -> None:
        super().__init__(id=id or f"field-{name}", classes="field")
        self.field_name = name
        self.label = label
        self.control = control
        self.hint = hint
        self._value_at_error: object = None

    def compose(self) -> ComposeResult:
        if self.label:
            yield Label(plain(self.label), classes="field-label")
        yield self.control
        if self.hint:
            yield Static(plain(self.hint), classes="field-hint")
        yield Static("", classes="field-error", markup=False)

    def on_mount(self) -> None:
        """A value read from the store is shown as text: were any control characters
        in it (a row written before they were refused), they show escaped, say so."""
        control = self.control
        if isinstance(control, Input) and visible(control.value) != control.value:
            control.value = visible(control.value)
        elif isinstance(control, TextArea) and (
                visible(control.text, multiline=True) != control.text):
            control.text = visible(control.text, multiline=True)
        else:
            return
        self.show_error("This value holds control characters, shown escaped (e.g. \\x1b)."
                        + ("" if control.disabled else " Saving stores it as shown."))

    def show_error(self, message: str | None) -> None:
        error = self.query_one(".field-error", Static)
        error.update(plain(message or ""))
        self.set_class(bool(message), "-invalid")
        self._value_at_error = self._value() if message else None

    def _value(self) -> object:
        control = self.control
        return control.text if isinstance(control, TextArea) else getattr(control, "value", None)

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Checkbox.Changed)
    @on(Select.Changed)
    def _edited(self) -> None:
        """The error goes as soon as the value is changed (the save checks it again)."""
        if self.has_class("-invalid") and self._value() != self._value_at_error:
            self.show_error(None)
            self.post_message(self.Edited(self))

    class Edited(Message):
        """A field whose error was shown has been changed."""

        def __init__(self, field: Field) -> None:
            super().__init__()
            self.field = field

    @property
    def error(self) -> str:
        return str(self.query_one(".field-error", Static).render())
