"""The package as a user installs it (issue 11): a wheel built from the sources, its
metadata and files, and the wheel installed with no make into a fresh venv.

Offline: the wheel is built with ``pip wheel --no-build-isolation`` (setuptools comes with
the dev extra) from a copy of the sources, and installed with ``--no-deps``; the fresh
venv finds its dependencies through a .pth file naming this venv's site-packages, so
nothing is downloaded.  About 10 s in all (one wheel, one venv for the whole module).
"""

from __future__ import annotations

import ast
import email.parser
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
TIMEOUT = 120


def _name(requirement: str) -> str:
    """The normalized distribution name of a requirement (``psycopg[binary]>=3`` -> psycopg)."""
    found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert found, requirement
    return re.sub(r"[-_.]+", "-", found.group(0)).lower()


@dataclass
class Built:
    wheel: Path
    names: list[str]
    metadata: Message
    venv: Path
    tmp: Path

    def run(self, *args: str, env: dict[str, str] | None = None,
            rc: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(args, cwd=self.tmp, env=env or self.env(), capture_output=True,
                              text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                              check=False)
        assert done.returncode == rc, (f"{args} exited {done.returncode}, expected {rc}:\n"
                                       f"{done.stdout}\n{done.stderr}")
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("TUI_OAUTH_DB", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        home = self.tmp / "home"
        home.mkdir(exist_ok=True)
        env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"),
                   XDG_STATE_HOME=str(home / "state"), XDG_CONFIG_HOME=str(home / "config"),
                   XDG_CACHE_HOME=str(home / "cache"))
        return env


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    tmp = tmp_path_factory.mktemp("packaging")
    # A copy of what a clone holds, so that the build writes nothing into the checkout.
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "tui_oauth", src / "tui_oauth",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", str(out), str(src)],
                   check=True, capture_output=True, text=True, timeout=TIMEOUT)
    (wheel,) = out.glob("tui_oauth-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(z.read(meta).decode())

    # A fresh venv with the wheel alone; its dependencies are this venv's.
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=TIMEOUT)
    vpy = venv / "bin" / "python"
    site = subprocess.run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True,
                          timeout=TIMEOUT).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "_deps_from_the_test_venv.pth").write_text("\n".join(sorted(ours)) + "\n")
    subprocess.run([*pip, "--python", str(vpy), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, text=True, timeout=TIMEOUT)
    yield Built(wheel, names, metadata, venv, tmp)


def test_the_version_is_pyprojects_and_the_package_reads_it(built: Built) -> None:
    assert built.metadata["Version"] == PYPROJECT["version"]
    done = built.run(str(built.venv / "bin" / "tui-oauth"), "--version")
    assert done.stdout.strip() == f"tui-oauth, version {PYPROJECT['version']}"
    # ... from the installed copy, not from the checkout.
    where = built.run(str(built.venv / "bin" / "python"), "-c",
                      "import tui_oauth; print(tui_oauth.__file__, tui_oauth.__version__)")
    path, version = where.stdout.split()
    assert path.startswith(str(built.venv)), path
    assert version == PYPROJECT["version"]


def test_requires_dist_holds_the_runtime_dependencies_and_no_test_tools(built: Built) -> None:
    requires = built.metadata.get_all("Requires-Dist") or []
    always = {_name(r) for r in requires if ";" not in r}
    assert always == {_name(r) for r in PYPROJECT["dependencies"]}
    assert {"jeepney", "click", "textual", "sqlalchemy", "keyring"} <= always
    for tool in ("pytest", "requests-oauthlib", "psycopg", "authlib", "setuptools"):
        assert tool not in always, f"{tool} is required unconditionally"
    postgres = [r for r in requires if 'extra == "postgres"' in r]
    assert [_name(r) for r in postgres] == ["psycopg"], postgres
    assert "requests-oauthlib" in {_name(r) for r in requires if 'extra == "dev"' in r}
    assert set(built.metadata.get_all("Provides-Extra") or []) >= {"postgres", "dev"}


def test_license_and_classifiers(built: Built) -> None:
    assert built.metadata["License-Expression"] == "MIT"
    license_files = [n for n in built.names if n.endswith(".dist-info/licenses/LICENSE")]
    assert license_files, built.names
    with zipfile.ZipFile(built.wheel) as z:
        text = z.read(license_files[0]).decode()
    assert text.startswith("MIT License") and "2026 the tui-oauth authors" in text
    classifiers = built.metadata.get_all("Classifier") or []
    for wanted in ("Environment :: Console", "Intended Audience :: System Administrators",
                   "Operating System :: POSIX :: Linux",
                   "Programming Language :: Python :: 3.11"):
        assert wanted in classifiers, classifiers


def test_stylesheets_migrations_and_py_typed_are_in_the_wheel(built: Built) -> None:
    wanted = {p.relative_to(REPO).as_posix() for p in (REPO / "tui_oauth").rglob("*.tcss")}
    migrations = REPO / "tui_oauth" / "core" / "migrations"
    wanted |= {p.relative_to(REPO).as_posix() for p in migrations.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    wanted.add("tui_oauth/py.typed")
    assert len([w for w in wanted if w.endswith(".tcss")]) >= 5
    assert "tui_oauth/core/migrations/script.py.mako" in wanted
    missing = sorted(wanted - set(built.names))
    assert not missing, f"not in the wheel: {missing}"


def test_every_module_imported_is_a_declared_dependency() -> None:
    """Each third-party module that tui_oauth imports comes from a distribution that
    pyproject declares (jeepney was imported but not declared); psycopg from the extra."""
    declared = {_name(r) for r in PYPROJECT["dependencies"]}
    declared |= {_name(r) for r in PYPROJECT["optional-dependencies"]["postgres"]}
    owners = packages_distributions()
    imported: dict[str, set[str]] = {}
    for path in (REPO / "tui_oauth").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top not in sys.stdlib_module_names and top != "tui_oauth":
                    imported.setdefault(top, set()).add(str(path.relative_to(REPO)))
    assert {"click", "jeepney", "sqlalchemy"} <= set(imported)
    undeclared = {}
    for module, where in sorted(imported.items()):
        dists = {_name(d) for d in owners.get(module, [module])}
        if not dists & declared:
            undeclared[module] = sorted(where)
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_the_installed_program_makes_and_lists_a_sqlite_store(built: Built) -> None:
    exe = str(built.venv / "bin" / "tui-oauth")
    db = str(built.tmp / "store.db")
    built.run(exe, "--db", db, "db", "init")
    assert Path(db).is_file()
    listed = built.run(exe, "--db", db, "consumers", "list", "--json")
    assert listed.stdout.strip() in ("[]", ""), listed.stdout


def test_sqlite_needs_no_psycopg_and_postgresql_without_it_says_what_to_install(
        built: Built) -> None:
    """With psycopg not importable (as after `pip install tui-oauth`, no [postgres]):
    a SQLite store works; a PostgreSQL URL is one line naming the extra."""
    without_psycopg = ("import sys; sys.modules['psycopg'] = None; "
                       "from tui_oauth.cli import main; main()")
    py = str(built.venv / "bin" / "python")
    db = str(built.tmp / "nopg.db")
    built.run(py, "-c", without_psycopg, "--db", db, "db", "init")
    built.run(py, "-c", without_psycopg, "--db", db, "consumers", "list")
    done = built.run(py, "-c", without_psycopg, "--db",
                     "postgresql+psycopg://oauth@127.0.0.1:9/oauth", "consumers", "list", rc=1)
    assert done.stderr.startswith("error: A PostgreSQL store needs psycopg"), done.stderr
    assert "pip install 'tui-oauth[postgres]'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
