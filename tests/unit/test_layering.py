"""The layering holds: the import-linter contracts in pyproject.toml ([tool.importlinter])
pass on the package and break on a deliberate violation (in a copy of the package).

What import-linter cannot see is checked here by AST: the CLI's imports of the console
and the web server (the contracts' only exceptions between front doors) are lazy,
inside the function that launches them; and nothing under tui_oauth/core prints or
reads the terminal (it returns typed errors, and asks or warns through callbacks the
front doors pass, as tui_oauth.core.keyring.session does for the keyring passphrase).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "tui_oauth" / "core"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CONTRACTS: list[dict[str, Any]] = PYPROJECT["tool"]["importlinter"]["contracts"]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the package under ``root`` with ``root``'s pyproject.toml (in a
    process of its own: the package it analyses is the one first on its path)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", "pyproject.toml"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=60)


def test_the_contracts_hold() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in done.stdout
    assert len(CONTRACTS) >= 4


def contract(name_start: str) -> str:
    (name,) = [str(c["name"]) for c in CONTRACTS if c["name"].startswith(name_start)]
    return name


@pytest.mark.parametrize(("path", "line", "broken"), [
    ("core/models.py", "import textual", "The core knows no front door"),
    ("core/services/doctor.py", "from tui_oauth.tui import app", "The core knows no front door"),
    ("tui/app.py", "from tui_oauth.cli import common", "Console, CLI and web"),
    ("cli/admin.py", "from tui_oauth.web import server", "Console, CLI and web"),
    # the import this issue removed: the provider engine reading the token service
    ("core/provider/engine.py", "from tui_oauth.core.services import tokens", "Inside the core"),
    ("core/models.py", "from tui_oauth.core import store", "Inside the core"),
    ("core/unlisted.py", "", "Inside the core"),  # a module of the core given no layer
], ids=["core->textual", "core->tui", "tui->cli", "cli->web", "provider->services",
        "models->store", "unlisted"])
def test_a_violation_breaks_a_contract(tmp_path: Path, path: str, line: str,
                                       broken: str) -> None:
    shutil.copytree(ROOT / "tui_oauth", tmp_path / "tui_oauth",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / "tui_oauth" / path
    text = target.read_text(encoding="utf-8") if target.exists() else ""
    target.write_text(f"{text}\n{line}\n", encoding="utf-8")
    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{contract(broken)} BROKEN" in done.stdout
    assert "0 broken" not in done.stdout


def imports_at(path: Path) -> list[tuple[str, bool]]:
    """(module imported, inside a function?) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, bool]] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((a.name, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.extend((f"{child.module}.{a.name}", in_function) for a in child.names)
                found.append((child.module, in_function))
            walk(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    walk(tree, False)
    return found


def module_file(module: str) -> Path:
    path = ROOT.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


LAUNCHES = [tuple(rule.split(" -> ")) for rule in
            next(c for c in CONTRACTS if c["type"] == "independence")["ignore_imports"]]


@pytest.mark.parametrize(("importer", "imported"), LAUNCHES, ids=" -> ".join)
def test_the_cli_launches_console_and_server_lazily(importer: str, imported: str) -> None:
    """The independence contract's exceptions: the CLI imports the console and the web
    server only inside the command that launches them (no Textual, no Starlette for
    the other commands)."""
    seen = [inside for module, inside in imports_at(module_file(importer))
            if module == imported]
    assert seen, f"{importer} no longer imports {imported}: drop the exception"
    assert all(seen), f"{importer} imports {imported} at module level; import it lazily"


def test_lazy_checker_tells_module_level_from_function_level(tmp_path: Path) -> None:
    mod = tmp_path / "mod.py"
    mod.write_text("import a.b\nfrom c import d\ndef f():\n    from e.f import g\n")
    assert imports_at(mod) == [("a.b", False), ("c.d", False), ("c", False),
                               ("e.f.g", True), ("e.f", True)]


CORE_FILES = sorted(CORE.rglob("*.py"))


def test_core_files_found() -> None:
    assert len(CORE_FILES) > 10


#: Calls that talk to the terminal; the core leaves them to the front doors (getpass,
#: an import, is the forbidden contract's).
TERMINAL_CALLS = {"print", "input", "breakpoint"}


def terminal_use(path: Path) -> list[str]:
    """``print(...)``/``input(...)``/``breakpoint()`` calls in ``path``, with line numbers."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [f"{node.func.id}() on line {node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in TERMINAL_CALLS]


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_neither_prints_nor_prompts(path: Path) -> None:
    assert not terminal_use(path), (
        f"{path}: {terminal_use(path)}; the core returns errors and asks or warns "
        "through callbacks from the front doors")


def test_terminal_checker_catches_print_and_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("# print('a comment')\ndef f():\n    print('x')\n"
                   "fingerprint = 1\nanswer = input()\n")
    assert sorted(terminal_use(bad)) == ["input() on line 5", "print() on line 3"]
