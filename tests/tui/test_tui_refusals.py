"""Refusals in the console: a consumer's recent refusals and clock, the store-wide list
(from every tab, filtered), and one record (every field, advice, base string, check).

Refusals are put in the store as the provider records them (the Refusal and
ConsumerClock rows), and read back through the real service."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlmodel import Session
from textual.pilot import Pilot
from textual.widgets import DataTable, Label

from tests.tui_support import open_console, press_keys, screen_text, settle, wait_for
from tui_oauth.core.models import ConsumerClock, Refusal
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store
from tui_oauth.tui.app import make_app
from tui_oauth.tui.demo import T0
from tui_oauth.tui.screens.main import MainScreen

JIRA = "jira:6f1c2a4e-1b7d-4e8a-9c3f-0d2b5e6a7f81"
#: The app's keys, which every footer keeps at 80 columns (q ? l !).
APP_KEYS = ["leave", "help", "audit", "refusals"]
HOSTILE_KEY = "[bold]evil[/bold]\x1b[2J"
BASE = ("GET&https%3A%2F%2Fjira.example.com%2Frest%2Fwhoami&oauth_consumer_key%3Djira%253A6f1c"
        "%26oauth_nonce%3Dn1%26oauth_signature_method%3DRSA-SHA1%26oauth_timestamp%3D1715000000"
        "%26oauth_token%3Dab12cd34ef%26oauth_version%3D1.0")


#: what the server told the client beyond the problem: longer than a line at 80 columns
TOLD = ("No consumer with this key is configured on this server: check the consumer key "
        "the client sends.")


def add_refusals(store: Store) -> None:
    """JIRA: 3 signature_invalid (one through a proxy's internal URL), 2 timestamp_refused;
    an unknown, hostile key; JIRA's clock 7 min 12 s behind ours."""
    rows = [
        Refusal(at=T0 + timedelta(minutes=i), bucket=JIRA, consumer_key=JIRA,
                token_prefix="ab12cd34…", problem="signature_invalid",
                answered="signature_invalid", method="GET",
                url="https://jira.example.com/rest/whoami",
                seen_url="http://127.0.0.1:8080/rest/whoami" if i == 2
                else "https://jira.example.com/rest/whoami",
                client_addr="10.0.0.7", signature_method="RSA-SHA1", timestamp=1715000000,
                offset=-3, base_string=BASE, signature=f"c2lnbmF0dXJl{i}==",
                listen_url="http://10.0.0.11:8080/rest/whoami" if i == 2 else "")
        for i in range(3)
    ] + [
        Refusal(at=T0 + timedelta(minutes=10 + i), bucket=JIRA, consumer_key=JIRA,
                problem="timestamp_refused", answered="timestamp_refused", method="POST",
                url="https://jira.example.com/plugins/servlet/oauth/request-token",
                client_addr="10.0.0.7", signature_method="RSA-SHA1",
                timestamp=1715000000 - 432, offset=-432)
        for i in range(2)
    ] + [
        Refusal(at=T0 + timedelta(minutes=20), bucket="", consumer_key=HOSTILE_KEY,
                problem="consumer_key_unknown", answered="consumer_key_unknown", method="GET",
                url="https://jira.example.com/rest/[red]x[/red]",
                client_addr="203.0.113.9\x1b]52;c;ZXZpbA==\x07", signature_method="HMAC-SHA1",
                detail=TOLD),
    ]
    with Session(store.engine) as s:
        s.add_all(rows)
        s.add(ConsumerClock(consumer_key=JIRA, median_offset=-432, samples=40,
                            updated_at=T0 + timedelta(minutes=30)))
        s.commit()


async def open_jira(pilot: Pilot[None]) -> None:
    """From the Consumers list, JIRA's view."""
    app = pilot.app
    await settle(pilot)
    table = app.screen.query_one("#consumers-table")
    while table.current_key != JIRA:  # type: ignore[attr-defined]
        await pilot.press("j")
    await pilot.press("enter")
    await settle(pilot)


def status(pilot: Pilot[None]) -> str:
    """The refusals view's status line (cheaper to read than the whole screen)."""
    return str(pilot.app.screen.query_one("#refusals-status", Label).render())


def on(pilot: Pilot[None], name: str) -> Callable[[], bool]:
    return lambda: type(pilot.app.screen).__name__ == name


async def test_consumer_view_refusals_and_the_record(demo_store: Store) -> None:
    add_refusals(demo_store)
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_jira(pilot)
        text = screen_text(pilot)
        # Count by problem, most first; the clock; the last few with short advice.
        assert "Recent refusals: 5 (signature_invalid 3, timestamp_refused 2)" in text
        assert "Clock: 7 min 12 s behind ours, median of 40 requests" in text
        # The advice, compact: the fragment that matters (the record has it all).
        assert "clock 7 min 12 s behind ours" in text
        assert "may have signed http://127.0.0.1:8080/rest/whoami" in text
        assert HOSTILE_KEY not in text and "evil" not in text  # another consumer's
        # Tab to the refusals (from the tokens), then enter: the newest one's record.
        assert app.focused is not None and app.focused.id == "tokens"
        await pilot.press("tab", "j", "j", "enter")  # the third newest: through the proxy
        assert await wait_for(pilot, on(pilot, "RefusalRecordScreen"))
        await settle(pilot)
        text = screen_text(pilot)
        assert "Refusal #3: signature_invalid" in text
        assert "The signature does not match. What usually differs: the URL signed" in text
        assert "Reached us as" in text and "ab12cd34…" in text and "c2lnbmF0dXJl2==" in text
        # the listen address the advice names, as `refusals show` has it
        assert "or http://10.0.0.11:8080/rest/whoami." in " ".join(text.split())
        assert "Listening on" in text
        assert "10.0.0.7" in text and "RSA-SHA1" in text
        assert "oauth_timestamp%3D1715000000" in text.replace("\n", "").replace(" ", "")
        await pilot.press("c")
        assert app.clipboard == BASE
        await pilot.press("escape")
        await settle(pilot)
        assert type(app.screen).__name__ == "ConsumerDetailScreen"
        # The selected refusal is marked without colour too (NO_COLOR), as in the lists.
        refusals = app.screen.query_one("#refusals", DataTable)
        labels = [str(row.label) for row in refusals.ordered_rows]
        assert labels == [" ", " ", "▶", " ", " "], labels
        # The palette, with its own input focused, names the screen in words and offers
        # what works once it closes: enter opens the selected refusal from anywhere.
        await pilot.press("tab")  # from the refusals back to the tokens
        await pilot.press("ctrl+p")
        assert await wait_for(pilot, on(pilot, "CommandPalette"))
        from tui_oauth.tui import commands
        detail = app.screen_stack[-2]
        offered = {c.title: c.help for c in commands.system_commands(app, detail)}
        assert "Consumer: Open refusal" in offered and "Everywhere: Refusals" in offered
        assert not any("read-only" in h for h in offered.values()), offered
        assert not any(t.startswith("ConsumerDetail") for t in offered)
        assert "Consumer: Copy PEM" in offered  # JIRA has a public key
        assert "Consumer: Rotate secret" not in offered  # ... and no shared secret
        await pilot.press(*"open refusal")
        await settle(pilot)
        await pilot.press("enter")
        assert await wait_for(pilot, on(pilot, "RefusalRecordScreen"))
        assert "Refusal #3:" in screen_text(pilot)
        await pilot.press("escape")
        assert await wait_for(pilot, on(pilot, "ConsumerDetailScreen"))
        # `!` from a consumer's view: that consumer's refusals only.
        await pilot.press("exclamation_mark")
        assert await wait_for(pilot, on(pilot, "RefusalsScreen"))
        await settle(pilot)
        text = screen_text(pilot)
        assert f"Refusals of {JIRA}" in text and "5 refusals" in text
        assert "consumer_key_unknown" not in text
        # Esc typed ahead in one burst (the filter open): clear, leave, leave the view.
        await pilot.press("slash", *"zzz")
        assert await wait_for(pilot, lambda: "zzz" in status(pilot))
        from tests.tui.test_tui_keys import burst
        await burst(pilot, ["escape"] * 5)
        assert await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))


