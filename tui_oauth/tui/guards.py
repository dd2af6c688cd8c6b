"""Read-only mode: changing actions are dimmed in the footer and refused."""

from __future__ import annotations

from typing import ClassVar

from textual.dom import DOMNode

from tui_oauth.tui.jobs import store_of


class ReadOnlyGuard(DOMNode):
    """Mix into a widget or screen; list its changing actions in ``CHANGES``."""

    CHANGES: ClassVar[frozenset[str]] = frozenset()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.CHANGES and store_of(self).read_only:
            return None  # shown dimmed in the footer, and refused
        return True
