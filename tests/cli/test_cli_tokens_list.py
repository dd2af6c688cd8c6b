"""`tokens list --all`: every matching token, streamed page after page (the same document
as one page's), in process through click's runner against a store with an in-memory
keyring (listing tokens never reads the keyring)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from tests.cli_support import add_tokens
from tui_oauth.cli import cli
from tui_oauth.cli import tokens as tokens_cmd
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store


def run(store: Store, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--db", store.url, "tokens", "list", *args],
                                prog_name="tui-oauth")
    return result


@pytest.fixture
def with_tokens(store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    services(store).consumers.add(key="a", name="A", shared_secret="s3cret-value")
    services(store).consumers.add(key="b", name="B", shared_secret="s3cret-value")
    add_tokens(store.url, "a", ["access"] * 12 + ["request"] * 5)
    add_tokens(store.url, "b", ["access"] * 4)
    monkeypatch.setattr(tokens_cmd, "ALL_PAGE_SIZE", 5)  # several pages from a few rows
    return store


def test_all_json_is_every_page_in_one_document(with_tokens: Store) -> None:
    pages: list[dict[str, Any]] = []
    before: list[str] = []
    while True:
        result = run(with_tokens, "--json", "--limit", "6", *before)
        assert result.exit_code == 0, result.output
        pages.append(json.loads(result.output))
        if pages[-1]["next_before"] is None:
            break
        before = ["--before", str(pages[-1]["next_before"])]
    result = run(with_tokens, "--all", "--json")
    assert result.exit_code == 0, result.output
    everything = json.loads(result.output)
    assert everything == {"tokens": [t for p in pages for t in p["tokens"]],
                          "next_before": None}
    assert len(everything["tokens"]) == 21


def test_all_reads_page_by_page(with_tokens: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    service_type = type(services(with_tokens).tokens)
    original = service_type.list

    def spy(self: Any, **kw: Any) -> Any:
        calls.append(kw)
        return original(self, **kw)

    monkeypatch.setattr(service_type, "list", spy)
    result = run(with_tokens, "--all", "--consumer", "a", "--type", "access")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["TOKEN", "CONSUMER", "USER"]
    assert len(lines) == 1 + 12
    assert all(kw["limit"] == 5 for kw in calls) and len(calls) == 3
    assert calls[0]["before_id"] is None


def test_all_with_filters_and_before(with_tokens: Store) -> None:
    page = json.loads(run(with_tokens, "--json", "--limit", "3").output)
    rest = json.loads(run(with_tokens, "--all", "--json", "--before",
                          str(page["next_before"])).output)
    assert len(rest["tokens"]) == 21 - 3
    requests = json.loads(run(with_tokens, "--all", "--json", "--type", "request").output)
    assert {t["type"] for t in requests["tokens"]} == {"request"}
    assert len(requests["tokens"]) == 5


def test_all_empty_and_limit_refused(store: Store) -> None:
    result = run(store, "--all", "--json")
    assert result.exit_code == 0 and json.loads(result.output) == {"tokens": [],
                                                                   "next_before": None}
    assert run(store, "--all").output.strip() == "No tokens."
    refused = run(store, "--all", "--limit", "5")
    assert refused.exit_code == 2 and "--limit" in refused.output


def test_a_page_says_how_to_get_the_rest(with_tokens: Store) -> None:
    out = run(with_tokens, "--limit", "4").output
    assert "(more: --before" in out and "--all" in out
