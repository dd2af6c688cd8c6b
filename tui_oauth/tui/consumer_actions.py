"""Removing a consumer, shared by the Consumers tab and the consumer view."""

from __future__ import annotations

from collections.abc import Callable

from textual.dom import DOMNode

from tui_oauth.tui.jobs import run_job, store_of
from tui_oauth.tui.messages import ConsumerRemoved
from tui_oauth.tui.text import plural


def confirm_remove_consumer(node: DOMNode, key: str, tokens: int, *,
                            on_done: Callable[[], object] | None = None) -> None:
    """Ask for the key to be typed, then remove the consumer with its tokens."""
    store = store_of(node)

    def removed(n: int) -> None:
        node.app.post_message(ConsumerRemoved(key, n))
        if on_done is not None:
            on_done()

    def answered(yes: bool | None) -> None:
        if yes:
            run_job(node, lambda: store.consumers.remove(key), removed,
                    doing="Removing the consumer", group="remove")

    body = (f"Consumer {key} will be removed with {plural(tokens, 'token')} "
            "(request and access). It loses access at once. The change is in the audit log "
            "but cannot be undone." if tokens else
            f"Consumer {key} will be removed. It has no token. This cannot be undone.")
    from tui_oauth.tui.modals.typed_confirm import TypedConfirmModal  # after the first paint

    node.app.push_screen(TypedConfirmModal("Remove consumer?", body, key), answered)
