"""The core knows no UI: nothing under tui_oauth/core imports textual, click or starlette,
prints or prompts (it returns typed errors, and asks or warns through callbacks the
front doors pass, as tui_oauth.core.keyring.session does for the keyring passphrase).

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


#: Calls that talk to the terminal; the core leaves them to the front doors.
TERMINAL_CALLS = {"print", "input", "breakpoint"}
TERMINAL_MODULES = {"getpass"}


def terminal_use(path: Path) -> list[str]:
    """``print(...)``/``input(...)`` calls and getpass imports in ``path``, with line numbers."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in TERMINAL_CALLS):
            found.append(f"{node.func.id}() on line {node.lineno}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""])
            found += [f"import {n} on line {node.lineno}" for n in names
                      if n.split(".")[0] in TERMINAL_MODULES]
    return found


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_neither_prints_nor_prompts(path: Path) -> None:
    assert not terminal_use(path), (
        f"{path}: {terminal_use(path)}; the core returns errors and asks or warns "
        "through callbacks from the front doors")


def test_terminal_checker_catches_print_and_getpass(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import getpass\n# print('a comment')\ndef f():\n    print('x')\n"
                   "fingerprint = 1\n")
    assert terminal_use(bad) == ["import getpass on line 1", "print() on line 4"]
