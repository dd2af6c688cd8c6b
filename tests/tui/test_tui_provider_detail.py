"""The provider view in the console (issue 8): held tokens, test connection, connect with
a verifier typed in, a call from the request pane, forget; over real HTTP on 127.0.0.1
against tui-oauth's own provider, at 80x24."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from tests.helpers import audit_actions
from tests.provider_support import OAUTH, Server, add_hmac_consumer, running_server
from tests.tui_support import current_screen, press_keys, screen_text, settle, wait_for
from tui_oauth.core.registry import services
from tui_oauth.core.services.connect import CallResponse, CheckResult
from tui_oauth.core.store import Store
from tui_oauth.tui.app import OAuthAdminApp, make_app
from tui_oauth.tui.modals.confirm import ConfirmModal
from tui_oauth.tui.modals.connect import ConnectModal
from tui_oauth.tui.screens.provider_detail import ProviderDetailScreen
from tui_oauth.tui.widgets.check_list import CheckList
from tui_oauth.tui.widgets.field import Field
from tui_oauth.tui.widgets.request_pane import RequestPane

SECRET = "kd94hf93k423kf44"
SIZE = (80, 24)
NAME = "Loopback"


def endpoints(base: str) -> dict[str, str]:
    return {"request_token_url": base + OAUTH + "/request-token",
            "authorization_url": base + OAUTH + "/authorize",
            "access_token_url": base + OAUTH + "/access-token"}


@pytest.fixture
def server(tui_store: Store) -> Iterator[Server]:
    """tui-oauth's provider on 127.0.0.1, on the same store: it has us as an HMAC-SHA1
    consumer, and we have it as a service provider with the same key and secret."""
    with running_server(tui_store) as srv:
        add_hmac_consumer(tui_store, "partner", SECRET)
        services(tui_store).providers.add(name=NAME, consumer_key="partner", shared_secret=SECRET,
                                          allow_private=True, **endpoints(srv.base))
        yield srv


async def open_detail(pilot: Pilot[None], row_moves: tuple[str, ...] = ()) -> ProviderDetailScreen:
    await settle(pilot)
    await pilot.press("3")
    await settle(pilot)
    await pilot.press(*row_moves, "enter")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, ProviderDetailScreen)
    return screen


def checks_of(app: OAuthAdminApp) -> CheckList:
    return app.screen.query_one("#checks", CheckList)


async def test_test_connection_shows_each_check_passed(tui_store: Store,
                                                       server: Server) -> None:
    app = make_app(tui_store)
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(pilot)
        assert "Held tokens: none yet" in screen_text(pilot)
        await pilot.press("t")
        assert await wait_for(pilot, lambda: not checks_of(app).running)
        results = checks_of(app).results
        assert [r.name for r in results] == [
            "Request token URL answers", "Authorization URL answers",
            "Access token URL answers", "Clock", "Request token"]
        assert all(r.passed for r in results), results
        shown = screen_text(pilot)
        assert "passed  Request token: Loopback issued a request token" in shown
        assert "All 5 checks passed." in shown


async def test_checks_show_as_they_come(tui_store: Store, server: Server,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first result is on the screen while the test is still running, and the
    screen takes keys meanwhile."""
    go_on = threading.Event()

    def slow_test(name: str, **_: Any) -> Iterator[CheckResult]:
        yield CheckResult("First", True, "came at once")
        go_on.wait(10)
        yield CheckResult("Second", False, "came later, in words")

    monkeypatch.setattr(type(services(tui_store).consumer_side), "test",
                        lambda self, name, **kw: slow_test(name, **kw))
    app = make_app(tui_store)
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(pilot)
        await pilot.press("t")
        assert await wait_for(pilot, lambda: len(checks_of(app).results) == 1, timeout=5)
        assert checks_of(app).running
        assert "passed  First: came at once" in screen_text(pilot)
        await pilot.press("[")  # the screen answers keys meanwhile
        assert app.screen.active_pane == "overview"  # type: ignore[attr-defined]
        await pilot.press("]")
        assert checks_of(app).running
        go_on.set()
        assert await wait_for(pilot, lambda: not checks_of(app).running)
        shown = screen_text(pilot)
        assert "FAILED  Second: came later, in words" in shown
        assert "1 of 2 checks failed" in shown


