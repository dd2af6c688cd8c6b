"""The public and listen URLs of the last few `serve`s of a store (store_meta), which
`debug signature` checks a request against (the one it was sent to)."""

from __future__ import annotations

import json

from tui_oauth.core.models import StoreMeta
from tui_oauth.core.registry import services
from tui_oauth.core.services.diagnostics import SERVED_KEPT, SERVED_META, remember_public_url
from tui_oauth.core.store import Store


def test_the_last_few_serves_are_kept_newest_first(store: Store) -> None:
    diagnostics = services(store).diagnostics
    assert diagnostics.served() == [] and diagnostics.served_at("http://a/x") is None
    for port in range(8000, 8000 + SERVED_KEPT + 2):
        remember_public_url(store, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}")
    served = diagnostics.served()
    assert len(served) == SERVED_KEPT
    assert served[0] == ("http://127.0.0.1:8009", "http://127.0.0.1:8009")
    # one served again moves to the front, once
    remember_public_url(store, "http://127.0.0.1:8005", "http://127.0.0.1:8005")
    assert [p for p, _ in diagnostics.served()][:2] == ["http://127.0.0.1:8005",
                                                        "http://127.0.0.1:8009"]
    assert len(diagnostics.served()) == SERVED_KEPT
    # long URLs: as many as store_meta's 1,024 characters hold
    long = "https://jira.example.com/" + "p" * 300
    for i in range(4):
        remember_public_url(store, f"{long}{i}", None)
    assert 1 <= len(diagnostics.served()) < 4
    assert diagnostics.served()[0] == (f"{long}3", None)


def test_a_request_is_matched_to_the_serve_it_reached(store: Store) -> None:
    diagnostics = services(store).diagnostics
    remember_public_url(store, "https://jira.example.com/jira", "http://10.0.0.5:8080")
    remember_public_url(store, "http://127.0.0.1:9000", "http://127.0.0.1:9000")
    at = diagnostics.served_at
    assert at("https://jira.example.com/jira/rest/x") == ("https://jira.example.com/jira",
                                                         "http://10.0.0.5:8080")
    assert at("https://JIRA.example.com:443/jira/rest/x") is not None  # default port
    assert at("https://jira.example.com/jirax/rest") is None  # not under its path
    assert at("http://10.0.0.5:8080/rest/x") is not None  # its listen address
    assert at("http://127.0.0.1:9000/x") == ("http://127.0.0.1:9000", "http://127.0.0.1:9000")
    assert at("http://127.0.0.1:9001/x") is None
    assert at("http://127.0.0.1:bad/x") is None  # a port that is not a number
    # a raw request completed from its Host header: its scheme was a guess
    assert at("http://jira.example.com/jira/x") is None
    assert at("http://jira.example.com/jira/x", scheme_known=False) is not None


def test_a_hand_edited_value_is_ignored(store: Store) -> None:
    remember_public_url(store, "http://127.0.0.1:9000", None)
    for value in ("not json", json.dumps({"a": 1}), json.dumps([[1, 2], ["x"]])):
        with store.session() as s:
            row = s.get(StoreMeta, SERVED_META)
            assert row is not None
            row.value = value
            s.add(row)
            s.commit()
        # the last served public URL is still known
        assert services(store).diagnostics.served() == [("http://127.0.0.1:9000", None)]
