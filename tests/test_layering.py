"""The core knows no UI: nothing under tui_oauth/core imports textual, click or starlette.

(Harlequin enforces the same with import-linter; an AST walk needs no extra tool.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "tui_oauth" / "core"
FORBIDDEN = {"textual", "click", "starlette", "uvicorn", "rich"}
FRONT_DOORS = {"tui_oauth.tui", "tui_oauth.cli", "tui_oauth.web"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


CORE_FILES = sorted(CORE.rglob("*.py"))


def test_core_files_found() -> None:
    assert len(CORE_FILES) > 10


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_imports_no_front_door(path: Path) -> None:
    bad = {
        m for m in imported_modules(path)
        if m.split(".")[0] in FORBIDDEN or any(m == f or m.startswith(f + ".") for f in FRONT_DOORS)
    }
    assert not bad, f"{path} imports {sorted(bad)}; the core must stay UI-free"


def test_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom textual.app import App\n")
    assert "textual.app" in imported_modules(bad)
