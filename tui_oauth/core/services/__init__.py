"""The service layer: what the TUI, the CLI and the web server call."""

from __future__ import annotations

from typing import Any, Final


class _Unset:
    """Marks an argument that was not given (as opposed to given as None)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final[Any] = _Unset()


def secret_item(kind: str, uid: str, what: str) -> str:
    """The keyring item name of a secret: ``consumer/<uid>/shared-secret``."""
    return f"{kind}/{uid}/{what}"
