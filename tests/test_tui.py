"""The console opens on the store and shows the three tabs (placeholder until the TUI issue)."""

from __future__ import annotations

from textual.widgets import DataTable, Static, TabbedContent

from tui_oauth.core.store import Store
from tui_oauth.tui.app import make_app


async def test_console_shows_the_three_tabs(store: Store) -> None:
    store.consumers.add(key="jira:42", name="JIRA", shared_secret="x", signature_method="HMAC-SHA1")
    store.providers.add(name="Example", consumer_key="ck", shared_secret="y",
                        request_token_url="https://p.example/r",
                        authorization_url="https://p.example/a",
                        access_token_url="https://p.example/t")
    app = make_app(store)
    async with app.run_test(size=(100, 30)) as pilot:
        tabs = app.query_one(TabbedContent)
        assert tabs.active == "consumers"
        table = app.query_one("#consumers-table", DataTable)
        assert table.row_count == 1
        assert table.get_row_at(0)[0] == "jira:42"
        await pilot.press("3")
        assert tabs.active == "providers"
        assert app.query_one("#providers-table", DataTable).get_row_at(0)[0] == "Example"
        await pilot.press("2")
        assert tabs.active == "info"
        await app.workers.wait_for_complete()
        await pilot.pause()
        info = app.query_one("#info-text", Static)
        assert "Consumer key: tui-oauth:" in str(info.render())
        await pilot.press("q")
    assert app.return_code == 0
