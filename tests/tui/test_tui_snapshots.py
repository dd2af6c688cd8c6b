"""Pictures of each tab and view at 100x30, on a store with fixed content.

Update with ``pytest tests/tui/test_tui_snapshots.py --snapshot-update`` after
reading the report (snapshot_report.html) for what changed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.tui_support import press_keys
from tui_oauth.core.store import Store
from tui_oauth.tui.app import make_app
from tui_oauth.tui.demo import DISPLAY_URL

SIZE = (100, 30)


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
    assert snap_compare(make_app(demo_store), terminal_size=SIZE, run_before=press_keys(*presses))


# Small terminals: the help's rows wrap at 80x24; a dialog keeps its buttons at 60x20;
# the lists fit 80 columns.
@pytest.mark.parametrize(("name", "size", "presses"), [
    ("help_80x24", (80, 24), ("question_mark",)),
    ("remove_consumer_60x20", (60, 20), ("d",)),
    # the list fits 80 columns: the long key shortened in the middle, whole in the status
    ("consumers_80x24", (80, 24), ("j",)),
    ("consumer_detail_80x24", (80, 24), ("j", "enter")),
])
def test_snapshot_small(name: str, size: tuple[int, int], presses: tuple[str, ...],
                        demo_store: Store, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(make_app(demo_store), terminal_size=size, run_before=press_keys(*presses))


# NO_COLOR: a checkbox's state and a refused key read without colour (a tick; a
# struck-through key). Textual reads NO_COLOR when the app is made.
def test_snapshot_no_color_form(demo_store: Store, snap_compare: Callable[..., bool],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(make_app(demo_store), terminal_size=(100, 50),  # the checkboxes too
                        run_before=press_keys("a", "m"))


def test_snapshot_no_color_read_only(read_only_store: Store,
                                     snap_compare: Callable[..., bool],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    read_only_store.url = DISPLAY_URL  # the header shows this, not the temporary path
    assert snap_compare(make_app(read_only_store), terminal_size=SIZE, run_before=press_keys())
