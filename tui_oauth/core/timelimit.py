"""Run a call that may hang (a keyring daemon, a D-Bus peer) with a time limit.

The call runs on a daemon thread.  Unlike a ``ThreadPoolExecutor`` worker, a
daemon thread is abandoned at interpreter exit, so a call that never returns
cannot hold up the exit of the program; the caller decides what a call that
did not finish means (an error naming what was being done, say).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["call_with_time_limit"]

T = TypeVar("T")


def call_with_time_limit(
    fn: Callable[..., T], *args: Any, timeout: float, name: str = "tui-oauth-timed"
) -> tuple[bool, T | None, BaseException | None, threading.Thread]:
    """Run ``fn(*args)`` on a daemon thread (called ``name``); wait at most ``timeout`` s.

    Returns ``(finished, result, error, thread)``: ``finished`` is False when the
    call is still running (``thread`` is then the one to watch); else ``error``
    is what it raised (any BaseException, handed over rather than raised here)
    or None, and ``result`` what it returned.
    """
    results: list[T] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            results.append(fn(*args))
        except BaseException as exc:  # handed to the waiting thread
            errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    if not done.wait(timeout):
        return False, None, None, worker
    return True, results[0] if results else None, errors[0] if errors else None, worker
