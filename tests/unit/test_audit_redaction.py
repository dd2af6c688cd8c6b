"""Which audited fields are secrets: by name, precisely (not every name with "private")."""

from __future__ import annotations

import pytest

from tui_oauth.core.audit import REDACTED, is_secret_field, redact
from tui_oauth.core.models import Consumer, ConsumerInfo, ServiceProvider

#: The models whose rows are audited (snapshot): none of their columns holds a secret
#: (secrets live in the keyring), so every one is recorded as it is.
AUDITED = (Consumer, ConsumerInfo, ServiceProvider)
#: Keys of the dicts audited without a row (settings, tokens, held tokens, imports).
DICT_KEYS = ("value", "state", "user", "expires_at", "renewable", "add", "change", "skip",
             "same")


@pytest.mark.parametrize("name", sorted({f for m in AUDITED for f in m.model_fields}
                                        | set(DICT_KEYS)))
def test_no_audited_field_is_hidden(name: str) -> None:
    assert not is_secret_field(name)
    assert redact({name: True}) == {name: True}


@pytest.mark.parametrize("name", [
    "secret", "shared_secret", "SHARED_SECRET", "oauth_token_secret", "secret_enc",
    "token_secret_enc", "password", "db_password", "passphrase", "key_passphrase",
    "verifier", "oauth_verifier", "private_key", "private_key_pem", "session_handle",
])
def test_secret_fields_are_redacted(name: str) -> None:
    assert is_secret_field(name)
    assert redact({name: "s3cret"}) == {name: REDACTED}
    assert redact({name: None}) == {name: None}  # "there is none" is no secret


@pytest.mark.parametrize("name", ["allow_private", "has_shared_secret",
                                  "previous_secret_until"])
def test_flags_and_dates_about_secrets_are_not_secrets(name: str) -> None:
    assert not is_secret_field(name)
