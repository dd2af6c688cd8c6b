"""The Textual console: ``make_app(store)`` builds it, ``run_console(store)`` runs it.

The store may still be opening (:class:`tui_oauth.tui.pending.PendingStore`): the
console paints first and opens it behind the first screen."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui_oauth.core.store import Store
    from tui_oauth.tui.app import OAuthAdminApp
    from tui_oauth.tui.pending import PendingStore


def make_app(store: Store | PendingStore) -> OAuthAdminApp:
    from tui_oauth.tui.app import make_app as build

    return build(store)


def run_console(store: Store | PendingStore) -> None:
    """Run the console; a store that could not be opened is raised once it has closed
    (the CLI then says why, as for any command)."""
    app = make_app(store)
    app.run()
    if app.open_error is not None:
        raise app.open_error
