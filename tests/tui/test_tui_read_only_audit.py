"""--read-only: changing actions dimmed and refused; the audit view pages from the database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from tests.tui_support import open_console, screen_text, settle
from tui_oauth.core.models import AuditEntry
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store
from tui_oauth.tui.screens.audit import PAGE, AuditScreen
from tui_oauth.tui.screens.consumer_detail import ConsumerDetailScreen
from tui_oauth.tui.screens.main import MainScreen
from tui_oauth.tui.screens.provider_detail import ProviderDetailScreen
from tui_oauth.tui.widgets.table import Table


async def test_read_only_dims_and_refuses_changes(read_only_store: Store) -> None:
    async with open_console(read_only_store) as (app, pilot):
        assert "READ-ONLY" in screen_text(pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        for tab, actions in ((main.consumers, ("add", "edit", "remove")),
                             (main.info, ("edit", "rotate")),
                             (main.providers, ("add", "edit", "remove", "reveal"))):
            for action in actions:
                assert tab.check_action(action, ()) is None  # dimmed in the footer
        bindings = {b.binding.action: b.enabled for b in main.active_bindings.values()}
        assert bindings["add"] is False and bindings["open"] is True
        for key in ("a", "e", "d"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is main, key
        await pilot.press("2", "e", "K", "3", "a", "r", "d")
        await settle(pilot)
        assert app.screen is main
        # The palette lists them, and says no.
        command = next(c for c in app.get_system_commands(main) if c.title == "Consumers: Add")
        assert "read-only" in command.help
        command.callback()
        await pilot.pause()
        assert app.screen is main
        assert any("read-only" in str(n.message) for n in app._notifications)
        # ...and how to change it: there is no "read-write mode" to switch to
        assert any("start it again without that option" in str(n.message)
                   for n in app._notifications)
        # Views still open, and refuse their changes too.
        await pilot.press("1", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ConsumerDetailScreen)
        for action in ("edit", "remove", "revoke", "revoke_all"):
            assert app.screen.check_action(action, ()) is None
        await pilot.press("e", "d", "r")
        await pilot.pause()
        assert isinstance(app.screen, ConsumerDetailScreen)
        await pilot.press("escape", "3", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ProviderDetailScreen)
        assert app.screen.check_action("reveal", ()) is None
    assert len(services(read_only_store).consumers.list()) == 3
    assert len(services(read_only_store).providers.list()) == 2


def add_audit(store: Store, n: int) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    with Session(store.engine) as s:
        for i in range(n):
            s.add(AuditEntry(at=t0 + timedelta(seconds=i), actor="admin",
                             action="consumer.edit" if i % 10 else "provider.add",
                             target_type="consumer", target=f"c-{i:04d}",
                             after=json.dumps({"name": f"n{i}"})))
        s.commit()


async def test_audit_view_pages_newest_first_and_filters(tui_store: Store) -> None:
    services(tui_store).consumer_info.view()  # created (and audited) before the 250 entries
    add_audit(tui_store, 250)
    async with open_console(tui_store) as (app, pilot):
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(app.screen, AuditScreen)
        table = app.screen.query_one("#audit-table", Table)
        assert table.row_count == PAGE  # one page, never the whole log
        assert str(table.get_row_at(0)[3]) == "c-0249"  # newest first
        assert "c-0249" in screen_text(pilot) and "name='n249'" in screen_text(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert str(table.get_row_at(0)[3]) == "c-0149"
        await pilot.press("n")
        await settle(pilot)
        assert table.row_count == 51  # and the consumer_info.create entry
        await pilot.press("p", "p")
        await settle(pilot)
        assert str(table.get_row_at(0)[3]) == "c-0249"
        await pilot.press("slash", *"provider.add")
        await settle(pilot)
        assert table.row_count == 25
        assert "matching “provider.add”" in screen_text(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert table.row_count == PAGE
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_a_change_made_in_the_console_shows_in_the_audit_view(tui_store: Store) -> None:
    services(tui_store).consumers.add(key="jira:42", name="JIRA", shared_secret="x",
                                      signature_method="HMAC-SHA1")
    async with open_console(tui_store) as (app, pilot):
        await pilot.press("d", *"jira:42", "enter")
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        table = app.screen.query_one("#audit-table", Table)
        assert str(table.get_row_at(0)[2]) == "consumer.remove"
        assert "0 token(s) removed with it" in screen_text(pilot)
