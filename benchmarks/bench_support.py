"""What the benchmarks share: an in-memory keyring (benchmarks measure the store and
the provider, not gnome-keyring; the request path never reads the keyring anyway)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
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
            super().__init__()  # type: ignore[no-untyped-call]  # keyring: no hints
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


def fill_expired_tokens(path: Path, consumer_id: int, n: int) -> None:
    """``n`` access tokens of consumer ``consumer_id``, expired since 2020, straight into
    the SQLite store at ``path`` in one transaction, the WAL checkpointed after: what
    `tokens purge` has to delete (benchmarks/purge_wal.py and its test in
    tests/service/test_store_lifecycle.py)."""
    import os
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO tokens (token, secret_enc, consumer_id, type, state, user, issued_at,"
        " expires_at) VALUES (?, ?, ?, 'access', 'active', 'alice', '2020-01-01 00:00:00',"
        " '2020-01-08 00:00:00')",
        ((f"expired-{i:09d}", os.urandom(60), consumer_id) for i in range(n)))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def server_socket() -> tuple[socket.socket, str]:
    """A socket on a free port of 127.0.0.1 for a server to listen on, and its base URL.
    TCP_NODELAY is set, and accepted connections inherit it: without it, h11's separate
    header and body writes meet delayed ACKs and every keep-alive request waits ~40 ms."""
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def wait_for_ping(base: str, timeout: float = 30,
                  alive: Callable[[], bool] = lambda: True) -> None:
    """Until the server at ``base`` answers /rest/ping: a refused connection is tried
    again every 50 ms, and raised once ``timeout`` seconds have passed or ``alive()``
    says the server is gone."""
    import requests

    deadline = time.time() + timeout
    while True:
        try:
            if requests.get(base + "/rest/ping", timeout=2).ok:
                return
        except requests.ConnectionError:
            if time.time() > deadline or not alive():
                raise
            time.sleep(0.05)


def timed_threads(target: Callable[[Any], object], args: Iterable[Any]) -> float:
    """``target(arg)`` for each of ``args``, each in a thread, all at once: the seconds
    from the first start to the last end."""
    pool = [threading.Thread(target=target, args=(arg,)) for arg in args]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - start
