"""Removing a consumer, shared by the Consumers tab and the consumer view."""

from __future__ import annotations

from collections.abc import Callable

from textual.dom import DOMNode

from tui_oauth.core.registry import services
from tui_oauth.tui.jobs import store_of
from tui_oauth.tui.messages import ConsumerRemoved
from tui_oauth.tui.removal import remove_confirmed
from tui_oauth.tui.text import plural


def confirm_remove_consumer(node: DOMNode, key: str, tokens: int, *,
                            on_done: Callable[[], object] | None = None) -> None:
    """Ask for the key to be typed, then remove the consumer with its tokens."""
    store = store_of(node)
    body = (f"Consumer {key} will be removed with {plural(tokens, 'token')} "
            "(request and access). It loses access at once. The change is in the audit log "
            "but cannot be undone." if tokens else
            f"Consumer {key} will be removed. It has no token. This cannot be undone.")
    from tui_oauth.tui.modals.typed_confirm import TypedConfirmModal  # after the first paint

    remove_confirmed(node, TypedConfirmModal("Remove consumer?", body, key),
                     lambda: services(store).consumers.remove(key), lambda n: ConsumerRemoved(key,
                                                                                              n),
                     doing="Removing the consumer", on_done=on_done)
