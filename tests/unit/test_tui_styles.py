"""Every stylesheet is loaded by the app or by the screen that uses it (tui/styles.py)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

from textual.app import App
from textual.screen import Screen

import tui_oauth.tui
from tui_oauth.tui.app import OAuthAdminApp
from tui_oauth.tui.styles import FIRST_SCREEN, HERE


def named_sheets() -> set[Path]:
    named = {Path(p) for p in FIRST_SCREEN}
    assert [Path(p) for p in OAuthAdminApp.CSS_PATH] == [Path(p) for p in FIRST_SCREEN]
    for info in pkgutil.walk_packages(tui_oauth.tui.__path__, "tui_oauth.tui."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Screen | App) and cls.__module__ == info.name and cls.CSS_PATH:
                paths = cls.CSS_PATH if isinstance(cls.CSS_PATH, list) else [cls.CSS_PATH]
                for path in paths:
                    assert Path(path).is_file(), f"{cls.__name__} names a missing {path}"
                    named.add(Path(path))
    return named


def test_every_stylesheet_is_loaded_somewhere() -> None:
    on_disk = set(HERE.rglob("*.tcss"))
    assert on_disk, "no stylesheet found: the test looks in the wrong place"
    assert on_disk - named_sheets() == set()


def test_the_first_screen_loads_no_form_dialog_or_detail_module() -> None:
    """What the first paint imports (benchmarks/startup.py): the forms, dialogs, detail
    screens and the text area load when first opened."""
    import json
    import subprocess
    import sys

    later = ["tui_oauth.tui.screens.form", "tui_oauth.tui.modals.base",
             "tui_oauth.tui.modals.help", "tui_oauth.tui.modals.error",
             "tui_oauth.tui.widgets.table", "tui_oauth.tui.widgets.field",
             "tui_oauth.tui.screens.consumer_detail", "textual.widgets._text_area",
             "sqlalchemy", "cryptography"]
    code = ("import json, sys, tui_oauth.tui, tui_oauth.tui.app, tui_oauth.tui.screens.main\n"
            f"print(json.dumps([m for m in {later!r} if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout) == []
