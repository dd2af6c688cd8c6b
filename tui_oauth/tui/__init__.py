"""The Textual console: ``make_app(store)`` builds it, ``run_console(store)`` runs it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui_oauth.core.store import Store
    from tui_oauth.tui.app import OAuthAdminApp


def make_app(store: Store) -> OAuthAdminApp:
    from tui_oauth.tui.app import make_app as build

    return build(store)


def run_console(store: Store) -> None:
    make_app(store).run()
