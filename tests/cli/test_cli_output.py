"""One output option for every command that prints records: ``-o table|json|jsonl|name``,
``--json`` (``-o json``) and ``-q`` (``-o name``); tables measured in terminal cells
(CJK, emoji); `audit list` (and bare `audit`); doctor's order and exit codes.

In process, through click's runner, against a SQLite store with an in-memory keyring."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rich.cells import cell_len

from tests.cli_support import add_tokens, new_sqlite_store
from tests.helpers import pem_spki, rsa_key
from tests.keyring_backends import MemoryKeyring
from tui_oauth.cli import cli as root
from tui_oauth.cli.common import OUTPUT_FORMATS, AppContext
from tui_oauth.core.registry import services
from tui_oauth.core.store import open_store

Invoke = Callable[..., Result]

#: Keys and names a terminal draws two cells wide a character (CJK, emoji), beside ASCII.
CONSUMERS = [("app:ascii", "Plain name"), ("app:日本", "日本語のアプリ"),
             ("app:emoji", "Rocket 🚀 launcher"), ("jira:1354", "Jira 中文 ✓")]


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    new_sqlite_store(url)
    return url


@pytest.fixture
def invoke(url: str, memory_keyring: MemoryKeyring) -> Invoke:
    def run(*args: str, rc: int = 0) -> Result:
        obj = AppContext(db=None, read_only=False, secrets_backend=memory_keyring)
        result = CliRunner().invoke(root, ["--db", url, *args], obj=obj,
                                    prog_name="tui-oauth")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == rc, (args, result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return result

    return run


@pytest.fixture
def filled(url: str, memory_keyring: MemoryKeyring) -> str:
    pem = pem_spki(rsa_key(0))
    with open_store(url, secrets_backend=memory_keyring) as store:
        for key, name in CONSUMERS:
            services(store).consumers.add(key=key, name=name, public_key=pem)
        services(store).providers.add(name="Wiki 维基", consumer_key="ck",
                                      shared_secret="s3cret-value",
                                      request_token_url="https://sp.example.com/r",
                                      authorization_url="https://sp.example.com/a",
                                      access_token_url="https://sp.example.com/t")
    return url


def lines(result: Result) -> list[str]:
    return result.stdout.splitlines()


# ---------------------------------------------------------------- the forms


def test_consumers_list_in_every_form(invoke: Invoke, filled: str) -> None:
    keys = sorted(k for k, _ in CONSUMERS)
    as_json = json.loads(invoke("consumers", "list", "--json").stdout)
    assert [c["key"] for c in as_json] == keys
    assert json.loads(invoke("consumers", "list", "-o", "json").stdout) == as_json
    jsonl = lines(invoke("consumers", "list", "-o", "jsonl"))
    assert [json.loads(line) for line in jsonl] == as_json  # one object a line, no array
    assert lines(invoke("consumers", "list", "-q")) == keys
    assert lines(invoke("consumers", "list", "--quiet")) == keys
    assert lines(invoke("consumers", "list", "-o", "name")) == keys
    assert lines(invoke("consumers", "list", "-q", "--filter", "jira")) == ["jira:1354"]
    assert lines(invoke("consumers", "list", "-q", "--sort", "key", "--desc")) == keys[::-1]
    table = lines(invoke("consumers", "list", "-o", "table"))
    assert table == lines(invoke("consumers", "list"))
    assert table[0].split() == ["KEY", "NAME", "SIGNATURE", "2LO", "TOKENS", "CREATED"]


def test_empty_listings_print_nothing_for_scripts(invoke: Invoke) -> None:
    assert invoke("consumers", "list", "-q").stdout == ""
    assert invoke("consumers", "list", "-o", "jsonl").stdout == ""
    assert json.loads(invoke("consumers", "list", "-o", "json").stdout) == []
    assert invoke("consumers", "list").stdout.startswith("No consumers.")
    assert invoke("providers", "list", "-q").stdout == ""
    assert invoke("tokens", "list", "-q").stdout == ""


def test_table_columns_line_up_by_terminal_cells(invoke: Invoke, filled: str) -> None:
    """Wide characters take two cells: a column starts at the same cell on every line,
    though not at the same character index (padding by len() would misalign them)."""
    table = lines(invoke("consumers", "list"))
    header = table[0]
    starts = {title: cell_len(header[:header.index(title)])
              for title in ("NAME", "SIGNATURE", "2LO", "TOKENS", "CREATED")}
    assert len(table) == 1 + len(CONSUMERS)
    for line, (key, name) in zip(table[1:], sorted(CONSUMERS), strict=True):
        assert line.startswith(key)
        assert cell_len(line[:line.index(name)]) == starts["NAME"], line
        assert cell_len(line[:line.index("RSA-SHA1")]) == starts["SIGNATURE"], line
        assert cell_len(line[:line.index("2026") if "2026" in line else
                             line.rindex("  ") + 2]) == starts["CREATED"], line
    by_chars = {line.index("RSA-SHA1") for line in table[1:]}
    assert len(by_chars) > 1  # the same cell, but not the same character index
    provider = lines(invoke("providers", "list"))
    assert cell_len(provider[1][:provider[1].index("ck")]) == \
        cell_len(provider[0][:provider[0].index("CONSUMER KEY")])


def test_later_rows_of_a_stream_are_cut_to_the_first_pages_cells(
        invoke: Invoke, filled: str, monkeypatch: pytest.MonkeyPatch,
        memory_keyring: MemoryKeyring) -> None:
    from tui_oauth.cli import consumers as consumers_cli

    with open_store(filled, secrets_backend=memory_keyring) as store:
        services(store).consumers.add(key="zz:" + "键" * 30, name="名" * 40,
                                      public_key=pem_spki(rsa_key(0)))
    monkeypatch.setattr(consumers_cli, "LIST_PAGE_SIZE", 2)
    table = lines(invoke("consumers", "list"))
    widths = {cell_len(line[:line.index("RSA-SHA1")]) for line in table[1:]}
    assert widths == {cell_len(table[0][:table[0].index("SIGNATURE")])}
    assert "…" in table[-1] and table[-1].startswith("zz:")


def test_text_from_the_store_is_data_never_markup(invoke: Invoke, url: str,
                                                  memory_keyring: MemoryKeyring) -> None:
    import sqlite3

    with open_store(url, secrets_backend=memory_keyring) as store:
        services(store).consumers.add(key="k[bold]1", name="[red]not red[/red]",
                                      public_key=pem_spki(rsa_key(0)))
    # The services refuse control characters; a store written by other means may hold them.
    db = sqlite3.connect(url.removeprefix("sqlite:///"))
    with db:
        db.execute("UPDATE consumers SET name = name || ' \x1b[31mesc'")
    db.close()
    out = invoke("consumers", "list").stdout
    assert "[red]not red[/red]" in out and "k[bold]1" in out
    assert "\x1b" not in out and "\\x1b[31mesc" in out
    assert lines(invoke("consumers", "list", "-q")) == ["k[bold]1"]
    assert "\x1b" not in invoke("consumers", "list", "-o", "jsonl").stdout


@pytest.mark.parametrize("args", [("--json", "-o", "table"), ("--json", "-q"),
                                  ("-q", "-o", "json"), ("-o", "yaml")])
def test_output_options_that_disagree_are_usage_errors(invoke: Invoke,
                                                       args: tuple[str, ...]) -> None:
    r = invoke("consumers", "list", *args, rc=2)
    assert r.stdout == "" and ("Error:" in r.stderr)


def test_show_commands_in_every_form(invoke: Invoke, filled: str) -> None:
    doc = json.loads(invoke("consumers", "show", "app:日本", "-o", "json").stdout)
    assert doc["name"] == "日本語のアプリ"
    [line] = lines(invoke("consumers", "show", "app:日本", "-o", "jsonl"))
    assert json.loads(line) == doc
    assert invoke("consumers", "show", "app:日本", "-q").stdout == "app:日本\n"
    assert "Name:" in invoke("consumers", "show", "app:日本").stdout
    assert invoke("providers", "show", "Wiki 维基", "-q").stdout == "Wiki 维基\n"
    assert json.loads(invoke("providers", "show", "Wiki 维基", "--json").stdout)[
        "consumer_key"] == "ck"
    assert lines(invoke("providers", "list", "-q")) == ["Wiki 维基"]
    [provider] = [json.loads(x) for x in lines(invoke("providers", "list", "-o", "jsonl"))]
    assert provider["name"] == "Wiki 维基"
    key = json.loads(invoke("info", "show", "--json").stdout)["key"]
    assert invoke("info", "show", "-q").stdout == key + "\n"
    settings = json.loads(invoke("settings", "show", "-o", "json").stdout)
    assert lines(invoke("settings", "show", "-q")) == list(settings)
    assert json.loads(invoke("settings", "show", "-o", "jsonl").stdout) == settings


def test_held_tokens_in_every_form(invoke: Invoke, filled: str) -> None:
    assert invoke("providers", "tokens", "Wiki 维基", "-q").stdout == ""
    assert json.loads(invoke("providers", "tokens", "Wiki 维基", "-o", "json").stdout) == []
    assert "No tokens held from Wiki 维基" in invoke("providers", "tokens", "Wiki 维基").stdout


def test_tokens_list_in_every_form(invoke: Invoke, filled: str) -> None:
    add_tokens(filled, "jira:1354", ["access"] * 3 + ["request"] * 2)
    doc = json.loads(invoke("tokens", "list", "--json").stdout)
    tokens = [t["token"] for t in doc["tokens"]]
    assert len(tokens) == 5
    assert lines(invoke("tokens", "list", "-q")) == tokens
    assert lines(invoke("tokens", "list", "--all", "-q")) == tokens
    assert [json.loads(x) for x in lines(invoke("tokens", "list", "-o", "jsonl"))] == \
        doc["tokens"]
    assert [json.loads(x)["token"] for x in
            lines(invoke("tokens", "list", "--all", "-o", "jsonl"))] == tokens
    # A next page is told on stderr beside names (stdout stays names only).
    r = invoke("tokens", "list", "-q", "--limit", "2")
    assert lines(r) == tokens[:2] and "(more: --before" in r.stderr
    assert "(more: --before" in invoke("tokens", "list", "--limit", "2").stdout


# ---------------------------------------------------------------- audit list


def test_audit_list_and_bare_audit_are_the_same(invoke: Invoke, filled: str) -> None:
    doc = json.loads(invoke("audit", "list", "--json").stdout)
    assert set(doc) == {"entries", "next_before"}
    assert len(doc["entries"]) == len(CONSUMERS) + 1
    for args in ((), ("--json",), ("--limit", "2"), ("-q",), ("-o", "jsonl"),
                 ("--filter", "日本")):
        bare, listed = invoke("audit", *args), invoke("audit", "list", *args)
        assert (bare.stdout, bare.stderr) == (listed.stdout, listed.stderr), args
    ids = [e["id"] for e in doc["entries"]]
    assert lines(invoke("audit", "list", "-q")) == [str(i) for i in ids]
    assert [json.loads(x) for x in lines(invoke("audit", "list", "-o", "jsonl"))] == \
        doc["entries"]
    r = invoke("audit", "list", "-q", "--limit", "2")
    assert lines(r) == [str(i) for i in ids[:2]]
    assert r.stderr == f"(older entries: --before {ids[1]})\n"
    assert invoke("audit", "--limit", "0", rc=2).stdout == ""


def test_audit_help_is_the_groups(invoke: Invoke) -> None:
    out = invoke("audit", "--help").stdout
    assert "Commands:" in out and "list" in out
    assert "--limit" in invoke("audit", "list", "--help").stdout


# ---------------------------------------------------------------- doctor


def test_doctor_exit_codes_and_failing_checks_last(invoke: Invoke, filled: str,
                                                   memory_keyring: MemoryKeyring) -> None:
    ok = json.loads(invoke("doctor", "--json").stdout)
    assert ok["ok"] is True
    invoke("doctor", "-o", "table")
    assert invoke("doctor", "-q").stdout.strip() == "\n".join(
        c["name"] for c in ok["checks"] if c["status"] in ("warn", "fail"))
    invoke("doctor", "--bogus", rc=2)
    invoke("doctor", "-o", "xml", rc=2)

    # A row whose secret is gone: a failing check, exit 1.
    [name] = [n for n in memory_keyring.items if "shared-secret" in str(n)]
    del memory_keyring.items[name]
    r = invoke("doctor", "--json", rc=1)
    report = json.loads(r.stdout)
    statuses = [c["status"] for c in report["checks"]]
    assert report["ok"] is False and "fail" in statuses
    rank = {"ok": 0, "info": 0, "warn": 1, "fail": 2}
    assert [rank[s] for s in statuses] == sorted(rank[s] for s in statuses)
    assert statuses[-1] == "fail"
    table = lines(invoke("doctor", rc=1))
    marks = [line[:6] for line in table if line.startswith("[")]
    assert marks[-1] == "[FAIL]" and "[ok  ]" in marks
    assert marks.index("[FAIL]") > max(i for i, m in enumerate(marks) if m == "[ok  ]")
    jsonl = [json.loads(x) for x in lines(invoke("doctor", "-o", "jsonl", rc=1))]
    assert jsonl == report["checks"]
    assert "rows without secret" in lines(invoke("doctor", "-q", rc=1))


# ---------------------------------------------------------------- completion


def test_output_values_complete(url: str) -> None:
    words = "tui-oauth consumers list -o "
    result = CliRunner().invoke(root, [], prog_name="tui-oauth", env={
        "_TUI_OAUTH_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": "4",
        "TUI_OAUTH_DB": url})
    assert result.exit_code == 0, result.output
    assert [line.split(",", 1)[1] for line in result.output.splitlines()] == \
        list(OUTPUT_FORMATS)


def _records_commands() -> list[tuple[str, ...]]:
    return [("consumers", "list"), ("consumers", "show"), ("providers", "list"),
            ("providers", "show"), ("providers", "tokens"), ("tokens", "list"),
            ("info", "show"), ("settings", "show"), ("audit", "list"), ("doctor",)]


@pytest.mark.parametrize("path", _records_commands(), ids=" ".join)
def test_every_records_command_has_the_output_options(path: tuple[str, ...]) -> None:
    import click

    cmd: Any = root
    for name in path:
        cmd = cmd.get_command(click.Context(cmd), name)
    opts = {o: p for p in cmd.params for o in p.opts}
    assert {"-o", "--output", "--json", "-q", "--quiet"} <= set(opts), path
    assert tuple(opts["-o"].type.choices) == OUTPUT_FORMATS


def test_audit_completes_its_subcommand_then_lists_options(url: str) -> None:
    def complete(words: str) -> list[str]:
        cword = len(words.split()) - 1 + words.endswith(" ")
        result = CliRunner().invoke(root, [], prog_name="tui-oauth", env={
            "_TUI_OAUTH_COMPLETE": "bash_complete", "COMP_WORDS": words,
            "COMP_CWORD": str(cword), "TUI_OAUTH_DB": url})
        assert result.exit_code == 0, result.output
        return [line.split(",", 1)[1] for line in result.output.splitlines()]

    assert complete("tui-oauth audit ") == ["list"]
    assert "--action" in complete("tui-oauth audit list --")
    assert "--action" in complete("tui-oauth audit --limit 5 --")  # bare audit's options
    assert complete("tui-oauth audit list -o j") == ["json", "jsonl"]


def test_table_header_is_bold_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    from tui_oauth.cli.common import _header_style

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert _header_style()("KEY") == "KEY"
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert _header_style()("KEY") == "\x1b[1mKEY\x1b[0m"
    monkeypatch.setenv("NO_COLOR", "1")
    assert _header_style()("KEY") == "KEY"