async def test_store_wide_refusals_from_every_tab_filter_and_hostile_text(
        demo_store: Store) -> None:
    add_refusals(demo_store)
    async with open_console(demo_store, size=(80, 24)) as (app, pilot):
        # From each tab (Consumers: the read-only test; Service Providers: below).
        await pilot.press("2", "exclamation_mark")
        assert await wait_for(pilot, lambda: status(pilot) == "6 refusals")
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        # At 80 columns the Consumers footer makes room for ! and l: the keys its status
        # line names (s, /, enter) give way.
        await pilot.press("1")
        await settle(pilot)
        shown = footer_actions(pilot)
        assert shown[-4:] == APP_KEYS, shown
        assert "sort" not in shown and "add" in shown
        # ... and in a consumer's view: screen keys give way (r and R: the tokens title
        # names them), q ? l ! stay; no token, no "Revoke token" (JIRA has tokens)
        await open_jira(pilot)
        shown = footer_actions(pilot)
        assert shown[-4:] == APP_KEYS and "back" in shown, shown
        assert app.screen.check_action("revoke", ()) is not False
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        none = next(c.key for c in services(demo_store).consumers.list()
                    if services(demo_store).tokens.count_of(c.key) == 0)
        table = app.screen.query_one("#consumers-table")
        while table.current_key != none:  # type: ignore[attr-defined]
            await pilot.press("j")
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: "Tokens: none" in screen_text(pilot))
        shown = footer_actions(pilot)
        assert shown[-4:] == APP_KEYS and "back" in shown, shown
        assert app.screen.check_action("revoke", ()) is False
        assert app.screen.check_action("revoke_all", ()) is False
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("3")
        # The help and the command palette name it (the palette's input focused: a
        # letter action is still offered, not "read-only").
        await pilot.press("question_mark")
        await settle(pilot)
        help_table = app.screen.query_one("#help-table", DataTable)
        assert any("[app.refusals]" in str(help_table.get_row_at(i)[2])
                   for i in range(help_table.row_count))
        assert "name the id shown after its action in TUI_OAUTH_KEYMAP" in screen_text(pilot)
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        assert await wait_for(pilot, on(pilot, "CommandPalette"))
        await pilot.press(*"refusals")
        await settle(pilot)
        assert "read-only" not in screen_text(pilot)
        await pilot.press("down", "enter")
        assert await wait_for(pilot, lambda: status(pilot) == "6 refusals")
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))

        await pilot.press("exclamation_mark")
        assert await wait_for(pilot, lambda: status(pilot) == "6 refusals")
        # (here, ! is where you are: it leaves the footer; nothing else had to)
        assert footer_actions(pilot) == ["back", "open", "filter", *APP_KEYS[:3]]
        text = screen_text(pilot)
        # Newest first: the hostile row, shown as written (no markup, no escape sequence).
        lines = text.splitlines()
        newest = next(i for i, line in enumerate(lines) if "consumer_key_unknown" in line)
        oldest = next(i for i, line in enumerate(lines) if "signature_invalid" in line)
        assert newest < oldest
        assert "[bold]evil" in text and "\x1b" not in text and "\\x1b" in text
        assert "\\x1b]52;c;" in text or "\\x1b]52" in text  # the client address, escaped
        # At 120 columns the Client column gets its width (the cursor mark's column and
        # the scroll bar counted): the address is not cut while Request is wide.
        await pilot.resize_terminal(120, 24)
        await settle(pilot)
        rows = [line for line in screen_text(pilot).splitlines() if "10.0.0.7" in line]
        assert rows and all(line.rstrip().endswith(" 10.0.0.7") for line in rows), rows
        table = app.screen.query_one("#refusals-table", DataTable)
        assert table.virtual_size.width <= table.size.width
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        # Filter: `/` then text (typed in one burst), enter keeps it; Esc clears, Esc leaves.
        await pilot.press("slash", *"stamp", "enter")
        assert await wait_for(pilot, lambda: status(pilot) == "2 refusals matching “stamp”")
        assert "consumer_key_unknown" not in screen_text(pilot)
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: status(pilot) == "6 refusals")
        assert type(app.screen).__name__ == "RefusalsScreen"
        # The record of the hostile row: markup and escapes shown as text.
        await pilot.press("g", "enter")
        assert await wait_for(pilot, on(pilot, "RefusalRecordScreen"))
        await settle(pilot)
        text = screen_text(pilot)
        assert "[bold]evil[/bold]\\x1b[2J" in text and "/rest/[red]x[/red]" in text
        assert "no consumer has this key" in text
        assert "\x1b" not in text
        # A value longer than the line wraps under its value column, not under the labels.
        lines = text.splitlines()
        told = next(i for i, line in enumerate(lines) if "Told the client" in line)
        assert lines[told].index("No consumer") == lines[told].index("Told") + 16
        column = lines[told].index("No consumer")
        assert "the client sends." in lines[told + 1]
        assert not lines[told + 1][:column].strip() and lines[told + 1][column] != " "
        assert footer_actions(pilot)[-4:] == APP_KEYS, footer_actions(pilot)
        await pilot.press("escape", "j", "j", "j", "enter")  # signature_invalid: t and c too
        assert await wait_for(pilot, lambda: "Refusal #3:" in screen_text(pilot))
        await settle(pilot)
        shown = footer_actions(pilot)
        assert shown[-4:] == APP_KEYS and "back" in shown, shown
        await pilot.press("escape", "escape")
        assert await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))


