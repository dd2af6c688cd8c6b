"""The data key: token secrets are stored encrypted in the database under it.

The key (256-bit AES-GCM) lives in the keyring item ``provider/data-key``; a
process reads it once and keeps it in memory, so millions of tokens cost one
keyring read.  ``store_meta`` holds a check value (an HMAC of a fixed string
under the key) so that a host whose keyring holds a *different* key (several
hosts on one PostgreSQL store, each with its own keyring) is told so instead
of silently making a second key that cannot read the first one's tokens.

Ciphertext layout: ``b"\\x01" + 12-byte nonce + AES-GCM(ciphertext || tag)``,
with the token string as associated data, so a secret cannot be moved to
another row.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.exc import IntegrityError

from tui_oauth.core.errors import SecretStoreError
from tui_oauth.core.models import StoreMeta

if TYPE_CHECKING:
    from tui_oauth.core.store import Store

DATA_KEY_ITEM = "provider/data-key"
CHECK_META_KEY = "provider.data_key_check"
_VERSION = b"\x01"
_CHECK_LABEL = b"tui-oauth data key check v1"

_lock = threading.Lock()


class DataKey:
    """AES-256-GCM over token secrets."""

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise ValueError("the data key must be 32 bytes")
        self._aead = AESGCM(raw)
        self._raw = raw

    @classmethod
    def generate(cls) -> DataKey:
        return cls(AESGCM.generate_key(bit_length=256))

    @classmethod
    def from_text(cls, text: str) -> DataKey:
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except ValueError as exc:
            raise SecretStoreError(
                f"The keyring item {DATA_KEY_ITEM!r} is not a base64 data key."
            ) from exc
        if len(raw) != 32:
            raise SecretStoreError(f"The keyring item {DATA_KEY_ITEM!r} is not a 256-bit key.")
        return cls(raw)

    def to_text(self) -> str:
        return base64.b64encode(self._raw).decode("ascii")

    def check_value(self) -> str:
        return base64.b64encode(hmac.new(self._raw, _CHECK_LABEL, hashlib.sha256).digest()[:16]
                                ).decode("ascii")

    def derive(self, label: str) -> bytes:
        """A sub-key for another purpose (e.g. the authorize form's CSRF tokens)."""
        return hmac.new(self._raw, b"derive:" + label.encode(), hashlib.sha256).digest()

    def encrypt(self, plaintext: str, aad: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode("utf-8"),
                                                     aad.encode("utf-8"))

    def decrypt(self, blob: bytes, aad: str) -> str | None:
        """The plaintext, or None when the blob is not ours (wrong key, moved, damaged)."""
        if len(blob) < 1 + 12 + 16 or blob[:1] != _VERSION:
            return None
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], aad.encode("utf-8")).decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            return None


def load_data_key(store: Store, *, create: bool = True) -> DataKey:
    """The store's data key: read from the keyring (one read), created on first use."""
    from sqlmodel import select

    with _lock:
        text = store.secrets.get(DATA_KEY_ITEM)
        with store.session() as s:
            meta = s.exec(select(StoreMeta).where(StoreMeta.key == CHECK_META_KEY)).first()
        if text is not None:
            key = DataKey.from_text(text)
            if meta is not None and not hmac.compare_digest(meta.value, key.check_value()):
                raise SecretStoreError(
                    f"The keyring's {DATA_KEY_ITEM!r} is not the data key this store's tokens "
                    "were encrypted with (another host made it?).",
                    hint="Copy the keyring item from the host that created the store's "
                         "tokens (README, \"Several hosts on one PostgreSQL store\"), then "
                         "start again.",
                )
            if meta is None and not store.read_only:
                with store.transaction() as uow:
                    uow.session.add(StoreMeta(key=CHECK_META_KEY, value=key.check_value()))
            return key
        if meta is not None:
            raise SecretStoreError(
                f"This store's data key ({DATA_KEY_ITEM!r}) is missing from this host's keyring.",
                hint="Copy the keyring item from a host that has it (README, "
                     "\"Several hosts on one PostgreSQL store\"), then start again.",
            )
        if not create:
            raise SecretStoreError("This store has no data key yet.",
                                   hint="Start `tui-oauth serve` once to create it.")
        key = DataKey.generate()
        try:
            with store.transaction() as uow:
                uow.session.add(StoreMeta(key=CHECK_META_KEY, value=key.check_value()))
                uow.session.flush()  # a concurrent creator fails here, before the keyring
                uow.set_secret(DATA_KEY_ITEM, key.to_text())
                uow.audit("provider.data_key.create", "keyring", DATA_KEY_ITEM,
                          detail="data key for token secrets created")
        except IntegrityError:
            text = store.secrets.get(DATA_KEY_ITEM)
            if text is None:
                raise
            return DataKey.from_text(text)
        return key
