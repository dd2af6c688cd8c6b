"""What keeps the command line quick, checked without timing anything (the figures come
from benchmarks/cli_speed.py): what `--version`, `--help` and a TAB import, the values
written out in the command modules so that they need not import the models, and shell
completion (subcommands, consumer keys, provider names, the `completion` command)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from tui_oauth.cli import LAZY_COMMANDS, cli
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store

HEAVY = ("sqlalchemy", "sqlmodel", "cryptography", "keyring", "alembic", "requests",
         "oauthlib", "pydantic", "textual")

PROBE = """
import json, os, sys
sys.argv = ["tui-oauth", *json.loads(sys.argv[1])]
from tui_oauth.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("\\nMODULES " + json.dumps(sorted({m.split(".")[0] for m in sys.modules})), flush=True)
"""


def imported(args: list[str], env: dict[str, str] | None = None) -> set[str]:
    """The top-level packages a fresh `tui-oauth ARGS` process imported."""
    import os

    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=60,
                          check=False)
    line = [x for x in done.stdout.splitlines() if x.startswith("MODULES ")]
    assert line, f"no module list: {done.stdout!r} {done.stderr!r}"
    return set(json.loads(line[-1][len("MODULES "):]))


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_version_and_help_import_nothing_heavy(args: list[str]) -> None:
    heavy = imported(args) & set(HEAVY)
    assert not heavy, f"tui-oauth {' '.join(args)} imported {sorted(heavy)}"


def test_a_tab_in_a_command_group_imports_nothing_heavy(tmp_path: object) -> None:
    env = {"_TUI_OAUTH_COMPLETE": "bash_complete", "COMP_WORDS": "tui-oauth consumers show ",
           "COMP_CWORD": "3", "TUI_OAUTH_DB": f"{tmp_path}/none.db"}
    heavy = imported([], env) & set(HEAVY)
    assert not heavy, f"a TAB imported {sorted(heavy)}"


def test_values_written_out_agree_with_the_core() -> None:
    from tui_oauth.cli import consumers, provider_connect, providers
    from tui_oauth.core import models
    from tui_oauth.core.services import connect

    assert "|".join(models.CONSUMER_SIGNATURE_METHODS) == consumers.METHOD
    assert "|".join(models.PROVIDER_SIGNATURE_METHODS) == providers.METHOD
    assert provider_connect.DEFAULT_TIMEOUT == connect.DEFAULT_TIMEOUT
    assert provider_connect.CALL_RESPONSE_LIMIT == connect.CALL_RESPONSE_LIMIT
    assert provider_connect.OOB == connect.OOB


def test_lazy_sort_choice_lists_the_services_columns() -> None:
    from tui_oauth.core.services.consumers import SORT_COLUMNS

    result = CliRunner().invoke(cli, ["consumers", "list", "--help"], prog_name="tui-oauth")
    assert result.exit_code == 0, result.output
    assert "|".join(sorted(SORT_COLUMNS)) in result.output.replace("\n", "").replace(" ", "")
    bad = CliRunner().invoke(cli, ["consumers", "list", "--sort", "nope"], prog_name="tui-oauth")
    assert bad.exit_code == 2 and "nope" in bad.output


def complete(words: str, env: dict[str, str] | None = None) -> list[str]:
    """What bash is offered for COMP_WORDS (the word being completed last)."""
    cword = len(words.split()) - 1 + words.endswith(" ")
    result = CliRunner().invoke(cli, [], prog_name="tui-oauth", env={
        "_TUI_OAUTH_COMPLETE": "bash_complete", "COMP_WORDS": words,
        "COMP_CWORD": str(cword), **(env or {})})
    assert result.exit_code == 0, result.output
    return [line.split(",", 1)[1] for line in result.output.splitlines() if line]


def test_completes_command_names_and_options(tmp_path: object) -> None:
    env = {"TUI_OAUTH_DB": f"{tmp_path}/none.db"}
    assert complete("tui-oauth c", env) == ["completion", "consumers"]
    assert set(complete("tui-oauth ", env)) == set(LAZY_COMMANDS)
    assert "--read-only" in complete("tui-oauth --", env)
    assert {"add", "edit", "list", "remove", "show"} <= set(complete("tui-oauth consumers ", env))
    assert set(complete("tui-oauth consumers list --sort ", env)) >= {"key", "name"}


@pytest.fixture
def filled(store: Store) -> Iterator[Store]:
    services(store).consumers.add(key="jira:1", name="J1", shared_secret="s3cret-value")
    services(store).consumers.add(key="jira:2", name="J2", shared_secret="s3cret-value")
    services(store).consumers.add(key="conf:1", name="C", shared_secret="s3cret-value")
    for name in ("Example", "Example Two", "Other"):
        services(store).providers.add(name=name, consumer_key="ck", shared_secret="s3cret-value",
                                      request_token_url="https://sp.example.com/r",
                                      authorization_url="https://sp.example.com/a",
                                      access_token_url="https://sp.example.com/t")
    yield store


def test_completes_consumer_keys_and_provider_names_from_the_store(filled: Store) -> None:
    env = {"TUI_OAUTH_DB": filled.url}
    assert complete("tui-oauth consumers show j", env) == ["jira:1", "jira:2"]
    assert complete("tui-oauth consumers remove ", env) == ["conf:1", "jira:1", "jira:2"]
    assert complete("tui-oauth consumers edit x", env) == []
    # A name a shell would split is left out (it can still be typed, quoted).
    assert complete("tui-oauth providers show E", env) == ["Example"]
    assert complete("tui-oauth providers connect O", env) == ["Other"]
    assert complete(f"tui-oauth --db {filled.url} consumers show c") == ["conf:1"]


def test_completion_never_makes_a_store(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "missing.db"
    assert complete("tui-oauth consumers show ", {"TUI_OAUTH_DB": str(path)}) == []
    assert not path.exists()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_command_prints_the_script(shell: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell], prog_name="tui-oauth")
    assert result.exit_code == 0, result.output
    assert "_TUI_OAUTH_COMPLETE" in result.output
    assert f"{shell}_complete" in result.output or shell == "fish"


def test_completion_command_refuses_other_shells() -> None:
    result = CliRunner().invoke(cli, ["completion", "tcsh"], prog_name="tui-oauth")
    assert result.exit_code == 2


def test_every_command_module_loads_without_the_store() -> None:
    """`tui-oauth GROUP --help` and a TAB in any group load the group's module only:
    SQLAlchemy, SQLModel, the keyring, cryptography and the rest wait for a command to run."""
    modules = sorted({module for module, _, _ in LAZY_COMMANDS.values()})
    code = ("import importlib, json, sys\n"
            f"heavy = {HEAVY!r}\n"
            "found = {}\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "    loaded = sorted({m.split('.')[0] for m in sys.modules} & set(heavy))\n"
            "    if loaded:\n"
            "        found[name] = loaded\n"
            "        break\n"
            "print(json.dumps(found))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout) == {}, f"imported when loaded: {done.stdout}"


@pytest.mark.parametrize("output", ["table", "json", "jsonl", "name"])
def test_consumers_list_reads_sqlite_without_the_database_layer(tmp_path: object,
                                                                output: str) -> None:
    """Every output form of `consumers list` takes the standard library's read of an
    up-to-date SQLite store (core/sqlite_reads.py): no SQLAlchemy, no models."""
    from tests.conftest import new_sqlite_store

    url = f"sqlite:///{tmp_path}/s.db"
    new_sqlite_store(url)
    heavy = imported(["--db", url, "consumers", "list", "-o", output]) & set(HEAVY)
    assert not heavy, f"consumers list -o {output} imported {sorted(heavy)}"
