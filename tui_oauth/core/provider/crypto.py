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
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.exc import IntegrityError

from tui_oauth.core.errors import SecretStoreError
from tui_oauth.core.models import KeyringItem, StoreMeta

if TYPE_CHECKING:
    from tui_oauth.core.store import Store

CHECK_META_KEY = "provider.data_key_check"
#: While the data key is being rotated: JSON {"previous_check", "after_id"} (how far the
#: re-encryption got, so that an interrupted rotation resumes there).
ROTATION_META_KEY = "provider.data_key_rotation"
_VERSION = b"\x01"
_CHECK_LABEL = b"tui-oauth data key check v1"

_lock = threading.Lock()


class DataKey:
    """AES-256-GCM over token secrets."""

    def __init__(self, raw: bytes, previous: DataKey | None = None) -> None:
        if len(raw) != 32:
            raise ValueError("the data key must be 32 bytes")
        self._aead = AESGCM(raw)
        self._raw = raw
        #: During a rotation, the old key: ``decrypt`` falls back to it.
        self.previous = previous

    def with_previous(self, previous: DataKey | None) -> DataKey:
        return DataKey(self._raw, previous)

    @classmethod
    def generate(cls) -> DataKey:
        return cls(AESGCM.generate_key(bit_length=256))

    @classmethod
    def from_text(cls, text: str) -> DataKey:
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except ValueError as exc:
            raise SecretStoreError(
                f"The keyring item {KeyringItem.DATA_KEY!r} is not a base64 data key."
            ) from exc
        if len(raw) != 32:
            raise SecretStoreError(
                f"The keyring item {KeyringItem.DATA_KEY!r} is not a 256-bit key.")
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
        """The plaintext, or None when the blob is not ours (wrong key, moved, damaged).
        During a rotation, a blob still under the previous key is read with it."""
        found = self.decrypt_current(blob, aad)
        if found is None and self.previous is not None:
            return self.previous.decrypt_current(blob, aad)
        return found

    def decrypt_current(self, blob: bytes, aad: str) -> str | None:
        """As :meth:`decrypt`, with this key only."""
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
        text = store.secrets.get(KeyringItem.DATA_KEY)
        with store.session() as s:
            meta = s.exec(select(StoreMeta).where(StoreMeta.key == CHECK_META_KEY)).first()
        if text is not None:
            key = DataKey.from_text(text)
            if meta is not None and not hmac.compare_digest(meta.value, key.check_value()):
                raise SecretStoreError(
                    f"The keyring's {KeyringItem.DATA_KEY!r} is not the data key this store's "
                    "tokens were encrypted with (another host made it?).",
                    hint="On the host whose keyring has the store's key: `tui-oauth keyring "
                         "export-data-key -o key.json`; here: `tui-oauth keyring "
                         "import-data-key key.json --replace`; then start again.",
                )
            if meta is None and not store.read_only:
                with store.transaction() as uow:
                    uow.session.add(StoreMeta(key=CHECK_META_KEY, value=key.check_value()))
            return key.with_previous(_previous_key(store))
        if meta is not None:
            raise SecretStoreError(
                f"This store's data key ({KeyringItem.DATA_KEY!r}) is missing from this "
                "host's keyring.",
                hint="On a host that has it: `tui-oauth keyring export-data-key -o key.json`; "
                     "here: `tui-oauth keyring import-data-key key.json`; then start again.",
            )
        if not create:
            raise SecretStoreError("This store has no data key yet.",
                                   hint="Start `tui-oauth serve` once to create it.")
        key = DataKey.generate()
        try:
            with store.transaction() as uow:
                uow.session.add(StoreMeta(key=CHECK_META_KEY, value=key.check_value()))
                uow.session.flush()  # a concurrent creator fails here, before the keyring
                uow.set_secret(KeyringItem.DATA_KEY, key.to_text())
                uow.audit("provider.data_key.create", "keyring", KeyringItem.DATA_KEY,
                          detail="data key for token secrets created")
        except IntegrityError:
            text = store.secrets.get(KeyringItem.DATA_KEY)
            if text is None:
                raise
            return DataKey.from_text(text)
        return key


def _rotation_state(store: Store) -> dict[str, Any] | None:
    from sqlmodel import select

    with store.session() as s:
        meta = s.exec(select(StoreMeta).where(StoreMeta.key == ROTATION_META_KEY)).first()
    if meta is None:
        return None
    try:
        state = json.loads(meta.value)
    except ValueError:
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("previous_check"), str):
        raise SecretStoreError(f"store_meta {ROTATION_META_KEY!r} is damaged.",
                               hint="Run `tui-oauth keyring rotate-data-key` again.")
    return state


def _previous_key(store: Store) -> DataKey | None:
    """During a rotation, the old key (checked against the value noted when it began)."""
    state = _rotation_state(store)
    if state is None:
        return None
    text = store.secrets.get(KeyringItem.PREVIOUS_DATA_KEY)
    if text is None:
        raise SecretStoreError(
            f"A data key rotation is under way but {KeyringItem.PREVIOUS_DATA_KEY!r} is missing "
            "from this host's keyring: tokens not yet re-encrypted cannot be read here.",
            hint="Finish the rotation on the host that started it "
                 "(`tui-oauth keyring rotate-data-key`).")
    previous = DataKey.from_text(text)
    if not hmac.compare_digest(previous.check_value(), state["previous_check"]):
        raise SecretStoreError(
            f"{KeyringItem.PREVIOUS_DATA_KEY!r} is not the key the rotation replaced.")
    return previous


