"""Pictures of each tab and view at 100x30, on a store with fixed content.

Update with ``pytest tests/test_tui_snapshots.py --snapshot-update`` after
reading the report (snapshot_report.html) for what changed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.pilot import Pilot

from tests.tui_support import settle
from tui_oauth.core.store import Store
from tui_oauth.tui.app import make_app

SIZE = (100, 30)


def keys(*presses: str) -> Callable[[Pilot[object]], object]:
    async def run(pilot: Pilot[object]) -> None:
        await settle(pilot)
        for key in presses:
            await pilot.press(key)
            await settle(pilot)
        await pilot.pause(0.1)

    return run


@pytest.mark.parametrize(("name", "presses"), [
    ("consumers", ()),
    ("consumer_info", ("2",)),
    ("service_providers", ("3",)),
    ("consumer_detail", ("j", "enter")),
    ("audit", ("l",)),
    ("provider_form", ("3", "a")),
])
def test_snapshot(name: str, presses: tuple[str, ...], demo_store: Store,
                  snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(make_app(demo_store), terminal_size=SIZE, run_before=keys(*presses))
