"""What the benchmarks share: an in-memory keyring (benchmarks measure the store and
the provider, not gnome-keyring; the request path never reads the keyring anyway)."""

from __future__ import annotations

from typing import Any

from tui_oauth.core.registry import services


def compile_package() -> None:
    """Write tui_oauth's bytecode, as an installed copy has it (pip compiles at install;
    a checkout writes it on first run unless PYTHONDONTWRITEBYTECODE is set, as it is
    in the development sandbox).  Without it each start compiles our ~60 modules from
    source: ~17 ms of the console's first paint that no user pays."""
    import compileall
    from pathlib import Path

    import tui_oauth

    compileall.compile_dir(Path(tui_oauth.__file__).parent, quiet=1)


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


def access_token(base: str, store_url: str, keyring: Any, key: str, secret: str
                 ) -> dict[str, str]:
    """An access token for consumer ``key`` from the server at ``base``, the 3-legged way
    (the user's approval given through the store, as `tokens authorize` does):
    ``oauth_token`` and ``oauth_token_secret``."""
    from requests_oauthlib import OAuth1Session

    from tui_oauth.core.store import open_store

    s = OAuth1Session(key, client_secret=secret, callback_uri="oob")
    rt = s.fetch_request_token(base + "/plugins/servlet/oauth/request-token")
    store = open_store(store_url, secrets_backend=keyring)
    verifier = services(store).tokens.authorize(rt["oauth_token"], "bench-user").verifier
    store.close()
    s2 = OAuth1Session(key, client_secret=secret, resource_owner_key=rt["oauth_token"],
                       resource_owner_secret=rt["oauth_token_secret"], verifier=verifier)
    return dict(s2.fetch_access_token(base + "/plugins/servlet/oauth/access-token"))


def insert_consumers(conn: Any, n: int, spki: str, *, two_lo_execute_as: str | None = None
                     ) -> None:
    """``n`` RSA-SHA1 consumers ``app:0000000``… straight into a SQLite store (a
    ``sqlite3`` connection inside a transaction): a bulk fill for the benchmarks."""
    import uuid

    conn.executemany(
        "INSERT INTO consumers (uid, key, name, description, public_key, has_shared_secret,"
        " callback_url, signature_method, allow_plaintext, three_lo_allowed, two_lo_allowed,"
        " two_lo_execute_as, two_lo_impersonation, created_at, updated_at) VALUES"
        " (?, ?, ?, 'a consumer', ?, 0, NULL, 'RSA-SHA1', 0, 1, ?, ?, 0,"
        " '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
        ((str(uuid.uuid4()), f"app:{i:07d}", f"Application {i}", spki,
          two_lo_execute_as is not None, two_lo_execute_as) for i in range(n)))
