"""The screen keeps up: reload when the store changes elsewhere (issue 9).

An admin keeps the console open while a colleague revokes tokens from the CLI
and the provider issues new ones.  :func:`install_store_watch` polls the store's
change marker (:meth:`tui_oauth.core.store.Store.watch_changes`: constant cost
whatever the store's size) every ``interval`` seconds, and when it changed posts
:class:`~tui_oauth.tui.messages.StoreChanged` to the app's screens.

Contract
--------
* The app calls ``install_store_watch(self)`` once, from ``on_mount`` (the
  store is ``app.store``); it returns the :class:`StoreWatch`, whose ``stop()``
  the app may call (it also stops by itself when the app closes).
* Each tick runs the poll in a thread worker (group ``"store-watch"``), never on
  the UI thread; a tick is skipped while the previous poll still runs.  The first
  poll only connects and takes the baseline.
* On a change, ``StoreChanged`` goes to every screen of the stack (the one in
  front and those under it, a dialog included; it does not bubble to the app).
  A screen or tab handles ``on_store_changed`` by reading again what it shows,
  keeping the selection, the filter, the sort and the scroll position, and leaving any form being
  edited alone (a save over a changed row is caught by the services' staleness
  check).  A screen that has nothing to reload ignores it.  Several writes in
  one interval give one message.
* A store file removed or replaced (StoreGoneError) is reported once, as
  :class:`~tui_oauth.tui.messages.WorkFailed` to the app, and the watch stops.
  Other database errors are logged and the watch goes on: the next poll that
  succeeds tells whether anything changed meanwhile.
* Refresh delay: at most ``interval`` plus one poll on SQLite, and for writes
  made by tui-oauth on PostgreSQL (NOTIFY); other PostgreSQL writers (psql) are
  seen when their statistics are flushed (within about 10 s).
"""

from __future__ import annotations

import logging
import threading
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.timer import Timer

from tui_oauth.core.errors import StoreError, StoreGoneError
from tui_oauth.tui.messages import StoreChanged, WorkFailed

if TYPE_CHECKING:
    from tui_oauth.core.changes import ChangeWatcher
    from tui_oauth.core.store import Store

log = logging.getLogger(__name__)

GROUP = "store-watch"


class StoreWatch:
    """Polls the store's change marker off the UI thread; see the module's docstring."""

    def __init__(self, app: App[Any], store: Store, interval: float = 1.0) -> None:
        self.app = app
        self.store = store
        self.interval = interval
        self._watcher: ChangeWatcher | None = None
        self._busy = False
        self._stopped = False
        self._lock = threading.Lock()
        self._timer: Timer | None = None

    def start(self) -> StoreWatch:
        """Take the baseline now (a write made before the first tick is not missed),
        then poll every ``interval``."""
        self._timer = self.app.set_interval(self.interval, self._tick, name=GROUP)
        self._tick()
        return self

    def stop(self) -> None:
        """Stop polling and let the watcher's connection go (safe to call twice)."""
        self._stopped = True
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        # Never wait here (the UI thread) for a poll that runs: it closes the watcher
        # itself when it sees that the watch stopped.
        if self._lock.acquire(blocking=False):
            try:
                self._close_watcher()
            finally:
                self._lock.release()

    def _close_watcher(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None

    def _tick(self) -> None:
        if self._stopped or self._busy:
            return
        if not self.app.is_running:
            self.stop()
            return
        self._busy = True
        self.app.run_worker(self._poll, name="watching the store for changes", group=GROUP,
                            thread=True, exit_on_error=False)

    def _poll(self) -> None:  # in a thread
        try:
            with self._lock:
                if self._stopped:
                    return
                if self._watcher is None:
                    self._watcher = self.store.watch_changes()  # the baseline
                    changed = False
                else:
                    changed = self._watcher.poll()
                if self._stopped:  # stopped while this poll ran
                    self._close_watcher()
                    return
        except StoreGoneError as exc:
            self._deliver(self._gone, exc)
            return
        except StoreError as exc:
            log.info("store watch: %s", exc)
            return
        except Exception:  # a bug here must not kill the console, nor stop the watch
            log.exception("store watch failed")
            return
        finally:
            self._busy = False
        if changed:
            self._deliver(self._changed)

    def _deliver(self, callback: Any, *args: Any) -> None:
        if self._stopped:
            return
        with suppress(RuntimeError):  # the app is closing
            self.app.call_from_thread(callback, *args)

    def _changed(self) -> None:
        if not self._stopped and self.app.is_running:
            for screen in self.app.screen_stack:  # a list under a dialog keeps up too
                screen.post_message(StoreChanged())

    def _gone(self, exc: StoreGoneError) -> None:
        if self._stopped:
            return
        self.stop()
        self.app.post_message(WorkFailed(exc, "watching the store for changes"))


def install_store_watch(app: App[Any], interval: float = 1.0, *,
                        store: Store | None = None) -> StoreWatch:
    """Start polling ``store`` (default ``app.store``) every ``interval`` seconds;
    call from the app's ``on_mount``.  Returns the watch (``.stop()``)."""
    if store is None:
        store = app.store  # type: ignore[attr-defined]
    return StoreWatch(app, store, interval).start()
