"""The tables.  Secrets never live here: rows say *whether* a secret exists
(``has_shared_secret``) and name its keyring item (``uid``), nothing more.

Every change to this file needs an Alembic migration under
``core/migrations/versions`` (tests/test_migrations.py compares the two).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from tui_oauth.core.timeutil import UTCDateTime, utcnow

# Signature methods, as OAuth 1.0a spells them.
RSA_SHA1 = "RSA-SHA1"
HMAC_SHA1 = "HMAC-SHA1"
PLAINTEXT = "PLAINTEXT"
CONSUMER_SIGNATURE_METHODS = (RSA_SHA1, HMAC_SHA1)
PROVIDER_SIGNATURE_METHODS = (HMAC_SHA1, RSA_SHA1, PLAINTEXT)

# Named constraints, so that Alembic's batch mode on SQLite can find them again.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# The vocabulary the layers share (the provider engine, the services, transfer, the
# front doors). Each is a StrEnum: a member *is* its value (a str), so the database,
# the keyring, JSON and f-strings see the same plain strings as before.


class Vocabulary(StrEnum):
    """A StrEnum whose repr is its value's too ('pending', not <TokenState.PENDING:
    'pending'>): messages that quote a word with !r read as they did."""

    def __repr__(self) -> str:
        return str.__repr__(self)


class TokenType(Vocabulary):
    """``tokens.type``."""

    REQUEST = "request"
    ACCESS = "access"


class TokenState(Vocabulary):
    """``tokens.state``; EXPIRED is never stored (a live token past its expiry)."""

    PENDING = "pending"  # a request token, not yet authorized
    AUTHORIZED = "authorized"  # a request token the user authorized
    DENIED = "denied"  # a request token the user denied
    USED = "used"  # a request token exchanged for an access token
    ACTIVE = "active"  # an access token
    REVOKED = "revoked"
    EXPIRED = "expired"


class KeyringItem(Vocabulary):
    """The keyring items with fixed names (the others are per row: secret_item)."""

    DATA_KEY = "provider/data-key"  # encrypts the token secrets in the database
    #: While the data key is being rotated: the old key, still read (never written with).
    PREVIOUS_DATA_KEY = "provider/data-key-previous"


class SecretKind(Vocabulary):
    """What a per-row keyring item holds: ``<table>/<uid>/<kind>``."""

    SHARED_SECRET = "shared-secret"  # noqa: S105 (an item name, not a password)
    PREVIOUS_SHARED_SECRET = "previous-shared-secret"  # noqa: S105
    PRIVATE_KEY = "private-key"



class StoreMeta(SQLModel, table=True):
    """Key-value facts about this store: its id (the keyring namespace), settings."""

    __tablename__ = "store_meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=1024)


class Consumer(SQLModel, table=True):
    """An application allowed to consume our resources."""

    __tablename__ = "consumers"
    # The list's sort orders (a window skips ids along these; ties by key).  The id
    # ends each, so that PostgreSQL skips along the index alone (index-only scans).
    __table_args__ = (
        Index("ix_consumers_name_lower", text("lower(name)"), "key", "id"),
        Index("ix_consumers_signature_key", "signature_method", "key", "id"),
        Index("ix_consumers_created_key", "created_at", "key", "id"),
        # The provider's refresh reads the rows changed since its last one.
        Index("ix_consumers_updated_at", "updated_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(max_length=36, unique=True, description="names the keyring item")
    key: str = Field(max_length=255, unique=True)
    name: str = Field(max_length=255)
    description: str | None = Field(default=None, sa_type=Text)
    public_key: str | None = Field(default=None, sa_type=Text, description="base64 DER SPKI")
    has_shared_secret: bool = Field(default=False)
    #: A rotated shared secret's old value stays in the keyring (and is accepted) until
    #: then; None: no previous secret (consumers rotate-secret --overlap).
    previous_secret_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    callback_url: str | None = Field(default=None, max_length=2048)
    signature_method: str = Field(default=RSA_SHA1, max_length=16)
    allow_plaintext: bool = Field(default=False)
    three_lo_allowed: bool = Field(default=True)
    two_lo_allowed: bool = Field(default=False)
    two_lo_execute_as: str | None = Field(default=None, max_length=255)
    two_lo_impersonation: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ConsumerInfo(SQLModel, table=True):
    """Who we are when we consume: one row, id 1."""

    __tablename__ = "consumer_info"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=255)
    name: str = Field(max_length=255)
    description: str | None = Field(default=None, sa_type=Text)
    callback_url: str | None = Field(default=None, max_length=2048)
    public_key: str = Field(sa_type=Text, description="base64 DER SPKI")
    key_uid: str = Field(max_length=36, description="names the private key's keyring item")
    key_created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    #: After `info rotate-key --overlap`: the old public key, still published in the
    #: consumer-info document (<previousPublicKey>) until ``previous_key_until``.
    previous_public_key: str | None = Field(default=None, sa_type=Text)
    previous_key_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ServiceProvider(SQLModel, table=True):
    """A third party whose resources we consume.  Names are unique without regard to
    case (an index on lower(name))."""

    __tablename__ = "service_providers"
    __table_args__ = (
        Index("uq_service_providers_name_lower", text("lower(name)"), unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(max_length=36, unique=True)
    name: str = Field(max_length=255, unique=True)
    description: str | None = Field(default=None, sa_type=Text)
    consumer_key: str = Field(max_length=255)
    has_shared_secret: bool = Field(default=False)
    signature_method: str = Field(default=HMAC_SHA1, max_length=16)
    request_token_url: str = Field(max_length=2048)
    authorization_url: str = Field(max_length=2048)
    access_token_url: str = Field(max_length=2048)
    allow_private: bool = Field(default=False, description="may be on loopback/intranet")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Token(SQLModel, table=True):
    """A request or access token that we, as provider, issued to a consumer.

    The token secret is kept encrypted (``secret_enc``) under a data key held in
    the keyring, never in plain text.
    """

    __tablename__ = "tokens"
    __table_args__ = (
        Index("ix_tokens_consumer_type", "consumer_id", "type"),
        Index("ix_tokens_consumer_id", "consumer_id", "id"),  # a consumer's tokens, newest first
        # `tokens list --state / --type / --user`, newest first
        Index("ix_tokens_state_id", "state", "id"),
        Index("ix_tokens_type_id", "type", "id"),
        Index("ix_tokens_user_id", "user", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(max_length=255, unique=True)
    secret_enc: bytes | None = Field(default=None, sa_type=LargeBinary)
    consumer_id: int = Field(
        sa_column=Column(Integer, ForeignKey("consumers.id", ondelete="CASCADE"), nullable=False)
    )
    type: str = Field(max_length=16)  # a TokenType (read back as a plain str)
    state: str = Field(default=TokenState.PENDING, max_length=16)  # a TokenState
    user: str | None = Field(default=None, max_length=255)
    callback_url: str | None = Field(default=None, max_length=2048)
    verifier: str | None = Field(default=None, max_length=255)
    session_handle: str | None = Field(default=None, max_length=255, unique=True)
    issued_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    authorization_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class HeldToken(SQLModel, table=True):
    """A token we hold from a service provider (the consumer side of the dance)."""

    __tablename__ = "held_tokens"

    id: int | None = Field(default=None, primary_key=True)
    provider_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("service_providers.id", ondelete="CASCADE"), nullable=False,
            index=True,
        )
    )
    type: str = Field(max_length=16)
    user: str | None = Field(default=None, max_length=255)
    token: str = Field(max_length=1024)
    secret_enc: bytes | None = Field(default=None, sa_type=LargeBinary)
    session_handle: str | None = Field(default=None, max_length=1024)
    issued_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    authorization_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Nonce(SQLModel, table=True):
    """A nonce seen once per (consumer, token, timestamp); pruned past the window."""

    __tablename__ = "nonces"
    __table_args__ = (
        UniqueConstraint("consumer_key", "token", "timestamp", "nonce", name="uq_nonces"),
    )

    id: int | None = Field(default=None, primary_key=True)
    consumer_key: str = Field(max_length=255)
    token: str = Field(default="", max_length=255)
    timestamp: int = Field(index=True)
    nonce: str = Field(max_length=255)


class AuditEntry(SQLModel, table=True):
    """One change: when, who, what, before and after (secrets redacted). Append-only."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_target", "target_type", "target"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=255)
    client_addr: str | None = Field(default=None, max_length=255)
    action: str = Field(max_length=64, index=True)
    target_type: str = Field(max_length=32)
    target: str = Field(max_length=255)
    before: str | None = Field(default=None, sa_type=Text, description="JSON")
    after: str | None = Field(default=None, sa_type=Text, description="JSON")
    detail: str | None = Field(default=None, sa_type=Text)


