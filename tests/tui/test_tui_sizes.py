"""Sizes: at 80x24 the add-by-URL preview shows the fingerprint and a weak key's warning
without scrolling; a refused save scrolls to the field in error."""

from __future__ import annotations

from textual.widgets import Checkbox, Input

from tests.helpers import rsa_key, serve_consumer_info, spki_b64
from tests.tui_support import screen_text, settle
from tui_oauth.core.consumer_info_doc import render_consumer_info
from tui_oauth.core.keys import describe
from tui_oauth.core.store import Store
from tui_oauth.tui.app import make_app
from tui_oauth.tui.screens.consumer_by_url import ConsumerByUrlScreen
from tui_oauth.tui.screens.provider_form import ProviderFormScreen
from tui_oauth.tui.widgets.field import Field

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


async def test_a_save_refused_brings_the_first_field_in_error_into_view(
        tui_store: Store) -> None:
    """At 80x24 the add-provider form's last field is below the fold: a save refused
    for it scrolls it into view, message and all, and focuses it (as a duplicate name,
    at the top, already was)."""
    app = make_app(tui_store)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        form = ProviderFormScreen()
        await app.push_screen(form)
        await pilot.pause()
        values = {"name": "Fold", "consumer_key": "ck", "shared_secret": "s3cret",
                  "request_token_url": "https://example.com/request",
                  "authorization_url": "https://example.com/authorize",
                  "access_token_url": "not a url"}
        for name, value in values.items():
            form.query_one(f"#{name}", Input).value = value
        form.query_one("#name", Input).focus()
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(pilot)
        field = form.query_one("#field-access_token_url", Field)
        assert field.error, "the save was expected to be refused for this field"
        assert app.focused is form.query_one("#access_token_url", Input)
        body = form.query_one("#form-body")
        message = field.query_one(".field-error")
        assert body.scroll_y > 0
        assert message.region.height > 0
        assert body.region.contains_region(message.region)
        assert field.error.split()[0] in screen_text(pilot)
