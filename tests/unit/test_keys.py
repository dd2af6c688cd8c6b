"""RSA public key parsing, fingerprints, generation and matching (tui_oauth.core.keys)."""

from __future__ import annotations

import base64
import hashlib
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_oauth.core import keys
from tui_oauth.core.errors import ValidationError
from tui_oauth.core.keys import (
    PublicKeyInfo,
    describe,
    fingerprint_of,
    generate_key_pair,
    load_private_key,
    parse_public_key,
    private_matches_public,
    public_from_private,
)

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
PKCS1 = serialization.PublicFormat.PKCS1


@pytest.fixture(scope="module")
def rsa_keys() -> dict[int, rsa.RSAPrivateKey]:
    return {bits: rsa.generate_private_key(65537, bits) for bits in (1024, 2048, 4096)}


@pytest.fixture(scope="module")
def key2048(rsa_keys: dict[int, rsa.RSAPrivateKey]) -> rsa.RSAPrivateKey:
    return rsa_keys[2048]


def spki_der(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(DER, SPKI)


def expected_fingerprint(der: bytes) -> str:
    hexdigest = hashlib.sha256(der).hexdigest()
    return "SHA256:" + ":".join(hexdigest[i : i + 2] for i in range(0, 64, 2)).upper()


def self_signed_cert(key: rsa.RSAPrivateKey, *, expired: bool = False) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jira.example.com")])
    now = datetime.now(UTC)
    start = now - timedelta(days=400 if expired else 1)
    end = now - timedelta(days=30) if expired else now + timedelta(days=365)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(key, hashes.SHA256())
    )


