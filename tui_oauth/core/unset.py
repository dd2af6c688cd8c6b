"""``UNSET``: an argument that was not given (as opposed to given as None).

Kept apart from the services so that the command line can use it without
importing the database layer.
"""

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