def footer_actions(pilot: Pilot[None]) -> list[str]:
    from textual.widgets._footer import FooterKey
    return [k.action for k in pilot.app.screen.query(FooterKey)
            if not k.has_class("-command-palette")]


async def test_read_only_console_shows_refusals(sqlite_url: str, memory_keyring: object) -> None:
    from tui_oauth.core.store import open_store
    from tui_oauth.tui.demo import fill_demo_store

    writable = open_store(sqlite_url, secrets_backend=memory_keyring)  # type: ignore[arg-type]
    fill_demo_store(writable)
    add_refusals(writable)
    writable.close()
    store = open_store(sqlite_url, secrets_backend=memory_keyring,  # type: ignore[arg-type]
                       read_only=True)
    try:
        async with open_console(store) as (app, pilot):
            # The palette says "read-only" of the changes only.
            from tui_oauth.tui import commands
            offered = {c.title: c.help for c in commands.system_commands(app, app.screen)}
            assert offered["Consumers: Add"].endswith("(refused: read-only)")
            assert not offered["Everywhere: Refusals"].endswith("(refused: read-only)")
            await pilot.press("exclamation_mark")  # from the Consumers tab
            assert await wait_for(pilot, lambda: status(pilot) == "6 refusals")
    finally:
        store.close()


