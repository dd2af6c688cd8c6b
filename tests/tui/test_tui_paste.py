"""Pastes and Esc in a burst land as the user meant: a paste waits for the keys typed
before it, a PEM pasted with \\r line breaks is a PEM, a paste holding ESC is refused
whole (a real terminal, tmux), and Esc then a key sent fast is Esc then the key."""

from __future__ import annotations

import subprocess

from textual import events
from textual.pilot import Pilot
from textual.widgets import Input, TabbedContent, TextArea

from tests.helpers import pem_spki, rsa_key
from tests.tui.test_tui_keys import burst
from tests.tui.test_tui_tmux import Tmux
from tests.tui.test_tui_tmux import console as console  # the fixture
from tests.tui_support import current_screen, open_console, settle
from tui_oauth.core.store import Store
from tui_oauth.tui.app import make_app
from tui_oauth.tui.modals.confirm import ConfirmModal
from tui_oauth.tui.screens.consumer_form import ConsumerFormScreen
from tui_oauth.tui.widgets.field import Field
from tui_oauth.tui.widgets.terminal_input import ConsoleParser

PEM = pem_spki(rsa_key(0))


async def send(pilot: Pilot[None], *sent: events.Key | events.Paste) -> None:
    """Keys and pastes queued at once, as a terminal sends them."""
    app = pilot.app
    driver = app._driver
    assert driver is not None
    for event in sent:
        event.set_sender(app)
        driver.send_message(event)
    await settle(pilot)


async def keys_then_paste(pilot: Pilot[None], keys: list[str], text: str) -> None:
    await send(pilot, *(events.Key(k, k if len(k) == 1 else None) for k in keys),
               events.Paste(text))


def alt(character: str, key: str | None = None) -> events.Key:
    """Alt+``character`` as Textual reads ESC + character (the character kept)."""
    return events.Key(f"alt+{key or character}", character)


async def test_a_paste_waits_for_keys_typed_before_it_and_r_is_a_line_break(
        demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        await keys_then_paste(pilot, ["a", "m", "a", "b", "tab"], "PLAIN")
        form = app.screen
        assert isinstance(form, ConsumerFormScreen)
        assert form.query_one("#key", Input).value == "ab"
        assert form.query_one("#name", Input).value == "PLAIN"
        # A PEM pasted as xterm, VTE and tmux paste it: lines ended by \r.
        area = form.query_one("#public_key", TextArea)
        area.focus()
        await keys_then_paste(pilot, [], PEM.replace("\n", "\r"))
        assert area.text == PEM
        assert form.query_one("#field-public_key", Field).error == ""
        # Into a one-line field, a copied line's \r goes; two lines are refused.
        name = form.query_one("#name", Input)
        name.value = ""
        name.focus()
        await keys_then_paste(pilot, [], "JIRA\r")
        assert name.value == "JIRA"
        await keys_then_paste(pilot, [], "a\rb")
        assert name.value == "JIRA"
        assert "Nothing was pasted" in form.query_one("#field-name", Field).error


async def test_an_alt_key_nothing_binds_is_esc_then_the_key(demo_store: Store) -> None:
    async with open_console(demo_store) as (app, pilot):
        main = app.screen
        tabs = main.query_one(TabbedContent)
        await send(pilot, alt("3"))  # Esc (no filter to clear), then 3: Providers
        assert current_screen(pilot) is main and tabs.active == "providers"
        await burst(pilot, ["1", "a", "m"])
        await burst(pilot, ["k"])
        await send(pilot, alt("Q", "shift+q"))  # Esc: the changed form asks
        assert isinstance(app.screen, ConfirmModal)
        await burst(pilot, ["y"])  # (q went to the dialog, which has no q)
        assert current_screen(pilot) is main and tabs.active == "consumers"


async def test_a_bound_alt_key_is_not_split(demo_store: Store) -> None:
    app = make_app(demo_store, keymap={"tab.info": "alt+3"})
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await send(pilot, alt("3"))
        assert app.screen.query_one(TabbedContent).active == "info"


def _paste(console: Tmux, text: str) -> None:
    """``text`` pasted as a terminal does: bracketed, line feeds sent as \\r."""
    subprocess.run(["tmux", "-L", console.socket, "load-buffer", "-b", "p", "-"],
                   input=text, text=True, check=True, timeout=10)
    console.run("paste-buffer", "-p", "-d", "-b", "p", "-t", "console")


def test_a_real_terminal_keeps_esc_apart_and_refuses_a_paste_with_esc(
        console: Tmux) -> None:
    console.wait(lambda t: "Partner portal" in t)
    console.run("send-keys", "-t", "console", "Escape", "3")  # one burst: Esc, then 3
    text = console.wait(lambda t: "Legacy CRM" in t)
    assert "Legacy CRM" in text, text
    console.run("send-keys", "-t", "console", "1", "a", "m", "k", "1", "Tab")
    console.wait(lambda t: "k1" in t)
    _paste(console, "Evil\x1b[2Jname")
    text = console.wait(lambda t: "was pasted" in t)
    assert "Nothing" in text and "was pasted" in text and "(\\x1b)" in text, text
    assert "Evil" not in text and "name^" not in text, text
    _paste(console, "PL\nAIN")
    text = console.wait(lambda t: "(\\n)" in t)
    assert "PL" not in text.replace("PLAIN", ""), text


def test_the_parser_keeps_a_paste_whole_and_reads_esc_digit_as_alt() -> None:
    """Textual's own parser gave the keys ^[2Jname, then a paste of "Evil"."""
    parser = ConsoleParser()
    got = [*parser.feed("x\x1b[200~Evil\x1b[2Jna"), *parser.feed("me\r\x1b[20"),
           *parser.feed("1~y"), *parser.feed("\x1b3\x1b\r")]
    assert [(type(e).__name__, getattr(e, "key", None) or getattr(e, "text", None))
            for e in got] == [("Key", "x"), ("Paste", "Evil\x1b[2Jname\r"), ("Key", "y"),
                              ("Key", "alt+3"), ("Key", "escape"), ("Key", "enter")]
