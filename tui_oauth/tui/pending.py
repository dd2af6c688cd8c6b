"""The store while it opens: the console paints its first screen before the database
layer is even imported (SQLAlchemy, SQLModel and cryptography: ~400 ms on the 2-core
machine), and opens the store in a thread behind it.

What the first screen needs is known without opening anything: which store (its URL,
password hidden) and whether it is read-only.  Anything else asked of a
:class:`PendingStore` waits until the store is open (at most the rest of the opening
time; the tabs ask nothing before :meth:`OAuthAdminApp.store_opened`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from tui_oauth.core.store import Store


def hide_password(url: str) -> str:
    """``postgresql+psycopg://app:***@db/oauth`` (as SQLAlchemy shows a URL)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class PendingStore:
    def __init__(self, opener: Callable[[], Store], *, url: str, read_only: bool) -> None:
        self._opener = opener
        self.display_url = hide_password(url)
        self.read_only = read_only
        self._ready = threading.Event()
        self._store: Store | None = None
        self.error: BaseException | None = None

    def open(self) -> Store:
        """Open the store (in a worker thread); anyone waiting goes on."""
        try:
            self._store = self._opener()
            return self._store
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self._ready.set()

    def __getattr__(self, name: str) -> Any:
        self._ready.wait()
        if self._store is None:
            raise RuntimeError("the store could not be opened") from self.error
        return getattr(self._store, name)