def signed_base(url: str) -> str:
    from oauthlib.oauth1.rfc5849.signature import base_string_uri, signature_base_string
    from oauthlib.oauth1.rfc5849.utils import escape

    params = [("oauth_consumer_key", "partner-portal"), ("oauth_nonce", "n42"),
              ("oauth_signature_method", "HMAC-SHA1"), ("oauth_timestamp", "1715000000"),
              ("oauth_version", "1.0")]
    normalized = "&".join(f"{escape(k)}={escape(v)}" for k, v in sorted(params))
    base: str = signature_base_string("GET", base_string_uri(url), normalized)
    return base


async def test_the_record_checks_the_request_against_the_stored_key(
        demo_store: Store) -> None:
    """partner-portal signed the internal URL it was configured with: `t` says so."""
    import base64
    import hashlib
    import hmac

    public, internal = ("https://jira.example.com/rest/whoami",
                        "http://127.0.0.1:8080/rest/whoami")
    # HMAC-SHA1 with the stored secret (and no token secret), over the internal URL
    signature = base64.b64encode(hmac.digest(b"demo-partner-secret&",
                                             signed_base(internal).encode(),
                                             hashlib.sha1)).decode()
    with Session(demo_store.engine) as s:
        s.add(Refusal(at=T0, bucket="partner-portal", consumer_key="partner-portal",
                      problem="signature_invalid", answered="signature_invalid",
                      method="GET", url=public, seen_url=internal, client_addr="10.0.0.8",
                      signature_method="HMAC-SHA1", timestamp=1715000000, offset=0,
                      base_string=signed_base(public), signature=signature))
        s.add(Refusal(at=T0, bucket="partner-portal", consumer_key="partner-portal",
                      problem="nonce_used", answered="nonce_used", method="GET", url=public))
        s.commit()
    async with open_console(demo_store) as (app, pilot):
        await pilot.press("exclamation_mark")
        assert await wait_for(pilot, on(pilot, "RefusalsScreen"))
        await settle(pilot)
        # No base string, nothing to check: the key is not offered.
        await pilot.press("enter")
        assert await wait_for(pilot, on(pilot, "RefusalRecordScreen"))
        assert app.screen.check_action("check", ()) is False
        await pilot.press("escape", "j", "enter")
        assert await wait_for(pilot, on(pilot, "RefusalRecordScreen"))
        assert "Not checked yet" in screen_text(pilot)
        await pilot.press("t")
        # The finding, brought into view whole (its first line and its fix)
        assert await wait_for(pilot, lambda: "Found it (internal_url)" in screen_text(pilot)
                              and "Fix:" in screen_text(pilot)), screen_text(pilot)
        finding = str(app.screen.query_one("#record-finding").render())
        assert "Tried: the internal URL" in finding, finding  # in words, not codes


def test_snapshot_record_80x24(demo_store: Store, snap_compare: Callable[..., bool]) -> None:
    """The record of a request signed through a proxy, at 80x24."""
    add_refusals(demo_store)
    assert snap_compare(make_app(demo_store), terminal_size=(80, 24),
                        run_before=press_keys("exclamation_mark", "j", "j", "j", "enter"))
