"""RSA keys for OAuth 1.0a RSA-SHA1: parse, describe, generate, match.

A consumer's public key arrives in many shapes: PEM ``BEGIN PUBLIC KEY``
(SubjectPublicKeyInfo), PEM ``BEGIN RSA PUBLIC KEY`` (PKCS#1), an X.509
certificate, or Atlassian's bare base64 of the DER SubjectPublicKeyInfo.
:func:`parse_public_key` accepts all of them and normalizes to the bare base64
of the DER SPKI (``PublicKeyInfo.base64_der``), which is what the store keeps.

Fingerprints are ``SHA256:`` followed by the SHA-256 of the DER
SubjectPublicKeyInfo as **uppercase** hex pairs joined by ``:``, e.g.
``SHA256:3F:A1:...`` (32 pairs).  They are the same whichever format the key
was pasted in.

Every rejection is a :class:`ValidationError` on the given field whose message
says what was wrong and what to do; it never repeats the pasted key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import UTC, datetime
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519

from tui_oauth.core.errors import FieldError, ValidationError

__all__ = [
    "FORMATS", "MAX_BITS", "MAX_INPUT_CHARS", "MIN_BITS", "MIN_GENERATE_BITS", "RECOMMENDED_BITS",
    "PublicKeyInfo", "describe", "fingerprint_of", "generate_key_pair", "load_private_key",
    "parse_public_key", "private_matches_public", "public_from_private",
]

MAX_INPUT_CHARS = 64 * 1024
MIN_BITS = 1024
RECOMMENDED_BITS = 2048
MIN_GENERATE_BITS = 2048
MAX_BITS = 16384
FORMATS = ("PEM SPKI", "PEM PKCS#1", "X.509 certificate", "base64 DER SPKI", "base64 DER PKCS#1")

_CONVERT_HINT = (
    "paste the public key as PEM (-----BEGIN PUBLIC KEY-----), an X.509 certificate, "
    "or the bare base64 of the DER SubjectPublicKeyInfo"
)
_PRIVATE_RE = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----|PuTTY-User-Key-File-")
_PEM_BEGIN_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,40})-----")
_SSH_RE = re.compile(
    r"(?:^|\s)(ssh-rsa|ssh-dss|ssh-ed25519|ssh-ed448|ecdsa-sha2-\S+|sk-\S+)\s+AAAA"
)
_SSH2_MARK = "---- BEGIN SSH2 PUBLIC KEY ----"


@dataclass(frozen=True)
class PublicKeyInfo:
    """A parsed RSA public key.  ``public_key()`` gives the ``cryptography`` object."""

    format: str
    bits: int
    fingerprint: str
    base64_der: str
    pem: str
    warnings: tuple[str, ...] = ()
    subject: str | None = None
    not_after: datetime | None = None
    _key: rsa.RSAPublicKey | None = dc_field(default=None, repr=False, compare=False)

    @property
    def weak(self) -> bool:
        """True for keys under 2048 bits (accepted, but a warning is shown)."""
        return self.bits < RECOMMENDED_BITS

    def public_key(self) -> rsa.RSAPublicKey:
        if self._key is None:  # pragma: no cover - always set by the constructors here
            key = serialization.load_der_public_key(base64.b64decode(self.base64_der))
            assert isinstance(key, rsa.RSAPublicKey)
            return key
        return self._key


def _fail(field_name: str, message: str) -> ValidationError:
    return ValidationError(FieldError(field_name, message))


def _fingerprint(spki_der: bytes) -> str:
    digest = hashlib.sha256(spki_der).hexdigest().upper()
    return "SHA256:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _b64decode(text: str) -> bytes | None:
    """Strict base64 decoding of text with all whitespace removed; None if invalid."""
    compact = "".join(text.split())
    if not compact or not compact.isascii():
        return None
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def _der_kind(der: bytes) -> str | None:
    """"SPKI" or "PKCS#1" from the first element inside the outer DER SEQUENCE."""
    if len(der) < 4 or der[0] != 0x30:
        return None
    first = der[1]
    offset = 2 if first < 0x80 else 2 + (first & 0x7F)
    if offset >= len(der):
        return None
    return {0x30: "SPKI", 0x02: "PKCS#1"}.get(der[offset])


def _describe_non_rsa(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an EC ({key.curve.name}) key"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "an Ed25519 key"
    if isinstance(key, ed448.Ed448PublicKey):
        return "an Ed448 key"
    if isinstance(key, dsa.DSAPublicKey):
        return "a DSA key"
    if isinstance(key, x25519.X25519PublicKey | x448.X448PublicKey):
        return "an X25519/X448 key-agreement key"
    return "not an RSA key"


def _not_rsa(field_name: str, what: str) -> ValidationError:
    return _fail(
        field_name,
        f"That is {what}; OAuth 1.0a RSA-SHA1 needs an RSA public key. Generate an RSA key "
        "pair (2048 bits or more), e.g. `openssl genpkey -algorithm RSA -pkeyopt "
        "rsa_keygen_bits:2048`, and paste its public key.",
    )


def _private_error(field_name: str) -> ValidationError:
    return _fail(
        field_name,
        "That is a private key; paste the public key instead (get it with "
        "`openssl pkey -in key.pem -pubout`). Never share the private key: if it was sent "
        "anywhere, consider it exposed and generate a new pair.",
    )


def _build_info(
    key: object,
    fmt: str,
    field_name: str,
    *,
    subject: str | None = None,
    not_after: datetime | None = None,
    extra_warnings: tuple[str, ...] = (),
) -> PublicKeyInfo:
    if not isinstance(key, rsa.RSAPublicKey):
        raise _not_rsa(field_name, _describe_non_rsa(key))
    bits = key.key_size
    if bits < MIN_BITS:
        raise _fail(
            field_name,
            f"That RSA key has only {bits} bits; at least {MIN_BITS} are required "
            f"({RECOMMENDED_BITS} or more recommended). Generate a new key pair.",
        )
    if bits > MAX_BITS:
        raise _fail(
            field_name,
            f"That RSA key has {bits} bits, more than the {MAX_BITS} supported; "
            "use a 2048-, 3072- or 4096-bit key.",
        )
    warnings = list(extra_warnings)
    if bits < RECOMMENDED_BITS:
        warnings.append(f"{bits}-bit key: {RECOMMENDED_BITS} bits or more recommended")
    spki_format = serialization.PublicFormat.SubjectPublicKeyInfo
    spki = key.public_bytes(serialization.Encoding.DER, spki_format)
    pem = key.public_bytes(serialization.Encoding.PEM, spki_format)
    return PublicKeyInfo(
        format=fmt,
        bits=bits,
        fingerprint=_fingerprint(spki),
        base64_der=base64.b64encode(spki).decode("ascii"),
        pem=pem.decode("ascii"),
        warnings=tuple(warnings),
        subject=subject,
        not_after=not_after,
        _key=key,
    )


def _from_certificate(der: bytes, field_name: str) -> PublicKeyInfo:
    cert = x509.load_der_x509_certificate(der)
    try:
        key = cert.public_key()
    except UnsupportedAlgorithm:
        raise _not_rsa(field_name, "a certificate for a key type that is not RSA") from None
    subject = cert.subject.rfc4514_string()
    not_after = cert.not_valid_after_utc
    warnings: tuple[str, ...] = ()
    if not_after < datetime.now(UTC):
        warnings = (
            f"certificate expired on {not_after:%Y-%m-%d}; only its public key is used, "
            "but you may want a current one",
        )
    return _build_info(
        key, "X.509 certificate", field_name,
        subject=subject, not_after=not_after, extra_warnings=warnings,
    )


def _from_public_der(der: bytes, fmt_prefix: str, field_name: str) -> PublicKeyInfo:
    kind = _der_kind(der)
    try:
        key = serialization.load_der_public_key(der)
    except UnsupportedAlgorithm:
        raise _not_rsa(field_name, "a key of an unsupported type") from None
    return _build_info(key, f"{fmt_prefix} {kind or 'SPKI'}", field_name)


def _parse_pem(text: str, field_name: str) -> PublicKeyInfo:
    match = _PEM_BEGIN_RE.search(text)
    assert match is not None
    label = match.group(1)
    end_marker = f"-----END {label}-----"
    end = text.find(end_marker, match.end())
    if end < 0:
        raise _fail(
            field_name,
            f"The PEM block is incomplete: the line {end_marker} is missing. Copy the whole "
            "key, from the BEGIN line to the END line.",
        )
    if "CERTIFICATE REQUEST" in label:
        raise _fail(
            field_name, "That is a certificate signing request, not a key; " + _CONVERT_HINT + "."
        )
    body_lines = [line for line in text[match.end() : end].splitlines() if ":" not in line]
    der = _b64decode("".join(body_lines))
    if der is None:
        raise _fail(
            field_name,
            f"The PEM block ({label}) does not contain valid base64: check that it was copied "
            "completely and not altered.",
        )
    try:
        if label in ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"):
            return _from_certificate(der, field_name)
        if label in ("PUBLIC KEY", "RSA PUBLIC KEY"):
            return _from_public_der(der, "PEM", field_name)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        what = "certificate" if "CERTIFICATE" in label else "public key"
        raise _fail(
            field_name,
            f"The PEM block ({label}) is not a readable {what}: check that it was copied "
            "completely; " + _CONVERT_HINT + ".",
        ) from None
    raise _fail(
        field_name, f"A PEM block labelled {label} is not a public key; " + _CONVERT_HINT + "."
    )


def _looks_private_der(der: bytes) -> bool:
    try:
        serialization.load_der_private_key(der, password=None, unsafe_skip_rsa_key_validation=True)
    except TypeError:  # encrypted: still a private key
        return True
    except (ValueError, UnsupportedAlgorithm):
        return False
    return True


def _parse_bare(text: str, field_name: str) -> PublicKeyInfo:
    der = _b64decode(text)
    if der is None:
        raise _fail(
            field_name,
            "Not a valid public key: the text is neither PEM nor valid base64. "
            + "P"
            + _CONVERT_HINT[1:]
            + ".",
        )
    try:
        return _from_public_der(der, "base64 DER", field_name)
    except (ValueError, TypeError):
        pass
    try:
        return _from_certificate(der, field_name)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    if _looks_private_der(der):
        raise _private_error(field_name)
    raise _fail(
        field_name,
        "The base64 decodes, but not to an RSA public key (DER SubjectPublicKeyInfo or "
        "PKCS#1): check that the whole key was copied.",
    )


def parse_public_key(text: str | bytes, field: str = "public_key") -> PublicKeyInfo:
    """Parse a pasted RSA public key in any accepted format (see the module docs)."""
    if isinstance(text, bytes | bytearray):
        if len(text) > MAX_INPUT_CHARS:
            raise _too_large(field, len(text))
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(field, "The key is not text: " + _CONVERT_HINT + ".") from None
    if not isinstance(text, str):
        raise _fail(field, "No public key given: " + _CONVERT_HINT + ".")
    if len(text) > MAX_INPUT_CHARS:
        raise _too_large(field, len(text))
    text = text.strip()
    if not text:
        raise _fail(field, "No public key given: " + _CONVERT_HINT + ".")
    if _PRIVATE_RE.search(text):
        raise _private_error(field)
    ssh = _SSH_RE.search(text)
    if ssh or _SSH2_MARK in text:
        key_type = ssh.group(1) if ssh else "ssh-rsa"
        if key_type != "ssh-rsa":
            raise _not_rsa(field, f"an OpenSSH {key_type} key")
        raise _fail(
            field,
            "That is an OpenSSH public key (ssh-rsa ...), which is not accepted as is; convert "
            "it with `ssh-keygen -e -m PKCS8 -f key.pub` and paste the output.",
        )
    try:
        if _PEM_BEGIN_RE.search(text):
            return _parse_pem(text, field)
        if text.startswith("<"):
            raise _fail(
                field,
                "That looks like XML or HTML; paste only the key (e.g. the contents of "
                "<publicKey>), or add the consumer by URL.",
            )
        return _parse_bare(text, field)
    except (ValueError, TypeError, UnsupportedAlgorithm, binascii.Error, OverflowError):
        raise _fail(field, "The key could not be read: " + _CONVERT_HINT + ".") from None


def _too_large(field_name: str, size: int) -> ValidationError:
    return _fail(
        field_name,
        f"The key text is too large ({size // 1024} KiB; the limit is {MAX_INPUT_CHARS // 1024} "
        "KiB): paste only the public key.",
    )


@lru_cache(maxsize=512)
def describe(base64_der: str) -> PublicKeyInfo:
    """Describe a stored key (cached: cheap to call when drawing a view)."""
    return parse_public_key(base64_der, field="public_key")


def fingerprint_of(base64_der: str) -> str:
    """``SHA256:AB:CD:...`` of a stored key (any accepted format)."""
    return describe(base64_der).fingerprint


# --- private keys -------------------------------------------------------------------

_PRIVATE_CACHE: OrderedDict[str, rsa.RSAPrivateKey] = OrderedDict()
_PRIVATE_CACHE_SIZE = 8
_PRIVATE_LOCK = threading.Lock()


def generate_key_pair(bits: int = 2048) -> tuple[str, str]:
    """A new RSA pair: (unencrypted PKCS#8 private PEM, public bare base64 DER SPKI)."""
    if not isinstance(bits, int) or bits < MIN_GENERATE_BITS or bits > MAX_BITS:
        raise _fail(
            "bits",
            f"Key size must be between {MIN_GENERATE_BITS} and {MAX_BITS} bits "
            "(2048, 3072 or 4096 are usual).",
        )
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, base64.b64encode(spki).decode("ascii")


def load_private_key(pem: str, field: str = "private_key") -> rsa.RSAPrivateKey:
    """Load an unencrypted RSA private key (PKCS#8 or PKCS#1 PEM), cached by SHA-256 of the PEM."""
    if not isinstance(pem, str) or not pem.strip():
        raise _fail(
            field, "No private key given: the Consumer Info key pair may need regenerating."
        )
    digest = hashlib.sha256(pem.encode("utf-8", "surrogatepass")).hexdigest()
    with _PRIVATE_LOCK:
        cached = _PRIVATE_CACHE.get(digest)
        if cached is not None:
            _PRIVATE_CACHE.move_to_end(digest)
            return cached
    try:
        key = serialization.load_pem_private_key(pem.strip().encode("ascii"), password=None)
    except TypeError:
        raise _fail(
            field, "The private key is encrypted; store it unencrypted (the keyring protects it)."
        ) from None
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
        raise _fail(
            field,
            "The private key could not be read (expected an unencrypted PEM "
            "-----BEGIN PRIVATE KEY-----); regenerate the key pair if it is damaged.",
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _fail(field, "The private key is not RSA; OAuth 1.0a RSA-SHA1 needs an RSA key pair.")
    with _PRIVATE_LOCK:
        _PRIVATE_CACHE[digest] = key
        while len(_PRIVATE_CACHE) > _PRIVATE_CACHE_SIZE:
            _PRIVATE_CACHE.popitem(last=False)
    return key


def public_from_private(pem: str) -> str:
    """The bare base64 DER SPKI of the public half of a private key PEM."""
    spki = load_private_key(pem).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(spki).decode("ascii")


def private_matches_public(pem: str, base64_der: str) -> bool:
    """True when the private key PEM is the pair of the public key.

    An unreadable private key raises ``ValidationError``; an unreadable public key
    simply does not match (False).
    """
    private = load_private_key(pem)
    try:
        public = describe(base64_der).public_key()
    except ValidationError:
        return False
    return private.public_key().public_numbers() == public.public_numbers()
