"""Typed messages: how screens tell the app that something happened.

Screens and dialogs post these to the app (``self.app.post_message``); the app
refreshes what shows and tells the operator.  Tests watch them with
``run_test(message_hook=...)``.
"""

from __future__ import annotations

from textual.message import Message


class WorkFailed(Message):
    """A worker failed: the app's one handler turns it into a notification or a dialog."""

    def __init__(self, error: BaseException, doing: str) -> None:
        super().__init__()
        self.error = error
        self.doing = doing


class ConsumerSaved(Message):
    def __init__(self, key: str, *, added: bool) -> None:
        super().__init__()
        self.key = key
        self.added = added


class ConsumerRemoved(Message):
    def __init__(self, key: str, tokens: int) -> None:
        super().__init__()
        self.key = key
        self.tokens = tokens


class TokensRevoked(Message):
    def __init__(self, consumer_key: str, count: int) -> None:
        super().__init__()
        self.consumer_key = consumer_key
        self.count = count


class ConsumerInfoChanged(Message):
    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what  # "edit" or "rotate"


class ProviderSaved(Message):
    def __init__(self, name: str, *, added: bool, warnings: list[str] | None = None) -> None:
        super().__init__()
        self.name = name
        self.added = added
        self.warnings = warnings or []


class ProviderRemoved(Message):
    def __init__(self, name: str, tokens: int) -> None:
        super().__init__()
        self.name = name
        self.tokens = tokens


class SecretRevealed(Message):
    def __init__(self, provider: str) -> None:
        super().__init__()
        self.provider = provider


class ExportWritten(Message):
    def __init__(self, path: str, what: str) -> None:
        super().__init__()
        self.path = path
        self.what = what


class StoreChanged(Message):
    """The store changed since the last look (anyone's write: this console, the CLI,
    the provider, another host); posted to the current screen by
    :mod:`tui_oauth.tui.watch`.  Handlers (``on_store_changed``) read again what they
    show, keeping the selection."""
