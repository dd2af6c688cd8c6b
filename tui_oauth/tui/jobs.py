"""Running service calls off the UI thread.

Every call into the store (database, keyring, network) goes through
:func:`run_job`: a thread worker that hands its result back on the UI thread,
shows a loading indicator while it waits, and turns any failure into a
:class:`WorkFailed` message for the app's one error handler, so the screen
never freezes and never shows a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any, TypeVar, cast

from textual.dom import DOMNode
from textual.widget import Widget
from textual.worker import Worker, get_current_worker

from tui_oauth.tui.messages import WorkFailed

if TYPE_CHECKING:
    from tui_oauth.core.store import Store

T = TypeVar("T")
log = logging.getLogger(__name__)


def store_of(node: DOMNode) -> Store:
    """The store the app was built on."""
    return cast("Store", cast(Any, node.app).store)


def run_job(node: DOMNode, work: Callable[[], T], done: Callable[[T], object] | None = None, *,
            doing: str, group: str = "default", loading: Widget | None = None,
            failed: Callable[[Exception], bool] | None = None) -> Worker[None]:
    """Run ``work()`` in a thread; then ``done(result)`` on the UI thread.

    ``failed(exc)`` may handle an error itself (a form showing field errors)
    by returning True; anything else goes to the app as :class:`WorkFailed`.
    A newer job in the same ``group`` on the same node supersedes an older one.
    """
    app = node.app
    owner = object()  # the job whose indicator this is (a newer job may take it over)
    if loading is not None:
        loading.loading = True
        loading._tui_loading_owner = owner  # type: ignore[attr-defined]

    def stop_loading() -> None:
        if (loading is not None and loading.is_attached
                and getattr(loading, "_tui_loading_owner", None) is owner):
            loading.loading = False
            # While it loaded, a focused widget's keys were not in the footer: show them
            # again (Textual refreshes the footer on focus changes only).
            with suppress(Exception):
                loading.screen.refresh_bindings()

    def closed() -> bool:
        """The view that asked was closed (a screen left) while the job ran."""
        return not node.is_attached or bool(getattr(node, "_pruning", False))

    def succeed(result: T) -> None:
        stop_loading()
        if done is not None:
            try:
                done(result)
            except Exception as exc:  # a bug in a view must not kill the console
                if closed():
                    # Its result came back as the screen was being left (Esc pressed
                    # just as a read ended): the update has nowhere to go.  What done()
                    # did before (a message to the app after a change) still happened.
                    log.debug("%s: its view was closed", doing, exc_info=True)
                    return
                app.post_message(WorkFailed(exc, doing))

    def fail(exc: Exception) -> None:
        stop_loading()
        try:
            if failed is not None and failed(exc):
                return
        except Exception as inner:
            if not closed():  # else the view's handler had nowhere to show it: say exc
                exc = inner
        app.post_message(WorkFailed(exc, doing))

    def body() -> None:
        worker = get_current_worker()
        outcome: tuple[Callable[[Any], None], Any]
        try:
            outcome = (succeed, work())
        except Exception as exc:
            outcome = (fail, exc)
        with suppress(RuntimeError):  # the app is closing
            if worker.is_cancelled:
                # Superseded by a newer job of its group: no result, but its loading
                # indicator goes, unless the newer job shows one of its own there
                # (a quiet refresh replacing a load left the list "loading" forever).
                app.call_from_thread(stop_loading)
                return
            app.call_from_thread(*outcome)

    return node.run_worker(body, name=doing, group=group, thread=True, exclusive=True,
                           exit_on_error=False)
