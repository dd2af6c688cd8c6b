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


def rsa_pair() -> tuple[str, str]:
    """A new 2048-bit key pair: (private PEM for the client, base64 DER SPKI for the
    consumer's stored public key)."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    spki = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    return pem, spki
