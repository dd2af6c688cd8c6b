"""Test connection: one line per check, passed or failed in words, as they come."""

from __future__ import annotations

from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from tui_oauth.core.services.connect import CheckResult
from tui_oauth.tui.text import error_text, plain


class CheckList(VerticalScroll):
    """Lines are added on the UI thread (the worker posts each with call_from_thread)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, can_focus=True)
        self.results: list[CheckResult] = []
        self.running = False

    def on_mount(self) -> None:
        self.mount(Static("t runs the checks: the three URLs answer, our clock against the "
                          "provider's, and a request token for our signature (no user's "
                          "approval needed).", classes="check -note"))

    def start(self, provider: str) -> None:
        self.results = []
        self.running = True
        self.remove_children()
        self.mount(Static(plain(f"Testing {provider}…"), classes="check -note"))

    def add(self, result: CheckResult) -> None:
        self.results.append(result)
        state = "-passed" if result.passed else "-failed"
        self.mount(Horizontal(
            Static("passed" if result.passed else "FAILED", classes="check-word"),
            Static(plain(f"{result.name}: {result.detail}"), classes="check-detail"),
            classes=f"check {state}"))
        self.scroll_end(animate=False)

    def finish(self) -> None:
        self.running = False
        failed = sum(not r.passed for r in self.results)
        total = len(self.results)
        if failed:
            text = f"{failed} of {total} checks failed: see the reasons above."
        else:
            text = f"All {total} checks passed."
        self.mount(Static(plain(text), classes="check -summary" + (" -failed" if failed
                                                                     else " -passed")))
        self.scroll_end(animate=False)

    def fail(self, exc: BaseException) -> None:
        self.running = False
        self.mount(Static(plain(f"The test stopped: {error_text(exc)}"),
                          classes="check -failed"))
        self.scroll_end(animate=False)

    @property
    def text(self) -> str:
        return "\n".join(str(s.render()) for s in self.query(Static))
