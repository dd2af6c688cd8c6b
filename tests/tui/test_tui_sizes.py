"""Sizes: at 80x24 the add-by-URL preview shows the fingerprint and a weak key's warning
without scrolling."""

from __future__ import annotations

from textual.widgets import Checkbox, Input

from tests.helpers import rsa_key, serve_consumer_info, spki_b64
from tests.tui_support import screen_text, settle
from tui_oauth.core.consumer_info_doc import render_consumer_info
from tui_oauth.core.keys import describe
from tui_oauth.core.store import Store
from tui_oauth.tui.app import make_app
from tui_oauth.tui.screens.consumer_by_url import ConsumerByUrlScreen

KEY = "jira:6f1c2a4e-1b7d-4e8a-9c3f-0d2b5e6a7f99"


async def test_by_url_preview_fits_80x24(tui_store: Store) -> None:
    public_b64 = spki_b64(rsa_key(bits=1024))  # weak: the preview warns
    body = render_consumer_info(KEY, "JIRA", "Atlassian JIRA", "https://jira.example.com/cb",
                                public_b64)
    app = make_app(tui_store)
    with serve_consumer_info(body) as base:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("a", "u")
            screen = app.screen
            assert isinstance(screen, ConsumerByUrlScreen)
            screen.query_one("#allow_private", Checkbox).value = True  # a loopback server
            screen.query_one("#url", Input).value = base
            await pilot.press("enter")
            await settle(pilot)
            assert screen.preview is not None
            text = screen_text(pilot)
            fingerprint = describe(public_b64).fingerprint
            flat = " ".join(line.strip(" ▊▎│") for line in text.splitlines())
            assert fingerprint[:40] in text and fingerprint[-20:] in flat
            assert "Weak key: RSA 1024 bits" in text and "key pair." in text
            assert screen.query_one("#form-body").scroll_y == 0
            assert screen.query_one("#url", Input).region.height > 0