def b64_body(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


def assert_no_material(message: str, pasted: str) -> None:
    """No 12-character run of the pasted base64 text appears in the message."""
    body = "".join(b64_body(pasted).split())
    for i in range(0, max(len(body) - 12, 0), 4):
        assert body[i : i + 12] not in message


def rejection(text: str | bytes, field: str = "public_key") -> str:
    with pytest.raises(ValidationError) as info:
        parse_public_key(text, field=field)
    assert info.value.field == field
    message = info.value.for_field(field)
    assert message
    if isinstance(text, str):
        assert_no_material(message, text)
    return message.lower()


# --- accepted formats -----------------------------------------------------------------


def test_pem_spki(key2048: rsa.RSAPrivateKey) -> None:
    pem = key2048.public_key().public_bytes(PEM, SPKI).decode()
    info = parse_public_key(pem)
    assert info.format == "PEM SPKI"
    assert info.bits == 2048
    assert info.fingerprint == expected_fingerprint(spki_der(key2048))
    assert base64.b64decode(info.base64_der) == spki_der(key2048)
    assert "\n" not in info.base64_der
    assert info.pem == pem
    assert info.warnings == ()
    assert not info.weak
    assert info.subject is None and info.not_after is None
    assert info.public_key().public_numbers() == key2048.public_key().public_numbers()


def test_pem_pkcs1_with_crlf_and_indent(key2048: rsa.RSAPrivateKey) -> None:
    pem = key2048.public_key().public_bytes(PEM, PKCS1).decode()
    assert pem.startswith("-----BEGIN RSA PUBLIC KEY-----")
    pasted = "\r\n  " + "\r\n    ".join(pem.splitlines()) + "\r\n\r\n"
    info = parse_public_key(pasted)
    assert info.format == "PEM PKCS#1"
    assert info.fingerprint == expected_fingerprint(spki_der(key2048))
    assert base64.b64decode(info.base64_der) == spki_der(key2048)


def test_certificate(key2048: rsa.RSAPrivateKey) -> None:
    cert = self_signed_cert(key2048)
    info = parse_public_key(cert.public_bytes(PEM).decode())
    assert info.format == "X.509 certificate"
    assert info.bits == 2048
    assert info.fingerprint == expected_fingerprint(spki_der(key2048))
    assert info.subject == "CN=jira.example.com"
    assert info.not_after == cert.not_valid_after_utc
    assert info.warnings == ()


def test_expired_certificate_is_accepted_with_a_warning(key2048: rsa.RSAPrivateKey) -> None:
    info = parse_public_key(self_signed_cert(key2048, expired=True).public_bytes(PEM).decode())
    assert any("expired" in w for w in info.warnings)


def test_bare_base64_spki_one_line_and_wrapped(key2048: rsa.RSAPrivateKey) -> None:
    b64 = base64.b64encode(spki_der(key2048)).decode()
    one = parse_public_key(b64)
    wrapped = parse_public_key("\n  " + "\r\n".join(textwrap.wrap(b64, 64)) + " \t\n")
    for info in (one, wrapped):
        assert info.format == "base64 DER SPKI"
        assert info.base64_der == b64
        assert info.fingerprint == expected_fingerprint(spki_der(key2048))


def test_bare_base64_pkcs1(key2048: rsa.RSAPrivateKey) -> None:
    b64 = base64.b64encode(key2048.public_key().public_bytes(DER, PKCS1)).decode()
    info = parse_public_key(b64)
    assert info.format == "base64 DER PKCS#1"
    assert base64.b64decode(info.base64_der) == spki_der(key2048)
    assert info.fingerprint == expected_fingerprint(spki_der(key2048))


@pytest.mark.parametrize("bits", [1024, 2048, 4096])
def test_bits_and_weak_flag(rsa_keys: dict[int, rsa.RSAPrivateKey], bits: int) -> None:
    info = parse_public_key(base64.b64encode(spki_der(rsa_keys[bits])).decode())
    assert info.bits == bits
    assert info.weak is (bits < 2048)
    if bits == 1024:
        assert info.warnings == ("1024-bit key: 2048 bits or more recommended",)
    else:
        assert info.warnings == ()


def test_all_formats_give_the_same_normalized_key(key2048: rsa.RSAPrivateKey) -> None:
    pub = key2048.public_key()
    texts = [
        pub.public_bytes(PEM, SPKI).decode(),
        pub.public_bytes(PEM, PKCS1).decode(),
        self_signed_cert(key2048).public_bytes(PEM).decode(),
        base64.b64encode(pub.public_bytes(DER, SPKI)).decode(),
        base64.b64encode(pub.public_bytes(DER, PKCS1)).decode(),
    ]
    infos = [parse_public_key(t) for t in texts]
    assert [i.format for i in infos] == list(keys.FORMATS)
    assert len({(i.base64_der, i.fingerprint, i.pem) for i in infos}) == 1


def test_describe_and_fingerprint_of(key2048: rsa.RSAPrivateKey) -> None:
    b64 = base64.b64encode(spki_der(key2048)).decode()
    assert isinstance(describe(b64), PublicKeyInfo)
    assert describe(b64) is describe(b64)  # cached
    assert fingerprint_of(b64) == expected_fingerprint(spki_der(key2048))
    with pytest.raises(ValidationError):
        fingerprint_of("not a key")


# --- rejections -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \r\n\t "])
def test_empty(text: str) -> None:
    message = rejection(text)
    assert "no public key" in message and "paste" in message


def test_field_name_is_used() -> None:
    with pytest.raises(ValidationError) as info:
        parse_public_key("", field="publicKey")
    assert info.value.field == "publicKey"


def test_private_keys_are_refused_without_echoing_them(key2048: rsa.RSAPrivateKey) -> None:
    fmt = serialization.PrivateFormat
    pastes = [
        key2048.private_bytes(PEM, fmt.PKCS8, serialization.NoEncryption()).decode(),
        key2048.private_bytes(PEM, fmt.TraditionalOpenSSL, serialization.NoEncryption()).decode(),
        key2048.private_bytes(
            PEM, fmt.PKCS8, serialization.BestAvailableEncryption(b"pw")
        ).decode(),
        key2048.private_bytes(PEM, fmt.OpenSSH, serialization.NoEncryption()).decode(),
        base64.b64encode(
            key2048.private_bytes(DER, fmt.PKCS8, serialization.NoEncryption())
        ).decode(),
    ]
    assert "BEGIN ENCRYPTED PRIVATE KEY" in pastes[2]
    assert "BEGIN OPENSSH PRIVATE KEY" in pastes[3]
    for pasted in pastes:
        message = rejection(pasted)
        assert "that is a private key" in message
        assert "paste the public key" in message


def test_openssh_public_key_line(key2048: rsa.RSAPrivateKey) -> None:
    line = key2048.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode() + " admin@host"
    message = rejection(line)
    assert "openssh" in message
    assert "ssh-keygen -e -m pkcs8 -f key.pub" in message
    assert_no_material(message, line.split()[1])


def test_openssh_ed25519_line_says_rsa_is_needed() -> None:
    line = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    message = rejection(line)
    assert "rsa" in message and "ed25519" in message


@pytest.mark.parametrize("kind", ["ec", "ed25519"])
def test_not_rsa(kind: str) -> None:
    private = ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else (
        ed25519.Ed25519PrivateKey.generate()
    )
    public = private.public_key()
    for text in (
        public.public_bytes(PEM, SPKI).decode(),
        base64.b64encode(public.public_bytes(DER, SPKI)).decode(),
    ):
        message = rejection(text)
        assert "oauth 1.0a rsa-sha1 needs an rsa" in message
        assert ("ec (secp256r1)" if kind == "ec" else "ed25519") in message


def test_non_rsa_certificate() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec.example.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(private.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    assert "needs an rsa" in rejection(cert.public_bytes(PEM).decode())


def test_rsa_smaller_than_1024_bits_is_refused() -> None:
    small = rsa.RSAPublicNumbers(65537, (1 << 511) | 0x3F1).public_key()
    for text in (
        small.public_bytes(PEM, SPKI).decode(),
        base64.b64encode(small.public_bytes(DER, SPKI)).decode(),
    ):
        message = rejection(text)
        assert "512 bits" in message and "at least 1024" in message


@pytest.mark.parametrize(
    "text",
    ["%%% not base64 %%%", "MIIB!!!!", "AAAA", "A", "héllo wörld"],
)
def test_garbage(text: str) -> None:
    message = rejection(text)
    assert "base64" in message or "public key" in message


def test_truncated_pem_and_missing_end(key2048: rsa.RSAPrivateKey) -> None:
    pem = key2048.public_key().public_bytes(PEM, SPKI).decode()
    lines = pem.splitlines()
    assert "incomplete" in rejection("\n".join(lines[:-1]))
    truncated = "\n".join([lines[0], *lines[1:3], lines[-1]])
    assert "copied" in rejection(truncated)


def test_other_pem_labels() -> None:
    assert "not a public key" in rejection("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n"
                                           "-----END EC PARAMETERS-----")
    assert "signing request" in rejection("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                                          "-----END CERTIFICATE REQUEST-----")


def test_xml_pasted_instead_of_key() -> None:
    assert "xml" in rejection("<consumer><key>x</key></consumer>")


def test_too_large() -> None:
    message = rejection("A" * (64 * 1024 + 1))
    assert "too large" in message and "64 kib" in message
    assert "too large" in rejection(b"A" * (64 * 1024 + 1))


def test_bytes_input(key2048: rsa.RSAPrivateKey) -> None:
    assert parse_public_key(key2048.public_key().public_bytes(PEM, SPKI)).bits == 2048
    assert "not text" in rejection(b"\xff\xfe\x00")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300),
    st.binary(max_size=400).map(lambda b: base64.b64encode(b).decode()),
    st.binary(max_size=300).map(
        lambda b: "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(b).decode()
        + "\n-----END PUBLIC KEY-----"
    ),
    st.binary(max_size=300).map(
        lambda b: "-----BEGIN CERTIFICATE-----\n" + base64.b64encode(b).decode()
        + "\n-----END CERTIFICATE-----"
    ),
))
def test_random_input_only_raises_validation_error(text: str | bytes) -> None:
    try:
        parse_public_key(text)
    except ValidationError as exc:
        assert exc.field == "public_key"


