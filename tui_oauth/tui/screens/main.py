"""The OAuth Administration page: header, three tabs, footer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import TabbedContent, TabPane

from tui_oauth.tui.messages import StoreChanged
from tui_oauth.tui.tabs.consumers import ConsumersTab
from tui_oauth.tui.tabs.info import InfoTab
from tui_oauth.tui.tabs.providers import ProvidersTab
from tui_oauth.tui.widgets.footer import FittingFooter
from tui_oauth.tui.widgets.header_bar import HeaderBar

TABS = ("consumers", "info", "providers")


class MainScreen(Screen[None]):
    AUTO_FOCUS = "#consumers-table"
    BINDINGS = [
        Binding("1", "show_tab('consumers')", "Consumers", show=False, id="tab.consumers",
                tooltip="Consumers: who may consume our resources"),
        Binding("2", "show_tab('info')", "Consumer Info", show=False, id="tab.info",
                tooltip="Consumer Info: who we are when we consume"),
        Binding("3", "show_tab('providers')", "Providers", show=False, id="tab.providers",
                tooltip="Service Providers: whose resources we consume"),
        Binding("]", "next_tab", "Next tab", show=False, id="tab.next", tooltip="Next tab"),
        Binding("[", "previous_tab", "Previous tab", show=False, id="tab.previous",
                tooltip="Previous tab"),
        Binding("ctrl+r", "refresh", "Refresh", id="main.refresh", show=False,
                tooltip="Read everything again from the store"),
    ]

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        with TabbedContent(initial="consumers", id="tabs"):
            with TabPane("1 Consumers", id="consumers"):
                yield ConsumersTab()
            with TabPane("2 Consumer Info", id="info"):
                yield InfoTab()
            with TabPane("3 Service Providers", id="providers"):
                yield ProvidersTab()
        # The footer is mounted just after the first frame (_compositor_refresh): its ten
        # keys cost ~28 ms of widgets and styles that the first frame can do without
        # (benchmarks/startup.py).  Textual's Lazy mounted it before the first frame.

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._started = {"consumers"}  # the Consumers tab reads its list as it mounts
        self._footer_pending = True

    def on_mount(self) -> None:
        self.focus_tab()

    def _compositor_refresh(self) -> None:
        """Paint; then, after the first frame, mount the footer."""
        if self.app._batch_count:
            # The app starts inside a batch update, and Textual (8.2) renders this
            # screen's first frame there only to drop it (App._display): ~14 ms of the
            # first paint (benchmarks/startup.py).  Paint once the batch is over.
            self.refresh()
            return
        super()._compositor_refresh()
        if self._footer_pending and self.is_current:
            self._footer_pending = False
            self.call_later(self._mount_footer)

    async def _mount_footer(self) -> None:
        await self.mount(FittingFooter())
        self.refresh_bindings()  # a Footer lists the keys once the bindings change

    def store_opened(self) -> None:
        """The store opened behind the first screen: read what the tabs show."""
        self.consumers.reload()
        self.start_tabs(self.active_tab)

    def start_tabs(self, *tabs: str) -> None:
        """Read what these tabs show, the first time only.  The other tabs wait for the
        Consumers list (or for being shown): their reads and the Consumers list's
        would share the interpreter while the first screen is drawn."""
        if not getattr(self.app, "store_ready", True):
            return  # store_opened() starts them
        for tab in tabs or TABS:
            if tab not in self._started:
                self._started.add(tab)
                self.tab_widget(tab).reload()

    @property
    def consumers(self) -> ConsumersTab:
        return self.query_one(ConsumersTab)

    @property
    def info(self) -> InfoTab:
        return self.query_one(InfoTab)

    @property
    def providers(self) -> ProvidersTab:
        return self.query_one(ProvidersTab)

    @property
    def active_tab(self) -> str:
        return self.query_one(TabbedContent).active

    def tab_widget(self, tab: str) -> ConsumersTab | InfoTab | ProvidersTab:
        tabs: dict[str, ConsumersTab | InfoTab | ProvidersTab] = {
            "consumers": self.consumers, "info": self.info, "providers": self.providers}
        return tabs[tab]

    def focus_tab(self, *, now: bool = False, tries: int = 100) -> None:
        active = self.active_tab
        tab = self.tab_widget(active)
        target: Widget = tab if isinstance(tab, InfoTab) else tab.table
        if not target.focusable and tries > 0:
            # Still loading (a loading widget cannot take focus).  Let no hidden
            # tab keep the keys meanwhile, and try again shortly.
            self.set_focus(None)

            def again() -> None:
                if self.active_tab == active:
                    self.focus_tab(now=True, tries=tries - 1)

            self.set_timer(0.05, again)
            return
        if now:
            target.focus()  # keys typed right after the tab key go to the new tab
        else:
            self.call_after_refresh(target.focus)

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.focus_tab(now=True)

    def action_next_tab(self) -> None:
        self.action_show_tab(TABS[(TABS.index(self.active_tab) + 1) % len(TABS)])

    def action_previous_tab(self) -> None:
        self.action_show_tab(TABS[(TABS.index(self.active_tab) - 1) % len(TABS)])

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "info":  # their content, before the tab is laid out
            self.info.show_content()
        elif event.pane.id == "providers":
            self.providers.show_content()
        if event.pane.id in TABS:
            self.start_tabs(event.pane.id)
        self.focus_tab()

    def on_store_changed(self, event: StoreChanged) -> None:
        """A change made elsewhere (CLI, provider, another host): read again what the
        tabs show, keeping each list's cursor and scroll."""
        self.consumers.refresh_rows()
        self.providers.refresh_rows()  # nothing yet if it was never read
        if "info" in self._started:
            self.info.reload(quiet=True)

    def action_refresh(self) -> None:
        self._started |= set(TABS)
        self.consumers.reload()
        self.info.reload()
        self.providers.reload()
        self.notify("Reloaded from the store.", timeout=2, markup=False)
