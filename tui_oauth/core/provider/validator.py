"""The oauthlib RequestValidator over the store.

What verification needs is in memory or in the database, never read from the
keyring per request: consumers' parsed RSA keys and shared secrets come from a
:class:`~tui_oauth.core.provider.consumers.ConsumerCache` (the consumer row is
still read per request, so a removed consumer is refused at once), token
secrets are decrypted from ``tokens.secret_enc`` with the in-memory data key.

Unknown consumers and tokens go through the same work as known ones: the same
query, a dummy RSA key or secret, a dummy ciphertext decrypted with the same
key, so that timing does not tell which keys exist.

Validation state is kept on the oauthlib request object (``tui_*``
attributes); the engine reads it afterwards to name the right ``oauth_problem``.
The nonce is only *recorded* here and stored by the engine once the signature
is valid: an unauthenticated request never writes into the nonce store.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any, Protocol

from oauthlib.oauth1 import RequestValidator
from sqlalchemy import select
from sqlmodel import col

from tui_oauth.core.models import HMAC_SHA1, PLAINTEXT, RSA_SHA1, Token, TokenType
from tui_oauth.core.provider.consumers import TOKEN_COLUMNS
from tui_oauth.core.timeutil import utcnow

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from tui_oauth.core.provider.consumers import ConsumerCache
    from tui_oauth.core.provider.crypto import DataKey
    from tui_oauth.core.provider.settings import ProviderSettings

#: oauth_callback absent: use the consumer's stored callback, if any.
STORED_CALLBACK = "\x00stored-callback"
MAX_LENGTH = 255
DUMMY_CLIENT = "\x00dummy-client"
DUMMY_REQUEST_TOKEN = "\x00dummy-request-token"  # noqa: S105 (not a secret)
DUMMY_ACCESS_TOKEN = "\x00dummy-access-token"  # noqa: S105 (not a secret)

def token_row(conn: Any, token: str, kind: str, consumer: Any) -> Any:
    """The token row (a plain row) when it is ``consumer``'s and of ``kind``, else None."""
    row = conn.execute(select(*TOKEN_COLUMNS).where(col(Token.token) == token)).first()
    ok = (row is not None and consumer is not None and row.type == kind
          and row.consumer_id == consumer.id and row.secret_enc is not None)
    return row if ok else None


def _printable_token(value: Any, low: int = 1, high: int = MAX_LENGTH) -> bool:
    """Keys, tokens, nonces, verifiers: printable, no white space, bounded.

    oauthlib's defaults (letters and digits, 20-30 characters) refuse real
    keys such as ``jira:6f1c...`` and ``www.google.com`` and 32-character nonces.
    """
    return (isinstance(value, str) and low <= len(value) <= high and value.isprintable()
            and not any(c.isspace() for c in value))


def callback_ok(uri: str | None) -> bool:
    if uri == "oob":
        return True
    if not isinstance(uri, str) or len(uri) > 2048 or not uri.isprintable():
        return False
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


class ValidationSource(Protocol):
    """What the validator reads, and all it may: the engine provides it.  Read each
    time, not copied: the data key (and its dummy blob) change when it is rotated."""

    @property
    def public_https(self) -> bool: ...
    @property
    def settings(self) -> ProviderSettings: ...
    @property
    def consumers(self) -> ConsumerCache: ...
    @property
    def data_key(self) -> DataKey: ...
    @property
    def dummy_secret(self) -> str: ...
    @property
    def dummy_token_blob(self) -> tuple[bytes, str]: ...
    def conn(self) -> Connection: ...