_MUTATE_KEY = rsa.generate_private_key(65537, 1024).public_key()  # noqa: S505 - small on purpose, speed


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([SPKI, PKCS1]), st.integers(0, 200), st.integers(0, 255),
       st.integers(0, 20))
def test_mutated_der_only_raises_validation_error(
    fmt: serialization.PublicFormat, position: int, value: int, cut: int
) -> None:
    der = bytearray(_MUTATE_KEY.public_bytes(DER, fmt))
    der[position % len(der)] = value
    mutated = bytes(der[: len(der) - cut])
    for text in (base64.b64encode(mutated).decode(),
                 "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(mutated).decode()
                 + "\n-----END PUBLIC KEY-----"):
        try:
            info = parse_public_key(text)
        except ValidationError:
            continue
        assert info.bits >= 1024


# --- generation, private keys -----------------------------------------------------------


def test_generate_load_match_round_trip() -> None:
    private_pem, public_b64 = generate_key_pair()
    assert private_pem.startswith("-----BEGIN PRIVATE KEY-----")
    info = parse_public_key(public_b64)
    assert info.format == "base64 DER SPKI" and info.bits == 2048
    assert info.base64_der == public_b64
    key = load_private_key(private_pem)
    assert key.key_size == 2048
    assert load_private_key(private_pem) is key  # cached
    assert public_from_private(private_pem) == public_b64
    assert private_matches_public(private_pem, public_b64)
    assert private_matches_public(private_pem, info.pem)  # any accepted format
    _, other_public = generate_key_pair()
    assert not private_matches_public(private_pem, other_public)
    assert not private_matches_public(private_pem, "garbage")


def test_generate_3072() -> None:
    _, public_b64 = generate_key_pair(3072)
    assert describe(public_b64).bits == 3072


@pytest.mark.parametrize("bits", [512, 1024, 2047])
def test_generate_refuses_small_keys(bits: int) -> None:
    with pytest.raises(ValidationError) as info:
        generate_key_pair(bits)
    assert info.value.field == "bits"
    assert "2048" in str(info.value)


def test_load_private_key_pkcs1_and_errors(key2048: rsa.RSAPrivateKey) -> None:
    fmt = serialization.PrivateFormat
    traditional = key2048.private_bytes(
        PEM, fmt.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    assert load_private_key(traditional).key_size == 2048
    encrypted = key2048.private_bytes(
        PEM, fmt.PKCS8, serialization.BestAvailableEncryption(b"pw")
    ).decode()
    for bad, words in [("", "no private key"), ("junk", "could not be read"),
                       (encrypted, "encrypted")]:
        with pytest.raises(ValidationError) as info:
            load_private_key(bad)
        assert info.value.field == "private_key"
        assert words in str(info.value).lower()
        assert_no_material(str(info.value), bad)
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        PEM, fmt.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(ValidationError, match="not RSA"):
        load_private_key(ec_pem)
