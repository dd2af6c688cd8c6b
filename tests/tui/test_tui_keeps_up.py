"""The screen keeps up (issue 9): a change made elsewhere (here, another store on the
same file, as the CLI or the provider would) shows within 2 seconds, the cursor on its
row; a consumer's detail keeps up too."""

from __future__ import annotations

from tests.keyring_backends import MemoryKeyring
from tests.tui_support import screen_text, settle, wait_for
from tui_oauth.core.registry import services
from tui_oauth.core.services.tokens import TokenSelection
from tui_oauth.core.store import Store, open_store
from tui_oauth.tui.app import make_app
from tui_oauth.tui.demo import fill_demo_store
from tui_oauth.tui.screens.consumer_detail import ConsumerDetailScreen
from tui_oauth.tui.widgets.virtual_table import VirtualTable


async def test_changes_made_elsewhere_show_within_two_seconds(
        sqlite_url: str, sqlite_store: Store, memory_keyring: MemoryKeyring) -> None:
    fill_demo_store(sqlite_store)
    elsewhere = open_store(sqlite_url, secrets_backend=memory_keyring)
    app = make_app(sqlite_store)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            table = app.screen.query_one("#consumers-table", VirtualTable)
            await pilot.press("j")
            jira = table.current_key
            assert jira is not None and jira.startswith("jira:")
            services(elsewhere).consumers.add(key="aaa:first", name="Added elsewhere",
                                              shared_secret="s3cret-from-the-cli",
                                              signature_method="HMAC-SHA1")
            assert await wait_for(pilot, lambda: table.row_count == 4, timeout=2.5)
            assert table.current_key == jira and table.cursor_row == 2  # still on jira
            assert "Added elsewhere" in screen_text(pilot)
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(app.screen, ConsumerDetailScreen)
            tokens = app.screen.query_one("#tokens", VirtualTable)
            assert "revoked" not in [tokens.get_row_at(i)[2] for i in range(tokens.row_count)]
            services(elsewhere).tokens.revoke_where(TokenSelection(consumer_key=jira))
            assert await wait_for(pilot, lambda: {tokens.get_row_at(i)[2] for i in range(
                tokens.row_count)} == {"revoked"}, timeout=2.5)
    finally:
        elsewhere.close()
