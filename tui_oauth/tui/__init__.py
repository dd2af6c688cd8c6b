"""The Textual console."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui_oauth.core.store import Store


def run_console(store: Store) -> None:
    from tui_oauth.tui.app import make_app

    make_app(store).run()