#: Passes over the newest rows, ``settle`` seconds apart, before a rotation gives up
#: waiting for every server to write with the new key (and keeps the old one).
SETTLE_ROUNDS = 3


@dataclass(frozen=True)
class RotationProgress:
    reencrypted: int  # token secrets re-encrypted by this run
    #: The previous key is gone.  False: a server still encrypts with it (another host
    #: whose keyring lacks the new key?); it is kept, and running again finishes.
    finished: bool
    resumed: bool  # this run continued an interrupted rotation


def rotate_data_key(store: Store, *, batch: int = 500, settle: float = 3.0,
                    progress: Callable[[int], None] | None = None) -> RotationProgress:
    """Give the store a new data key and re-encrypt every token secret under it, in
    batches, while servers keep running.

    It begins by making the new key current (the keyring's ``provider/data-key``, and
    the store's check value) and keeping the old one beside it
    (``provider/data-key-previous``): every server reloads its keys within a second
    (its housekeeping sees the check value change) and reads both until the end.
    Each batch's rows are re-encrypted with a compare-and-set (a row changed meanwhile
    is left to the next pass), and how far it got is noted in the same transaction, so
    an interrupted run resumes there.  Once a pass finds nothing under the old key
    after servers have had ``settle`` seconds to switch, the old key is deleted."""
    resumed = _rotation_state(store) is not None
    if resumed:
        current = load_data_key(store, create=False)
    else:
        old = load_data_key(store, create=False)
        current = DataKey.generate()
        with store.transaction() as uow:
            row = uow.session.get(StoreMeta, CHECK_META_KEY)
            assert row is not None  # load_data_key made it
            row.value = current.check_value()
            uow.session.add(row)
            uow.session.add(StoreMeta(key=ROTATION_META_KEY, value=json.dumps(
                {"previous_check": old.check_value(), "after_id": 0})))
            uow.session.flush()  # a concurrent rotation fails here, before the keyring
            uow.set_secret(KeyringItem.PREVIOUS_DATA_KEY, old.to_text())
            uow.set_secret(KeyringItem.DATA_KEY, current.to_text())
            uow.audit("provider.data_key.rotate_start", "keyring", KeyringItem.DATA_KEY,
                      detail="new data key; token secrets are being re-encrypted")
        current = current.with_previous(old)
    state = _rotation_state(store) or {}
    total, last_id = _reencrypt_from(store, current, int(state.get("after_id", 0)), batch,
                                     progress)
    for _ in range(SETTLE_ROUNDS):
        time.sleep(settle)  # servers that still wrote with the old key have switched now
        again, last_id = _reencrypt_from(store, current, last_id, batch, progress)
        total += again
        if again == 0:
            break
    else:  # still written with the old key: a server that cannot load the new one
        return RotationProgress(total, False, resumed)
    with store.transaction() as uow:
        row = uow.session.get(StoreMeta, ROTATION_META_KEY)
        if row is not None:
            uow.session.delete(row)
        uow.delete_secret(KeyringItem.PREVIOUS_DATA_KEY)
        uow.audit("provider.data_key.rotate", "keyring", KeyringItem.DATA_KEY,
                  detail=f"data key rotated; {total} token secret(s) re-encrypted by this run")
    return RotationProgress(total, True, resumed)


def _reencrypt_from(store: Store, key: DataKey, after_id: int, batch: int,
                    progress: Callable[[int], None] | None) -> tuple[int, int]:
    """Re-encrypt the rows past ``after_id`` still under the previous key; returns how
    many, and the last id seen."""
    from sqlmodel import col, select, update

    from tui_oauth.core.models import Token

    assert key.previous is not None
    moved = 0
    while True:
        with store.session() as s:
            rows = s.exec(select(Token.id, Token.token, Token.secret_enc)
                          .where(col(Token.id) > after_id).order_by(col(Token.id))
                          .limit(batch)).all()
        if not rows:
            return moved, after_id
        changes = []
        for row_id, token, blob in rows:
            if blob is None or key.decrypt_current(blob, token) is not None:
                continue
            plain = key.previous.decrypt_current(blob, token)
            if plain is not None:
                changes.append((row_id, blob, key.encrypt(plain, token)))
        with store.transaction() as uow:
            for row_id, old_blob, new_blob in changes:  # compare-and-set
                result = uow.session.exec(update(Token).where(
                    col(Token.id) == row_id, col(Token.secret_enc) == old_blob)
                    .values(secret_enc=new_blob))
                moved += int(result.rowcount or 0)
            after_id = int(rows[-1][0] or after_id)
            meta = uow.session.get(StoreMeta, ROTATION_META_KEY)
            if meta is not None:  # where an interrupted run resumes
                state = json.loads(meta.value)
                state["after_id"] = after_id
                meta.value = json.dumps(state)
                uow.session.add(meta)
        if progress is not None:
            progress(moved)
        time.sleep(0.005)  # let the server's writes in between batches
