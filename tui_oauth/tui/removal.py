"""Removing a record after a dialog, shared by the consumer and provider removals."""

from __future__ import annotations

from collections.abc import Callable

from textual.dom import DOMNode
from textual.message import Message
from textual.screen import Screen

from tui_oauth.tui.jobs import run_job


def remove_confirmed(node: DOMNode, dialog: Screen[bool], remove: Callable[[], int],
                     removed: Callable[[int], Message], *, doing: str,
                     on_done: Callable[[], object] | None = None) -> None:
    """Show ``dialog``; on yes, ``remove()`` in a worker, then announce ``removed(n)``
    (n: the tokens that went with it) to the app, then ``on_done()``."""

    def done(n: int) -> None:
        node.app.post_message(removed(n))
        if on_done is not None:
            on_done()

    def answered(yes: bool | None) -> None:
        if yes:
            run_job(node, remove, done, doing=doing, group="remove")

    node.app.push_screen(dialog, answered)
