"""Consumers in the console: add by URL (a real local server), add by hand, edit, remove."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from textual.app import App
from textual.message import Message
from textual.widgets import Button, Input, TextArea

from tests.helpers import add_tokens, pem_spki, rsa_key, serve_consumer_info
from tests.tui_support import fetch_by_url, open_console, screen_text, settle, wait_for
from tui_oauth.core.consumer_info_doc import render_consumer_info
from tui_oauth.core.keys import describe, generate_key_pair
from tui_oauth.core.registry import services
from tui_oauth.core.services.tokens import TokenSelection
from tui_oauth.core.store import Store
from tui_oauth.tui.messages import ConsumerRemoved, ConsumerSaved, WorkFailed
from tui_oauth.tui.modals.confirm import ConfirmModal
from tui_oauth.tui.screens.consumer_by_url import ConsumerByUrlScreen
from tui_oauth.tui.screens.consumer_detail import ConsumerDetailScreen
from tui_oauth.tui.screens.consumer_form import ConsumerFormScreen
from tui_oauth.tui.screens.main import MainScreen
from tui_oauth.tui.widgets.field import Field
from tui_oauth.tui.widgets.virtual_table import VirtualTable

KEY = "jira:6f1c2a4e-1b7d-4e8a-9c3f-0d2b5e6a7f99"


def field_error(app: App[None], name: str) -> str:
    return app.screen.query_one(f"#field-{name}", Field).error


async def test_add_by_url_fetches_shows_and_saves(tui_store: Store) -> None:
    _, public_b64 = generate_key_pair(2048)
    body = render_consumer_info(KEY, "JIRA", "Atlassian JIRA", "https://jira.example.com/cb",
                                public_b64)
    seen: list[Message] = []
    fetched: list[str] = []
    with serve_consumer_info(body, requests_seen=fetched) as base:
        async with open_console(tui_store, message_hook=seen.append) as (app, pilot):
            await fetch_by_url(pilot, base)
            text = screen_text(pilot)
            assert KEY in text and "RSA 2048 bits" in text
            assert describe(public_b64).fingerprint[:30] in text
            assert services(tui_store).consumers.list() == []  # nothing saved before confirming
            assert len(fetched) == 1, fetched  # enter fetches once
            # The button (ctrl+s is the same action): the consumer is added once.
            await pilot.click("#save")
            await settle(pilot)
            assert isinstance(app.screen, MainScreen)
            assert len(fetched) == 1, fetched
            table = app.screen.query_one("#consumers-table", VirtualTable)
            assert table.current_key == KEY
    saved = services(tui_store).consumers.get(KEY)
    assert saved.name == "JIRA" and saved.public_key == public_b64
    assert [m.key for m in seen if isinstance(m, ConsumerSaved)] == [KEY]


async def test_add_by_url_error_is_shown_under_the_field(tui_store: Store) -> None:
    with serve_consumer_info(b"<html>login</html>", content_type="text/html") as base:
        async with open_console(tui_store) as (app, pilot):
            await fetch_by_url(pilot, base)
            assert isinstance(app.screen, ConsumerByUrlScreen)
            assert "XML" in field_error(app, "url") or "content type" in field_error(app, "url")
            assert app.screen.query_one("#url", Input).value == base  # kept
            assert app.screen.query_one("#save", Button).disabled
    assert services(tui_store).consumers.list() == []


async def test_add_manual_with_errors_then_success(tui_store: Store) -> None:
    async with open_console(tui_store) as (app, pilot):
        await pilot.press("a", "m")
        assert isinstance(app.screen, ConsumerFormScreen)
        await pilot.press(*"bad key with spaces")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ConsumerFormScreen)  # still open
        assert field_error(app, "key")
        assert "Name" in field_error(app, "name") or field_error(app, "name")
        assert "public key" in field_error(app, "public_key").lower()
        assert app.screen.query_one("#key", Input).value == "bad key with spaces"
        # Correct it: a good key, a name, a PEM public key.
        app.screen.query_one("#key", Input).value = "jira:42"
        app.screen.query_one("#name", Input).value = "JIRA"
        app.screen.query_one("#public_key", TextArea).text = pem_spki(rsa_key(0))
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert await wait_for(pilot, lambda: "jira:42" in screen_text(pilot)), \
            screen_text(pilot)
    assert services(tui_store).consumers.get("jira:42").name == "JIRA"


async def test_edit_keeps_the_key_and_saves(demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        await pilot.press("G")  # partner-portal (sorted by key)
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(app.screen, ConsumerFormScreen)
        assert app.screen.query_one("#key", Input).disabled
        assert app.screen.query_one("#key", Input).value == "partner-portal"
        name = app.screen.query_one("#name", Input)
        name.value = ""
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert field_error(app, "name")  # required, said next to the field
        name.value = "Partner portal (EU)"
        app.screen.query_one("#callback_url", Input).value = "ftp://nope"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "https://" in field_error(app, "callback_url") or field_error(app, "callback_url")
        assert name.value == "Partner portal (EU)"
        app.screen.query_one("#callback_url", Input).value = "https://portal.example.com/cb"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert "Partner portal (EU)" in screen_text(pilot)
    c = services(demo_store).consumers.get("partner-portal")
    assert (c.name, c.callback_url) == ("Partner portal (EU)", "https://portal.example.com/cb")
    assert c.has_shared_secret  # blank secret field kept it


async def test_remove_needs_the_key_typed(tui_store: Store) -> None:
    c = services(tui_store).consumers.add(key="jira:42", name="JIRA",
                                          public_key=pem_spki(rsa_key(0)))
    add_tokens(tui_store, c.id or 0, request=1, access=2)
    seen: list[Message] = []
    async with open_console(tui_store, message_hook=seen.append) as (app, pilot):
        await pilot.press("d")
        await pilot.pause()
        text = screen_text(pilot)
        assert "3 tokens" in text and "Type jira:42 to confirm" in text
        await pilot.press(*"jira:4", "enter")
        await pilot.pause()
        assert "not jira:42" in screen_text(pilot)
        assert services(tui_store).consumers.list() != []
        await pilot.press("2", "enter")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert app.screen.query_one("#consumers-table", VirtualTable).row_count == 0
    assert services(tui_store).consumers.list() == []
    assert any(isinstance(m, ConsumerRemoved) and m.tokens == 3 for m in seen)


async def test_remove_cancelled_with_escape(demo_store: Store) -> None:
    async with open_console(demo_store) as (_, pilot):
        await pilot.press("d", "escape")
        await settle(pilot)
    assert len(services(demo_store).consumers.list()) == 3


async def test_detail_shows_fields_and_tokens_and_revokes(demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        await pilot.press("j", "enter")  # jira (second by key)
        await settle(pilot)
        assert isinstance(app.screen, ConsumerDetailScreen)
        text = screen_text(pilot)
        assert "RSA 2048 bits" in text and "SHA256:E9:8D" in text
        assert "3 request, 4 access" in text
        tokens = app.screen.query_one("#tokens", VirtualTable)
        assert tokens.row_count == 7
        first = tokens.current_key
        await pilot.press("r")
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "no"  # No is focused
        await pilot.press("y")
        await settle(pilot)
        assert str(tokens.get_row(first or "")[2]) == "revoked"
        await pilot.press("R")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        jira = services(demo_store).consumers.list()[1].key
        assert services(demo_store).tokens.count(TokenSelection(consumer_key=jira)) == 0
        assert "revoked" in screen_text(pilot)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_edit_form_does_not_save_over_a_change_made_elsewhere(demo_store: Store) -> None:
    """Issue 7, item 1: the form says so and offers to reload instead of saving over it."""
    from tui_oauth.tui.modals.confirm import ConfirmModal

    async with open_console(demo_store) as (app, pilot):
        await pilot.press("G")  # partner-portal
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(app.screen, ConsumerFormScreen)
        # Meanwhile, someone else changes the description (another terminal, the CLI).
        services(demo_store).consumers.edit("partner-portal",
                                            description="Changed in another terminal")
        app.screen.query_one("#name", Input).value = "My new name"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        assert "changed elsewhere since you opened it" in screen_text(pilot)
        row = services(demo_store).consumers.get("partner-portal")
        assert row.name != "My new name"  # nothing was saved over the other change
        await pilot.press("y")  # Reload
        await settle(pilot)
        assert isinstance(app.screen, ConsumerFormScreen)
        assert app.screen.query_one("#description", Input).value == "Changed in another terminal"
        app.screen.query_one("#name", Input).value = "My new name"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
    row = services(demo_store).consumers.get("partner-portal")
    assert (row.name, row.description) == ("My new name", "Changed in another terminal")


async def test_rotate_secret_from_the_detail(demo_store: Store) -> None:
    """S on an HMAC consumer's detail: a bad overlap is said under the field; a good one
    rotates, shows the new secret once, and keeps the old one for the overlap."""
    from datetime import timedelta

    from textual.widgets import Static

    from tui_oauth.core.timeutil import utcnow
    from tui_oauth.tui.modals.reveal_secret import RevealSecretModal
    from tui_oauth.tui.modals.rotate_secret import RotateSecretModal

    old = services(demo_store).consumers.shared_secret("partner-portal")
    async with open_console(demo_store) as (app, pilot):
        await pilot.press("G", "enter")  # partner-portal's detail
        await settle(pilot)
        assert isinstance(app.screen, ConsumerDetailScreen)
        await pilot.press("S")
        await settle(pilot)
        assert isinstance(app.screen, RotateSecretModal)
        overlap = app.screen.query_one("#overlap", Input)
        overlap.value = ""
        await pilot.press(*"two days", "enter")
        await settle(pilot)
        assert "not a duration" in app.screen.query_one(Field).error
        overlap.value = ""
        await pilot.press(*"2h", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, RevealSecretModal)
        shown = str(app.screen.query_one("#secret-value", Static).render())
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ConsumerDetailScreen)
    new = services(demo_store).consumers.shared_secret("partner-portal")
    assert new is not None and new != old and new in shown
    until = services(demo_store).consumers.get("partner-portal").previous_secret_until
    assert until is not None and timedelta(hours=1) < until - utcnow() <= timedelta(hours=2)


async def test_keys_typed_with_the_enter_that_opens_the_detail_are_not_lost(
        demo_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """`S` (or `e`) pressed in the same burst as the Enter that opens a consumer acts once
    the consumer is read, instead of being dropped while it is read."""
    import time

    from tui_oauth.tui.modals.rotate_secret import RotateSecretModal

    service = services(demo_store).consumers
    real_detail = service.detail

    def slow_detail(key: str) -> Any:  # a slow store: the keys arrive before the consumer
        time.sleep(0.3)
        return real_detail(key)

    monkeypatch.setattr(service, "detail", slow_detail)
    async with open_console(demo_store) as (app, pilot):
        await pilot.press("G", "enter", "S")
        await settle(pilot)
        assert isinstance(app.screen, RotateSecretModal)
        await pilot.press("escape", "escape")
        await settle(pilot)
        await pilot.press("enter", "e")
        await settle(pilot)
        assert isinstance(app.screen, ConsumerFormScreen)
        assert app.screen.query_one("#key", Input).value == "partner-portal"


async def test_add_by_url_buttons_and_enter_act_once(tui_store: Store) -> None:
    """The add-by-URL screen handles its own buttons and enter: the form's handlers do
    not run again after it (Textual calls a handler in each class of the screen)."""
    async with open_console(tui_store) as (app, pilot):
        await pilot.press("a", "u")
        await pilot.press(*"https://x")  # a change: Cancel asks first
        await pilot.click("#cancel")
        await settle(pilot)
        assert sum(isinstance(s, ConfirmModal) for s in app.screen_stack) == 1, \
            app.screen_stack
        await pilot.press("escape")  # keep the form
        await settle(pilot)
        assert isinstance(app.screen, ConsumerByUrlScreen)
        # Enter in the URL fetches (an address refused before any connection), and
        # does not save.
        screen = app.screen
        saves: list[None] = []
        screen.action_save = lambda: saves.append(None)  # type: ignore[method-assign]
        screen.query_one("#url", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        assert saves == [] and isinstance(app.screen, ConsumerByUrlScreen)
        assert field_error(app, "url")


async def test_leaving_a_view_as_its_read_ends_shows_no_error(demo_store: Store) -> None:
    """Esc pressed just as the view's read comes back: the view is gone when its result
    arrives, which is no error to show (it was "Reading the consumer failed")."""
    failed: list[WorkFailed] = []

    def hook(message: Message) -> None:
        if isinstance(message, WorkFailed):
            failed.append(message)

    async with open_console(demo_store, message_hook=hook) as (app, pilot):
        await pilot.press("j", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ConsumerDetailScreen)
        deliver = app.call_from_thread

        left = threading.Lock()  # two jobs (the detail, the refusals): one Esc

        def screen_left_first(callback: Any, *args: Any, **kwargs: Any) -> Any:
            # A job's result (jobs.py): the screen is left, completely, then it arrives.
            if getattr(callback, "__name__", "") == "succeed" and left.acquire(False):
                deliver(app.pop_screen)
            return deliver(callback, *args, **kwargs)

        app.call_from_thread = screen_left_first  # type: ignore[method-assign]
        try:
            screen.action_refresh()
            assert await wait_for(pilot, lambda: not screen.is_attached)
            await settle(pilot)
        finally:
            app.call_from_thread = deliver  # type: ignore[method-assign]
        assert isinstance(app.screen, MainScreen)
        assert failed == [], [str(m.error) for m in failed]
