"""Secrets sealed under a passphrase, for files that leave the host (export, data key).

scrypt (``cryptography``'s Scrypt KDF, a random 16-byte salt) turns the
passphrase into a 256-bit key; AES-GCM (a random 96-bit nonce) seals the
plaintext, with a label naming what the box holds as associated data, so a box
made for one purpose cannot be passed off as another.  The KDF parameters are
stored beside the ciphertext::

    {"kdf": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": "...",
     "cipher": "AES-256-GCM", "nonce": "...", "ciphertext": "..."}

The box is read from files that may be hostile: every member is checked, and
the scrypt cost is bounded (a file cannot make us spend gigabytes of memory).
Errors are :class:`ValidationError` on the box's path in the file; a wrong
passphrase is said as such and never shows what was decrypted.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from tui_oauth.core.errors import FieldError, ValidationError

__all__ = ["MIN_PASSPHRASE", "WrongPassphraseError", "seal", "unseal"]

KDF = "scrypt"
CIPHER = "AES-256-GCM"
#: scrypt cost: n=2**15, r=8 uses 32 MiB and about 0.1 s.
N, R, P = 2**15, 8, 1
#: The most a file may ask for: n=2**20 with r=8 is 1 GiB.
MAX_N, MAX_R, MAX_P = 2**20, 16, 4
MIN_N = 2**14
MAX_CIPHERTEXT = 256 * 1024 * 1024
MIN_PASSPHRASE = 8


class WrongPassphraseError(ValidationError):
    """The passphrase does not open the box (or the box was altered)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def seal(plaintext: bytes, passphrase: str, *, purpose: str) -> dict[str, Any]:
    """Encrypt ``plaintext`` under ``passphrase``; ``purpose`` is bound to the box."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise ValidationError(FieldError(
            "passphrase", f"The passphrase is shorter than {MIN_PASSPHRASE} characters; "
                          "choose a longer one."))
    salt = os.urandom(16)
    nonce = os.urandom(12)
    key = _key(passphrase, salt, N, R, P)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, purpose.encode("utf-8"))
    return {"kdf": KDF, "n": N, "r": R, "p": P, "salt": _b64(salt),
            "cipher": CIPHER, "nonce": _b64(nonce), "ciphertext": _b64(ciphertext)}


def _fail(path: str, message: str) -> ValidationError:
    return ValidationError(FieldError(path, message))


def _int(box: dict[str, Any], name: str, low: int, high: int, path: str) -> int:
    value = box.get(name)
    if type(value) is not int or not low <= value <= high:
        raise _fail(f"{path}.{name}", f"must be a whole number from {low} to {high}.")
    return value


def _bytes(box: dict[str, Any], name: str, path: str, *, size: int | None = None,
           limit: int = 1024) -> bytes:
    value = box.get(name)
    if not isinstance(value, str) or len(value) > limit * 4 // 3 + 4:
        raise _fail(f"{path}.{name}", "must be base64 text.")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(f"{path}.{name}", "is not valid base64.") from None
    if size is not None and len(raw) != size:
        raise _fail(f"{path}.{name}", f"must be {size} bytes, not {len(raw)}.")
    return raw


def unseal(box: object, passphrase: str, *, purpose: str, path: str) -> bytes:
    """The plaintext of a box made by :func:`seal` with the same ``purpose``.

    Raises ValidationError (on ``path`` or one of its members) for a malformed
    box, WrongPassphraseError when the passphrase does not open it.
    """
    if not isinstance(box, dict):
        raise _fail(path, "must be an object holding the encrypted secrets.")
    unknown = sorted(set(box) - {"kdf", "n", "r", "p", "salt", "cipher", "nonce",
                                  "ciphertext"})
    if unknown:
        raise _fail(f"{path}.{unknown[0]}", "is not a member of an encrypted box.")
    if box.get("kdf") != KDF:
        raise _fail(f"{path}.kdf", f"must be {KDF!r}.")
    if box.get("cipher") != CIPHER:
        raise _fail(f"{path}.cipher", f"must be {CIPHER!r}.")
    n = _int(box, "n", MIN_N, MAX_N, path)
    if n & (n - 1):
        raise _fail(f"{path}.n", "must be a power of 2.")
    r = _int(box, "r", 1, MAX_R, path)
    p = _int(box, "p", 1, MAX_P, path)
    salt = _bytes(box, "salt", path)
    if len(salt) < 16:
        raise _fail(f"{path}.salt", "must be at least 16 bytes.")
    nonce = _bytes(box, "nonce", path, size=12)
    ciphertext = _bytes(box, "ciphertext", path, limit=MAX_CIPHERTEXT)
    if len(ciphertext) < 16:
        raise _fail(f"{path}.ciphertext", "is too short to hold anything.")
    key = _key(passphrase, salt, n, r, p)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, purpose.encode("utf-8"))
    except InvalidTag:
        raise WrongPassphraseError(FieldError(
            path, "The passphrase does not open the encrypted secrets (a wrong passphrase, "
                  "or the file was altered); nothing was changed. Give the passphrase used "
                  "for the export.")) from None
