"""Shared helpers for the service tests: RSA keys in every accepted form, direct
row inserts (tokens), snapshots of a whole store (database and keyring), and a
local HTTP server for consumer-info documents.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import inspect, text
from sqlmodel import Session

from tui_oauth.core.models import HeldToken, Token, TokenType
from tui_oauth.core.store import Store

#: Tables whose rows a store change may touch (store_meta aside).
DATA_TABLES = (
    "consumers", "consumer_info", "service_providers", "tokens", "held_tokens", "audit_log",
)

HTTPS = {
    "request_token_url": "https://sp.example.com/oauth/request_token",
    "authorization_url": "https://sp.example.com/oauth/authorize",
    "access_token_url": "https://sp.example.com/oauth/access_token",
}


# --- keys ---------------------------------------------------------------------------

@lru_cache(maxsize=8)
def rsa_key(index: int = 0, bits: int = 2048) -> rsa.RSAPrivateKey:
    """A private key, generated once per (index, bits) for the whole run."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def spki_der(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_b64(key: rsa.RSAPrivateKey) -> str:
    """Atlassian's form: bare base64 of the DER SubjectPublicKeyInfo."""
    return base64.b64encode(spki_der(key)).decode("ascii")


def expected_fingerprint(key: rsa.RSAPrivateKey) -> str:
    digest = hashlib.sha256(spki_der(key)).hexdigest().upper()
    return "SHA256:" + ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def pem_spki(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def pem_pkcs1(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    ).decode("ascii")


def pem_private(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def pem_certificate(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "consumer.example.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def public_key_forms(key: rsa.RSAPrivateKey) -> dict[str, str]:
    """Every form the Consumers tab accepts, by name."""
    return {
        "pem-spki": pem_spki(key),
        "pem-pkcs1": pem_pkcs1(key),
        "certificate": pem_certificate(key),
        "bare-base64": spki_b64(key),
        "bare-base64-wrapped": "\n".join(
            spki_b64(key)[i:i + 64] for i in range(0, len(spki_b64(key)), 64)
        ),
    }


def pem_body_lines(pem: str) -> list[str]:
    """The base64 lines of a PEM block (what would show if it leaked)."""
    return [line for line in pem.strip().splitlines() if line and not line.startswith("-----")]


# --- rows ---------------------------------------------------------------------------

def add_tokens(store: Store, consumer_id: int, *, request: int = 0, access: int = 0) -> None:
    """Insert request/access Token rows directly (as the provider would)."""
    with Session(store.engine) as s:
        for kind, n in ((TokenType.REQUEST, request), (TokenType.ACCESS, access)):
            for _ in range(n):
                s.add(Token(token=uuid.uuid4().hex, consumer_id=consumer_id, type=kind,
                            user="alice", secret_enc=b"\x00enc"))
        s.commit()


def add_held_tokens(store: Store, provider_id: int, n: int) -> None:
    with Session(store.engine) as s:
        for _ in range(n):
            s.add(HeldToken(provider_id=provider_id, type=TokenType.ACCESS, user="bob",
                            token=uuid.uuid4().hex))
        s.commit()


def count(store: Store, table: str, where: str = "", **params: Any) -> int:
    sql = f"SELECT COUNT(*) FROM {table}" + (f" WHERE {where}" if where else "")  # noqa: S608
    with store.engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def db_state(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every data table, ordered: compare before/after a failed change."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as conn:
        for table in DATA_TABLES:
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()  # noqa: S608
            state[table] = sorted((tuple(r) for r in rows), key=repr)
    return state


def all_text(store: Store) -> str:
    """Every value of every column of every table, as one string (for leak scans)."""
    parts: list[str] = []
    with store.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):  # noqa: S608
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        parts.append(bytes(value).decode("latin-1"))
                    elif value is not None:
                        parts.append(str(value))
    return "\n".join(parts)


def keyring_items(store: Store, backend: Any) -> dict[str, str]:
    """The items of ``store``'s namespace in a MemoryKeyring (or one wrapped by FailingKeyring)."""
    inner = getattr(backend, "inner", backend)
    service = store.secrets.service_name
    return {user: value for (svc, user), value in inner.items.items() if svc == service}


def audit_actions(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(text("SELECT action FROM audit_log ORDER BY id")).scalars())


# --- consumer-info over HTTP ------------------------------------------------------------

def consumer_info_xml(key: str, name: str, public_key_b64: str, *,
                      description: str | None = None, callback: str | None = None) -> bytes:
    parts = [f"<key>{key}</key>", f"<name>{name}</name>",
             f"<publicKey>{public_key_b64}</publicKey>"]
    if description:
        parts.append(f"<description>{description}</description>")
    if callback:
        parts.append(f"<callback>{callback}</callback>")
    return ("<?xml version='1.0' encoding='UTF-8'?>\n<consumer>\n  "
            + "\n  ".join(parts) + "\n</consumer>\n").encode()


@contextmanager
def serve_consumer_info(body: bytes, content_type: str = "application/xml",
                        requests_seen: list[str] | None = None) -> Iterator[str]:
    """Serve ``body`` at /plugins/servlet/oauth/consumer-info on 127.0.0.1; yields the base
    URL.  Each request's path is appended to ``requests_seen`` when given."""
    seen: list[str] = [] if requests_seen is None else requests_seen

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            if self.path != "/plugins/servlet/oauth/consumer-info":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def stop_process(proc: subprocess.Popen[str], timeout: float = 10) -> str:
    """Stop a program a test started (TERM, then KILL after ``timeout`` seconds) and
    return what it wrote on stderr."""
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""
