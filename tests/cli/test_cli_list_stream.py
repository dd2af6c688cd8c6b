"""`consumers list` (the table) streams: the first page is written before the next is
read, later rows are fitted to the first page's widths, and memory stays constant
(benchmarks/list_memory.py measures 100,000 consumers)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

import click
import pytest

from tests.cli_support import Cli
from tests.helpers import pem_spki, rsa_key
from tests.keyring_backends import MemoryKeyring
from tui_oauth.cli import consumers as consumers_cli
from tui_oauth.cli.common import _fit
from tui_oauth.core import sqlite_reads
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store, open_store


def fill(cli: Cli, keys_names: list[tuple[str, str]]) -> None:
    assert cli.db_url is not None
    pem = pem_spki(rsa_key(0))
    with open_store(cli.db_url, secrets_backend=MemoryKeyring()) as store:
        for key, name in keys_names:
            services(store).consumers.add(key=key, name=name, public_key=pem)


class CountingConnection:
    """A sqlite3 connection that counts the pages of consumers read through it."""

    def __init__(self, db: sqlite3.Connection, count: Callable[[], None]) -> None:
        self.db, self.count = db, count

    def execute(self, sql: str, *args: Any) -> Any:
        if "FROM consumers" in sql:
            self.count()
        return self.db.execute(sql, *args)

    def close(self) -> None:
        self.db.close()


class PageWatch:
    """Counts the pages of consumers read (a read session of the service, or a SELECT of
    sqlite_reads) and, at each click.echo, how many had been read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, service: bool = False) -> None:
        self.pages = 0
        self.at_echo: list[int] = []
        real_session, real_open, real_echo = Store.session, sqlite_reads.open_current, click.echo

        def counting_session(store: Store) -> Any:
            self.pages += 1
            return real_session(store)

        def counting_open(url: str) -> Any:
            db = real_open(url)
            assert db is not None  # the store is up to date: the fast path is taken
            return CountingConnection(db, self.count)

        def recording_echo(*args: Any, **kwargs: Any) -> None:
            self.at_echo.append(self.pages)
            real_echo(*args, **kwargs)

        monkeypatch.setattr(consumers_cli, "LIST_PAGE_SIZE", 5)
        monkeypatch.setattr(sqlite_reads, "open_current",
                            (lambda url: None) if service else counting_open)
        monkeypatch.setattr(Store, "session", counting_session)
        monkeypatch.setattr(click, "echo", recording_echo)

    def count(self) -> None:
        self.pages += 1


@pytest.mark.parametrize("path", ["sqlite_reads", "service"])
def test_first_page_is_written_before_the_next_is_read(
        cli: Cli, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """Both ways of reading the list stream: the standard library's read of an
    up-to-date SQLite store, and the service's (any other store)."""
    fill(cli, [(f"app:{i:02d}", f"Application {i}") for i in range(12)])
    watch = PageWatch(monkeypatch, service=path == "service")
    lines = cli("consumers", "list").stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["KEY", *(f"app:{i:02d}" for i in range(12))]
    assert watch.pages == 3  # 5 + 5 + 2 rows
    # The header and the whole first page went out having read one page only.
    assert watch.at_echo[:6] == [1] * 6, watch.at_echo
    assert watch.at_echo[6] == 2


def test_later_rows_fit_the_first_page_widths(cli: Cli,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    long_key = "zz:" + "k" * 40 + ":end"
    fill(cli, [("a:1", "A"), ("a:2", "Bee"), (long_key, "N" * 30)])
    monkeypatch.setattr(consumers_cli, "LIST_PAGE_SIZE", 2)
    lines = cli("consumers", "list").stdout.splitlines()
    assert lines[0].split() == ["KEY", "NAME", "SIGNATURE", "2LO", "TOKENS", "CREATED"]
    last = lines[3]
    assert last.startswith("z…d  NNN…  RSA-SHA1")  # key: both ends; name: its start
    assert len(last) == len(lines[1])  # the columns line up
    # The whole listing in one page: nothing shortened, as before.
    monkeypatch.setattr(consumers_cli, "LIST_PAGE_SIZE", 1000)
    assert cli("consumers", "list").stdout.splitlines()[3].startswith(f"{long_key}  {'N' * 30}")


def test_fit() -> None:
    assert _fit("jira:13549426", 9, "middle") == "jira…9426"
    assert _fit("Application 7", 6, "end") == "Appli…"
    assert _fit("12345678", 3, None) == "12345678"  # numbers are never cut
    assert _fit("short", 9, "end") == "short"
    # Wide characters count two cells; the result never passes the width.
    assert _fit("日本語の名前", 6, "end") == "日本…"
    assert _fit("キー:日本語", 7, "middle") == "キ…語"  # 5 cells: padded to 7


@pytest.mark.parametrize("output", ["json", "jsonl", "name"])
def test_every_output_form_streams(cli: Cli, monkeypatch: pytest.MonkeyPatch,
                                   output: str) -> None:
    """-o json, jsonl and name write each record as it is read: the first page's records
    go out before the second page is read."""
    fill(cli, [(f"app:{i:02d}", f"Application {i}") for i in range(12)])
    watch = PageWatch(monkeypatch)
    out = cli("consumers", "list", "-o", output).stdout
    keys = [f"app:{i:02d}" for i in range(12)]
    if output == "json":
        assert [c["key"] for c in json.loads(out)] == keys
    elif output == "jsonl":
        assert [json.loads(line)["key"] for line in out.splitlines()] == keys
    else:
        assert out.splitlines() == keys
    assert watch.pages == 3
    assert watch.at_echo[:5] == [1] * 5, watch.at_echo  # one write a record: the first five
    assert watch.at_echo[5] == 2