class Refusal(SQLModel, table=True):
    """A signed request the provider refused (the refusal log): what it sent and what
    the server computed, never a secret.  Bounded by age and by rows per ``bucket``
    (the consumer key when it names a configured consumer, else "": all unknown keys
    share one bucket, so a flood of junk keys is capped like one consumer)."""

    __tablename__ = "refusals"
    __table_args__ = (Index("ix_refusals_bucket_id", "bucket", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    bucket: str = Field(default="", max_length=255)
    consumer_key: str = Field(default="", max_length=255, description="as sent, cut")
    token_prefix: str = Field(default="", max_length=16, description="8 characters and ...")
    problem: str = Field(max_length=64, description="the real cause")
    answered: str = Field(max_length=64, description="the oauth_problem the client got")
    method: str = Field(default="", max_length=16)
    url: str = Field(default="", sa_type=Text, description="the URL of the base string")
    seen_url: str = Field(default="", sa_type=Text, description="scheme://Host/path received")
    client_addr: str = Field(default="", max_length=255)
    signature_method: str = Field(default="", max_length=32)
    timestamp: int | None = Field(default=None, sa_type=BigInteger)
    offset: int | None = Field(default=None, sa_type=BigInteger,
                               description="client timestamp - our clock, seconds")
    base_string: str | None = Field(default=None, sa_type=Text)
    truncated: bool = Field(default=False)
    #: The oauth_signature sent (signature_invalid only; never for PLAINTEXT, where
    #: it is the secret itself).
    signature: str | None = Field(default=None, sa_type=Text)
    #: What the server said beyond the problem (its oauth_problem_advice, before
    #: problem_detail=minimal hid it): "Missing: oauth_nonce.", ...
    detail: str | None = Field(default=None, max_length=512)
    #: scheme://host:port/path of the address this server listens on (ASGI "server"),
    #: as the request reached it: what a client behind a Host-keeping proxy may sign.
    listen_url: str = Field(default="", sa_type=Text)
    #: signature_invalid: what the debugger found when the record was written, with the
    #: server's keys ("internal_url: The consumer signed ...", "none: ..."), or None
    #: (not diagnosed).  Never a secret.
    finding: str | None = Field(default=None, max_length=512)


class ConsumerClock(SQLModel, table=True):
    """A consumer's clock against ours: the median offset (seconds, negative: behind)
    of its recent timestamps, accepted and refused, as the server last saw them."""

    __tablename__ = "consumer_clock"

    consumer_key: str = Field(primary_key=True, max_length=255)
    median_offset: int = Field(sa_type=BigInteger)
    samples: int = Field(default=0)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def secret_item(kind: str, uid: str, what: str) -> str:
    """The keyring item name of a secret: ``consumer/<uid>/shared-secret``."""
    return f"{kind}/{uid}/{what}"


def consumer_secret_item(consumer: Consumer) -> str:
    return secret_item("consumer", consumer.uid, SecretKind.SHARED_SECRET)


def previous_secret_item(consumer: Consumer) -> str:
    """The keyring item of a rotated shared secret's old value, kept for its overlap."""
    return secret_item("consumer", consumer.uid, SecretKind.PREVIOUS_SHARED_SECRET)


def provider_secret_item(provider: ServiceProvider) -> str:
    return secret_item("provider", provider.uid, SecretKind.SHARED_SECRET)


def private_key_item(info: ConsumerInfo) -> str:
    return secret_item("consumer-info", info.key_uid, SecretKind.PRIVATE_KEY)
