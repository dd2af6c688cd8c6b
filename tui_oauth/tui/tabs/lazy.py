"""A tab whose content is mounted when first shown or needed, not with the first screen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.widget import Widget


class MountedWhenShown(Widget):
    """Mix into a tab hidden on the first screen: it composes nothing, and mounts
    ``_content()`` on the first :meth:`show_content` (the screen calls it when the tab
    is shown; the tab itself before it reads its widgets).  The first screen does
    without those widgets (benchmarks/startup.py)."""

    def compose(self) -> ComposeResult:
        yield from ()

    def show_content(self) -> None:
        """Mount the tab's content, once (it is in the DOM when this returns)."""
        if not self.children:
            self.mount_all(self._content())

    if TYPE_CHECKING:  # the tab's (after this mixin in the MRO, so not defined here)
        def _content(self) -> ComposeResult: ...
