"""Which stylesheet loads when.

The app loads what the first screen needs; every other screen names its own sheets in
``CSS_PATH``, which Textual reads when that screen is first shown.  Parsing all of them
at start cost ~12 ms of the first paint (benchmarks/startup.py).  The rules are global
once loaded, as before; tests/unit/test_tui_styles.py checks that every sheet is named.
"""

from __future__ import annotations

from pathlib import Path, PurePath

HERE = Path(__file__).parent


def sheets(*relative: str) -> list[str | PurePath]:
    """Stylesheets of this package, by path relative to it."""
    return [HERE / name for name in relative]


#: The first screen: header, tabs, the lists and their filter boxes (field.tcss holds
#: FilterInput and Table as well as the forms' Field).
FIRST_SCREEN = sheets("app.tcss", "tabs/tabs.tcss", "widgets/header_bar.tcss",
                      "widgets/field.tcss")
DIALOG = sheets("modals/dialog.tcss")
FORM = sheets("screens/form.tcss")
DETAIL = sheets("screens/detail.tcss")
REFUSALS = sheets("screens/detail.tcss", "screens/refusals.tcss")
