"""Consumer Info (export, copy, edit, new key pair) and Service Providers in the console."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from textual.app import App
from textual.widgets import Input, Select

from tests.helpers import audit_actions
from tests.tui_support import screen_text, settle, wait_for
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store
from tui_oauth.tui.app import make_app
from tui_oauth.tui.demo import INFO_KEY
from tui_oauth.tui.modals import export as export_modal
from tui_oauth.tui.modals import reveal_secret as reveal_module
from tui_oauth.tui.modals.export import ExportModal
from tui_oauth.tui.modals.reveal_secret import RevealSecretModal
from tui_oauth.tui.screens.info_form import InfoFormScreen
from tui_oauth.tui.screens.main import MainScreen
from tui_oauth.tui.screens.provider_detail import ProviderDetailScreen
from tui_oauth.tui.screens.provider_form import ProviderFormScreen
from tui_oauth.tui.widgets.field import Field
from tui_oauth.tui.widgets.virtual_table import VirtualTable


def field_error(app: App[None], name: str) -> str:
    return app.screen.query_one(f"#field-{name}", Field).error


async def test_info_tab_shows_key_pem_base64_and_fingerprint(demo_store: Store) -> None:
    view = services(demo_store).consumer_info.view()
    app = make_app(demo_store)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        text = screen_text(pilot)
        assert INFO_KEY in text
        assert view.fingerprint[:60] in text  # 102 characters: wraps at 100 columns
        assert "-----BEGIN PUBLIC KEY-----" in text
        assert view.public_key.base64_der[:90] in text


async def test_info_created_on_first_view_in_a_worker(tui_store: Store) -> None:
    app = make_app(tui_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        assert "tui-oauth:" in screen_text(pilot)
    assert services(tui_store).consumer_info.view().public_key.bits == 2048


async def test_export_xml_to_a_file_and_copy(demo_store: Store, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ExportModal)
        assert app.screen.query_one("#path", Input).value == str(tmp_path / "consumer-info.xml")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        written = (tmp_path / "consumer-info.xml").read_bytes()
        assert written == services(demo_store).consumer_info.export_xml()
        # A second export to the same file asks for Overwrite.
        await pilot.press("x", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ExportModal)
        assert "exists" in screen_text(pilot)
        app.screen.query_one("#format", Select).value = "pem"
        await pilot.pause()
        assert app.screen.query_one("#path", Input).value.endswith(
            export_modal.DEFAULT_NAMES["pem"])
        await pilot.press("enter")
        await settle(pilot)
        assert (tmp_path / "consumer-public-key.pem").read_text().startswith(
            "-----BEGIN PUBLIC KEY-----")
        await pilot.press("c")
        assert app.clipboard == services(demo_store).consumer_info.export_pem()
        await pilot.press("C")
        await settle(pilot)
        assert app.clipboard == services(demo_store).consumer_info.export_xml().decode()


async def test_edit_info(demo_store: Store) -> None:
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("e")
        assert isinstance(app.screen, InfoFormScreen)
        app.screen.query_one("#callback_url", Input).value = "not a url"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert field_error(app, "callback_url")
        app.screen.query_one("#callback_url", Input).value = "https://ci.example.com/cb2"
        app.screen.query_one("#name", Input).value = "Build server 2"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert "Build server 2" in screen_text(pilot)
    info = services(demo_store).consumer_info.get()
    assert (info.name, info.callback_url) == ("Build server 2", "https://ci.example.com/cb2")


async def test_rotate_asks_for_typed_confirmation_and_says_what_breaks(
        tui_store: Store) -> None:
    before = services(tui_store).consumer_info.view().fingerprint
    app = make_app(tui_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("K")
        await pilot.pause()
        text = screen_text(pilot)
        assert "signature_invalid" in text and "Type rotate to confirm" in text
        await pilot.press("escape")
        await settle(pilot)
        assert services(tui_store).consumer_info.view().fingerprint == before
        await pilot.press("K", *"rotate", "enter")
        await settle(pilot)
        after = services(tui_store).consumer_info.view().fingerprint
        assert after != before
        assert after[:60] in screen_text(pilot)
    assert "consumer_info.rotate_key" in audit_actions(tui_store)


async def test_add_provider_errors_http_warning_plaintext_refused(tui_store: Store) -> None:
    app = make_app(tui_store)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("a")
        assert isinstance(app.screen, ProviderFormScreen)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert field_error(app, "name") and field_error(app, "consumer_key")
        assert field_error(app, "request_token_url")
        form = app.screen
        form.query_one("#name", Input).value = "Example"
        form.query_one("#consumer_key", Input).value = "ck-1"
        form.query_one("#shared_secret", Input).value = "s3cret-value"
        assert form.query_one("#shared_secret", Input).password  # masked
        for f in ("request_token_url", "authorization_url", "access_token_url"):
            form.query_one(f"#{f}", Input).value = f"http://sp.example/{f}"
        form.query_one("#signature_method", Select).value = "PLAINTEXT"
        await pilot.pause()
        assert "PLAINTEXT is refused" in screen_text(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "https" in field_error(app, "signature_method")
        assert form.query_one("#name", Input).value == "Example"  # nothing lost
        form.query_one("#signature_method", Select).value = "HMAC-SHA1"
        await pilot.pause()
        assert "use http" in screen_text(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert app.screen.query_one("#providers-table", VirtualTable).current_key == "Example"
        assert any("http" in str(n.message) for n in app._notifications)
    p = services(tui_store).providers.get("Example")
    assert p.signature_method == "HMAC-SHA1"
    assert services(tui_store).providers.shared_secret("Example") == "s3cret-value"


async def test_edit_rename_and_remove_provider(demo_store: Store) -> None:
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("j", "e")  # Legacy CRM
        await settle(pilot)
        assert isinstance(app.screen, ProviderFormScreen)
        app.screen.query_one("#name", Input).value = "Old CRM"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert "Old CRM" in screen_text(pilot)
        # No held token: a yes/no with No focused.
        table = app.screen.query_one("#providers-table", VirtualTable)
        table.select_key("Old CRM")
        await pilot.press("d")
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "no"
        await pilot.press("enter")  # No
        await settle(pilot)
        assert [p.name for p in services(demo_store).providers.list()] == ["Example Inc", "Old CRM"]
        await pilot.press("d", "y")
        await settle(pilot)
        assert [p.name for p in services(demo_store).providers.list()] == ["Example Inc"]
        # Example Inc holds a token: type its name.
        await pilot.press("g", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ProviderDetailScreen)
        await pilot.press("d")
        await pilot.pause()
        assert "Type Example Inc to confirm" in screen_text(pilot)
        await pilot.press(*"Example Inc", "enter")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
    assert services(demo_store).providers.list() == []


async def test_reveal_secret_for_a_few_seconds_and_audited(
        demo_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # 2 s: long enough to read it even on a loaded machine (six test processes on two
    # cores once took more than a second between the key and the check).
    monkeypatch.setattr(reveal_module, "REVEAL_SECONDS", 2)
    app = make_app(demo_store)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        shown = screen_text(pilot)
        assert "demo-secret-ck-8843-example" not in shown and "••••••••" in shown
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, RevealSecretModal)
        assert "demo-secret-ck-8843-example" in screen_text(pilot)
        # hidden again by itself, after its second (waited for: a busy machine is late)
        assert await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), timeout=10)
        assert "demo-secret-ck-8843-example" not in screen_text(pilot)
    with demo_store.engine.connect() as conn:
        row = conn.execute(text(
            "SELECT target FROM audit_log WHERE action = 'provider.reveal_secret' "
            "ORDER BY id DESC LIMIT 1")).one()
    assert row.target == "Example Inc"
    assert audit_actions(demo_store)[-1] == "provider.reveal_secret"
