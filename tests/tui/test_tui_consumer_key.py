"""A consumer's public key in the console (issue 9): shown as PEM and bare base64 with
its fingerprint and size, copied with OSC 52, and a weak (<2048-bit) key said in words
when it is shown, pasted into the form, or found by URL."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa
from textual.pilot import Pilot
from textual.widgets import Static, TextArea

from tests.helpers import (
    expected_fingerprint,
    pem_spki,
    rsa_key,
    serve_consumer_info,
    spki_b64,
)
from tests.tui_support import fetch_by_url, open_console, screen_text, settle, wait_for
from tui_oauth.core.consumer_info_doc import render_consumer_info
from tui_oauth.core.keys import describe
from tui_oauth.core.models import HMAC_SHA1
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store
from tui_oauth.tui.app import make_app
from tui_oauth.tui.screens.consumer_detail import ConsumerDetailScreen
from tui_oauth.tui.screens.consumer_form import ConsumerFormScreen
from tui_oauth.tui.screens.main import MainScreen

KEY = "jira:weak"


def weak_key() -> rsa.RSAPrivateKey:
    """1024 bits: accepted, but weak (small keys generate in a few milliseconds)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505


def unwrapped(text: str) -> str:
    """The screen's text with line breaks and padding gone (a long base64 wraps)."""
    return "".join(text.split())


async def open_detail(pilot: Pilot[None], key: str) -> ConsumerDetailScreen:
    await settle(pilot)
    screen = ConsumerDetailScreen(key)
    await pilot.app.push_screen(screen)
    await settle(pilot)
    assert pilot.app.screen is screen
    return screen


async def test_detail_shows_the_key_as_base64_and_pem_and_copies_both(
        tui_store: Store) -> None:
    key = weak_key()
    services(tui_store).consumers.add(key=KEY, name="JIRA", public_key=pem_spki(key))
    app = make_app(tui_store)
    async with app.run_test(size=(120, 80)) as pilot:
        await open_detail(pilot, KEY)
        text = screen_text(pilot)
        assert expected_fingerprint(key) in text
        assert spki_b64(key) in unwrapped(text)
        assert "-----BEGIN PUBLIC KEY-----" in text
        assert "RSA 1024 bits: WEAK" in text
        await pilot.press("c")
        assert app.clipboard == pem_spki(key)
        await pilot.press("b")
        assert app.clipboard == spki_b64(key)
        assert any("Copied the public key (bare base64)" in str(n.message)
                   for n in app._notifications)
        assert any("Copied the public key (PEM) — your terminal must allow OSC 52"
                   in str(n.message) for n in app._notifications)


async def test_detail_of_a_strong_key_is_not_weak_and_its_copy_keys_are_in_the_footer(
        demo_store: Store) -> None:
    from textual.widgets import Footer

    jira = services(demo_store).consumers.get(services(demo_store).consumers.list()[1].key)
    assert jira.public_key
    app = make_app(demo_store)
    async with app.run_test(size=(160, 60)) as pilot:
        await open_detail(pilot, jira.key)
        text = screen_text(pilot)
        assert "RSA 2048 bits" in text and "WEAK" not in text
        assert jira.public_key in unwrapped(text)
        footer = " ".join(str(w.render()) for w in app.screen.query_one(Footer).query("*"))
        assert "Copy PEM" in footer and "Copy base64" in footer
        keys = app.screen._bindings.key_to_bindings
        assert {b.id for b in keys["c"] + keys["b"]} == {"consumer.copy_pem",
                                                          "consumer.copy_base64"}


async def test_detail_without_a_public_key_has_nothing_to_copy(demo_store: Store) -> None:
    consumers = services(demo_store).consumers
    hmac = next(consumers.get(c.key) for c in consumers.list()
                if c.signature_method == HMAC_SHA1)
    assert hmac.public_key is None
    app = make_app(demo_store)
    async with app.run_test(size=(120, 80)) as pilot:
        screen = await open_detail(pilot, hmac.key)
        assert not screen.query_one("#consumer-pem", Static).display
        assert "none" in screen_text(pilot)
        app.copy_to_clipboard("before")
        footer = screen_text(pilot).splitlines()[-1]
        # Copying a key it does not have leaves the footer (room for what applies), and
        # the keys do nothing; rotating its shared secret is offered instead.
        assert "Copy PEM" not in footer and "Copy base64" not in footer
        assert "Rotate secret" in footer
        for press in ("c", "b"):
            await pilot.press(press)
            assert app.clipboard == "before"


async def test_the_form_warns_as_soon_as_a_weak_key_is_pasted(tui_store: Store) -> None:
    key = weak_key()
    async with open_console(tui_store) as (app, pilot):
        await pilot.press("a", "m")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, ConsumerFormScreen)
        warning = form.query_one("#public-key-warning", Static)
        area = form.query_one("#public_key", TextArea)
        area.text = pem_spki(rsa_key(0))  # 2048 bits: nothing to say
        await settle(pilot)
        assert not warning.display
        area.text = pem_spki(key)
        assert await wait_for(pilot, lambda: warning.display)
        assert "Weak key: RSA 1024 bits" in str(warning.render())
        area.text = "not a key"  # an error for the save to say; no warning
        assert await wait_for(pilot, lambda: not warning.display)
        area.text = spki_b64(key)  # bare base64 too
        assert await wait_for(pilot, lambda: warning.display)
        form.query_one("#key").value = KEY  # type: ignore[attr-defined]
        form.query_one("#name").value = "JIRA"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)  # a warning does not stop the save
    assert services(tui_store).consumers.get(KEY).public_key == spki_b64(key)


async def test_editing_a_consumer_with_a_weak_key_warns_at_once(tui_store: Store) -> None:
    key = weak_key()
    services(tui_store).consumers.add(key=KEY, name="JIRA", public_key=pem_spki(key))
    async with open_console(tui_store) as (app, pilot):
        consumer = services(tui_store).consumers.get(KEY)
        await app.push_screen(ConsumerFormScreen(consumer, describe(spki_b64(key)).pem))
        await settle(pilot)
        assert app.screen.query_one("#public-key-warning", Static).display


async def test_add_by_url_says_a_weak_key_is_weak(tui_store: Store) -> None:
    key = weak_key()
    body = render_consumer_info(KEY, "JIRA", None, None, spki_b64(key))
    with serve_consumer_info(body) as base:
        async with open_console(tui_store) as (_, pilot):
            await fetch_by_url(pilot, base)
            text = screen_text(pilot)
            assert "RSA 1024 bits: WEAK" in text and "Weak key: RSA 1024 bits" in text
            assert "1024-bit key: 2048 bits or more recommended" not in text  # said once
