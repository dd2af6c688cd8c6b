"""What every dialog shares: the same keys answer it the same way.

``ctrl+s`` gives the primary answer (Yes, Remove, Export, Connect, Close, Hide...)
and so does ``enter``, unless the focused control takes it: a button presses
itself (No, focused in a yes-or-no question, so that enter on its own never
destroys anything), a text field submits (a typed confirmation only when the
text is right). ``Esc`` cancels: the dialog closes with its cancel answer
(``False`` or ``None``), doing nothing.  A dialog that names its ``PRIMARY_BUTTON``
leaves its buttons to :class:`Dialog`: that one answers, any other cancels.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input

from tui_oauth.tui.styles import DIALOG
from tui_oauth.tui.widgets.tick import keep_ticks

ResultType = TypeVar("ResultType")

PRIMARY_KEYS = "ctrl+s,enter"
CANCEL_KEYS = "escape"


def dialog_bindings(name: str, primary: str, primary_tip: str, *,
                    primary_keys: str = PRIMARY_KEYS, cancel: str = "Cancel",
                    cancel_tip: str = "Close the dialog; nothing is done",
                    cancel_keys: str = CANCEL_KEYS, primary_id: str | None = None,
                    cancel_id: str | None = None) -> list[Binding]:
    """The two bindings of a dialog, with ids ``<name>.<primary>`` and ``<name>.cancel``
    (or those given) for ``TUI_OAUTH_KEYMAP``."""
    return [
        Binding(primary_keys, "primary", primary,
                id=primary_id or f"{name}.{primary.lower().replace(' ', '_')}",
                tooltip=primary_tip),
        Binding(cancel_keys, "cancel", cancel, id=cancel_id or f"{name}.cancel",
                tooltip=cancel_tip),
    ]


class Dialog(ModalScreen[ResultType]):
    """A centred dialog: ``action_primary`` answers, ``action_cancel`` dismisses with
    ``CANCEL``. Its body scrolls and its buttons stay docked at the bottom, so a
    short terminal (60x20) still shows them."""

    CSS_PATH = DIALOG
    CANCEL: ClassVar[Any] = None
    #: the id of the button that gives the primary answer (any other cancels); None: the
    #: dialog handles its buttons itself
    PRIMARY_BUTTON: ClassVar[str | None] = None

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def on_mount(self) -> None:
        keep_ticks(self, *self.query(Checkbox))

    def action_primary(self) -> None:
        raise NotImplementedError

    def action_cancel(self) -> None:
        self.dismiss(self.CANCEL)

    # Textual calls these handlers after a dialog's own: a dialog does not define them again.

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in a text field: the primary answer."""
        event.stop()
        self.action_primary()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if self.PRIMARY_BUTTON is None:
            return
        event.stop()
        if event.button.id == self.PRIMARY_BUTTON:
            self.action_primary()
        else:
            self.action_cancel()


def dialog_body(**kwargs: Any) -> VerticalScroll:
    """The part of a dialog that scrolls when the terminal is short."""
    return VerticalScroll(classes="dialog-scroll", **kwargs)


def dialog_buttons(**kwargs: Any) -> Horizontal:
    return Horizontal(classes="dialog-buttons", **kwargs)