async def test_connect_call_and_forget(tui_store: Store, server: Server) -> None:
    app = make_app(tui_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(pilot)

        # A wrong verifier: the provider's refusal, in words, under the field.
        await pilot.press("c")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConnectModal)
                              and app.screen.step is not None)
        modal = app.screen
        assert isinstance(modal, ConnectModal) and modal.step is not None
        assert str(modal.query_one("#connect-url", Static).render()) == \
            modal.step.authorization_url
        assert modal.step.authorization_url.startswith(server.base + OAUTH + "/authorize?")
        assert app.focused is modal.query_one("#verifier", Input)
        await pilot.press(*"nope", "enter")
        field = modal.query_one("#field-verifier", Field)
        assert await wait_for(pilot, lambda: bool(field.error))
        assert "refused the access token request" in field.error
        assert "Traceback" not in screen_text(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen

        # The real dance: approve on the provider side, type the verifier.
        await pilot.press("c")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConnectModal)
                              and app.screen.step is not None)
        modal = current_screen(pilot)
        assert isinstance(modal, ConnectModal) and modal.step is not None
        await pilot.press("ctrl+y")  # OSC 52, from the verifier field
        assert app.clipboard == modal.step.authorization_url
        decision = services(tui_store).tokens.authorize(modal.step.token, "alice")
        modal.query_one("#local-user", Input).value = "ops"
        await pilot.press(*decision.verifier, "enter")
        assert await wait_for(pilot, lambda: "ops" in screen.held)
        assert app.screen is screen
        [held] = services(tui_store).consumer_side.tokens(NAME)
        assert held.user == "ops" and held.renewable
        assert "Held tokens: 1 token" in screen_text(pilot)
        assert screen.selected_token is not None and screen.selected_token.user == "ops"
        assert "provider.connect" in audit_actions(tui_store)

        # The request pane: GET /rest/whoami with ops's token, the JSON pretty-printed.
        await pilot.press("u")
        await pilot.pause()
        pane = screen.query_one(RequestPane)
        assert pane.local_user == "ops"
        await pilot.press(*"/rest/whoami", "enter")
        assert await wait_for(pilot, lambda: pane.response is not None)
        assert pane.response is not None and pane.response.status == 200
        shown = screen_text(pilot)
        assert "200 OK" in shown
        assert '"consumer_key": "partner",' in shown and '"user": "alice"' in shown
        assert "content-type: application/json" in shown
        assert await wait_for(pilot, lambda: screen.held["ops"].last_used_at is not None)

        # A form body is signed and sent; a bad form line is said in words.
        pane.query_one("#body").text = "not a pair"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert "Line 1 of the body is not key=value" in str(
            pane.query_one("#response-status", Static).render())
        pane.query_one("#body").text = "a=b c\nx=1"  # type: ignore[attr-defined]
        pane.query_one("#method", Select).value = "POST"
        first = pane.response
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: pane.response is not first)
        assert pane.response is not None and pane.response.status == 200

        # Forget: Esc leaves the pane, [ [ back to the Provider pane, f asks first.
        await pilot.press("escape", "[", "[")
        await pilot.pause()
        assert screen.active_pane == "overview"
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        assert "local user ops" in screen_text(pilot)
        await pilot.press("y")
        assert await wait_for(pilot, lambda: not screen.held)
        assert "Held tokens: none yet" in screen_text(pilot)
    assert services(tui_store).consumer_side.tokens(NAME) == []
    assert audit_actions(tui_store)[-1] == "provider.forget"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_failures_are_said_in_words(tui_store: Store) -> None:
    """Nobody listening: the checks fail with reasons, connect says why, a call
    without a held token says to connect first; never a traceback."""
    base = f"http://127.0.0.1:{closed_port()}"
    services(tui_store).providers.add(name="Gone", consumer_key="partner", shared_secret=SECRET,
                                      allow_private=True, **endpoints(base))
    app = make_app(tui_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(pilot)
        await pilot.press("t")
        assert await wait_for(pilot, lambda: not checks_of(app).running)
        results = checks_of(app).results
        assert results and not any(r.passed for r in results)
        shown = screen_text(pilot)
        assert "FAILED  Request token URL answers" in shown
        assert "checks failed" in shown
        await pilot.press("c")

        def status() -> str:
            return str(app.screen.query_one("#connect-status", Static).render())

        assert await wait_for(pilot, lambda: status().startswith("No request token:"))
        assert "127.0.0.1" in status()
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("u", *"/rest/whoami", "enter")
        pane = screen.query_one(RequestPane)

        def said() -> str:
            return str(pane.query_one("#response-status", Static).render())

        assert await wait_for(pilot, lambda: said().startswith("The call failed"))
        assert "No token is held from Gone" in said()
        assert "Traceback" not in screen_text(pilot)


def hostile_call(self: object, name: str, method: str, url: str, **_: Any) -> CallResponse:
    body = json.dumps({"name": "[@click=app.quit]x[/b]", "esc": "\x1b[2J"}).encode()
    return CallResponse(200, "OK [b]", [("Content-Type", "application/json"),
                                        ("X-Evil", "\x1b]52;c;cm0K\x07[/b]")], body)


async def test_provider_answers_are_shown_as_text(demo_store: Store,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(type(services(demo_store).consumer_side), "call", hostile_call)
    app = make_app(demo_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(pilot)  # Example Inc: a token held for "ci"
        assert "ci" in screen.held
        await pilot.press("u", *"/x", "enter")
        pane = screen.query_one(RequestPane)
        assert await wait_for(pilot, lambda: pane.response is not None)
        shown = screen_text(pilot)
        assert "[@click=app.quit]x[/b]" in shown  # JSON keeps its own escape: \u001b
        assert "\\x1b]52;c;cm0K\\x07[/b]" in shown
        assert "\x1b]52" not in shown
        assert app.is_running


async def test_read_only_refuses_connect_forget_and_call(read_only_store: Store) -> None:
    app = make_app(read_only_store)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(pilot)
        for action in ("connect", "forget", "edit", "remove", "reveal"):
            assert screen.check_action(action, ()) is None, action
        assert screen.check_action("test", ()) is True
        await pilot.press("c", "f")
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("u", *"/rest/whoami", "enter")
        await pilot.pause()
        pane = screen.query_one(RequestPane)
        assert pane.check_action("send", ()) is None
        assert "read-only: refused" in str(
            pane.query_one("#response-status", Static).render())
    assert [t.user for t in services(read_only_store).consumer_side.tokens("Example Inc")] == ["ci"]



def test_snapshot_provider_detail(demo_store: Store, snap_compare: Callable[..., bool]) -> None:
    """Example Inc at 80x24: its settings and the token held for "ci"."""
    assert snap_compare(make_app(demo_store), terminal_size=SIZE,
                        run_before=press_keys("3", "enter"))


def fixed_call(self: object, name: str, method: str, url: str, **_: Any) -> CallResponse:
    body = json.dumps({"consumer_key": "ck-8843-example", "user": "alice",
                       "mode": "3lo"}).encode()
    return CallResponse(200, "OK", [("content-type", "application/json"),
                                    ("content-length", str(len(body)))], body)


def test_snapshot_request_pane(demo_store: Store, snap_compare: Callable[..., bool],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The request pane after GET /rest/whoami (a fixed answer); Esc leaves the URL field
    (no blinking cursor in the picture)."""
    monkeypatch.setattr(type(services(demo_store).consumer_side), "call", fixed_call)
    assert snap_compare(make_app(demo_store), terminal_size=SIZE,
                        run_before=press_keys("3", "enter", "u", *"/rest/whoami", "enter",
                                            "escape"))
