"""What the benchmarks share: an in-memory keyring (benchmarks measure the store and
the provider, not gnome-keyring; the request path never reads the keyring anyway)."""

from __future__ import annotations

from typing import Any


def memory_keyring() -> Any:
    """A keyring backend in a dict; installed only where it is passed explicitly."""
    from keyring.backend import KeyringBackend
    from keyring.compat import properties

    class Memory(KeyringBackend):
        @properties.classproperty
        def priority(cls) -> float:
            raise RuntimeError("explicit only")

        def __init__(self) -> None:
            super().__init__()
            self.items: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.items.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.items[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.items.pop((service, username), None)

    return Memory()