class StoreRequestValidator(RequestValidator):  # type: ignore[misc]  # oauthlib is untyped
    def __init__(self, engine: ValidationSource) -> None:
        super().__init__()
        self.engine = engine

    # Policy -------------------------------------------------------------------

    @property
    def allowed_signature_methods(self) -> tuple[str, ...]:
        # Set explicitly: oauthlib's default also has HMAC/RSA-SHA256/512 and PLAINTEXT.
        if self.engine.public_https:
            return (RSA_SHA1, HMAC_SHA1, PLAINTEXT)
        return (RSA_SHA1, HMAC_SHA1)

    @property
    def enforce_ssl(self) -> bool:
        # oauthlib only looks at the URI it is given, which is the *public* URL.
        return self.engine.public_https

    @property
    def timestamp_lifetime(self) -> int:
        return self.engine.settings.timestamp_window

    @property
    def safe_characters(self) -> set[str]:  # not used by our check_* methods
        return {chr(c) for c in range(0x21, 0x7F)}

    @property
    def client_key_length(self) -> tuple[int, int]:
        return 1, MAX_LENGTH

    @property
    def request_token_length(self) -> tuple[int, int]:
        return 1, MAX_LENGTH

    @property
    def access_token_length(self) -> tuple[int, int]:
        return 1, MAX_LENGTH

    @property
    def nonce_length(self) -> tuple[int, int]:
        return 1, MAX_LENGTH

    @property
    def verifier_length(self) -> tuple[int, int]:
        return 1, MAX_LENGTH

    def check_client_key(self, client_key: str) -> bool:
        return _printable_token(client_key)

    def check_request_token(self, request_token: str) -> bool:
        return _printable_token(request_token)

    def check_access_token(self, request_token: str) -> bool:
        return _printable_token(request_token)

    def check_nonce(self, nonce: str) -> bool:
        return _printable_token(nonce)

    def check_verifier(self, verifier: str) -> bool:
        return _printable_token(verifier)

    def check_realms(self, realms: Any) -> bool:
        return True  # realms are not used to scope access here

    # Dummies --------------------------------------------------------------------

    @property
    def dummy_client(self) -> str:
        return DUMMY_CLIENT

    @property
    def dummy_request_token(self) -> str:
        return DUMMY_REQUEST_TOKEN

    @property
    def dummy_access_token(self) -> str:
        return DUMMY_ACCESS_TOKEN

    # Consumers ------------------------------------------------------------------

    def validate_client_key(self, client_key: str, request: Any) -> bool:
        entry, known = self.engine.consumers.lookup(self.engine.conn(), client_key)
        request.tui_consumer = entry
        return known

    def get_client_secret(self, client_key: str, request: Any) -> str:
        return str(request.tui_consumer.secret)

    def get_client_secrets(self, client_key: str, request: Any) -> tuple[str, ...]:
        """The secrets a signature may use: the current one, and a rotated secret's
        old value during its overlap."""
        return tuple(request.tui_consumer.shared_secrets(utcnow()))

    def get_rsa_key(self, client_key: str, request: Any) -> Any:
        # A parsed key object: PyJWT's prepare_key passes it through, no PEM parsing.
        return request.tui_consumer.rsa_key

    # Tokens ---------------------------------------------------------------------

    def _token(self, token: str, kind: str, request: Any) -> bool:
        row = token_row(self.engine.conn(), token, kind, getattr(request, "tui_consumer", None))
        request.tui_token = row
        if row is not None:
            request.tui_token_blob, request.tui_token_aad = row.secret_enc, row.token
        else:
            request.tui_token_blob, request.tui_token_aad = self.engine.dummy_token_blob
        return row is not None

    def _token_secret(self, request: Any) -> str:
        if "tui_token_blob" not in vars(request):
            # A token where none was looked up (oauth_token sent to request-token): the
            # signature is checked against a dummy secret and fails, as for any unknown one.
            request.tui_token = None
            request.tui_token_blob, request.tui_token_aad = self.engine.dummy_token_blob
        secret = self.engine.data_key.decrypt(request.tui_token_blob, request.tui_token_aad)
        if secret is None:  # not decryptable: treat as unknown
            request.tui_token = None
            return self.engine.dummy_secret
        return secret

    def validate_request_token(self, client_key: str, token: str, request: Any) -> bool:
        return self._token(token, TokenType.REQUEST, request)

    def validate_access_token(self, client_key: str, token: str, request: Any) -> bool:
        # True for any access token of this consumer, whatever its state: the engine
        # names revoked or expired ones only once the signature proved the caller
        # holds the token secret (and session renewal accepts expired ones).
        return self._token(token, TokenType.ACCESS, request)

    def get_request_token_secret(self, client_key: str, token: str, request: Any) -> str:
        return self._token_secret(request)

    def get_access_token_secret(self, client_key: str, token: str, request: Any) -> str:
        return self._token_secret(request)

    def validate_verifier(self, client_key: str, token: str, verifier: str,
                          request: Any) -> bool:
        row = getattr(request, "tui_token", None)
        expected = row.verifier if row is not None and row.verifier else self.engine.dummy_secret
        return hmac.compare_digest(verifier.encode("utf-8"), expected.encode("utf-8")) \
            and row is not None

    def validate_timestamp_and_nonce(self, client_key: str, timestamp: str, nonce: str,
                                     request: Any, request_token: str | None = None,
                                     access_token: str | None = None) -> bool:
        # Recorded only; the engine stores it after the signature checked out.
        request.tui_nonce = (int(timestamp), nonce, request_token or access_token or "")
        return True

    # Callbacks and realms ---------------------------------------------------------

    def validate_redirect_uri(self, client_key: str, redirect_uri: str, request: Any) -> bool:
        if redirect_uri == STORED_CALLBACK:
            redirect_uri = request.tui_consumer.callback_url
        request.tui_callback = redirect_uri
        return callback_ok(redirect_uri)

    def validate_requested_realms(self, client_key: str, realms: Any, request: Any) -> bool:
        return True

    def validate_realms(self, client_key: str, token: str, request: Any, uri: Any = None,
                        realms: Any = None) -> bool:
        return True

    def get_default_realms(self, client_key: str, request: Any) -> list[str]:
        return []

    def get_realms(self, token: str, request: Any) -> list[str]:
        return []
