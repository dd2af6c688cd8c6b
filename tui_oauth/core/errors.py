"""Typed errors raised by the core.

Every error carries a message a person can act on: what was wrong and what to
do.  Validation errors also carry the field they are about, so a form can show
the message next to the field and a CLI can name the flag.
"""

from __future__ import annotations

from dataclasses import dataclass


class TuiOAuthError(Exception):
    """Base of every error the core raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} {self.hint}"
        return self.message


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class ValidationError(TuiOAuthError):
    """One or more fields are wrong.  ``errors`` lists each with its message."""

    def __init__(self, errors: list[FieldError] | FieldError | str, message: str | None = None,
                 *, field: str | None = None) -> None:
        if isinstance(errors, str):
            errors = [FieldError(field or "", errors)]
        elif isinstance(errors, FieldError):
            errors = [errors]
        self.errors: list[FieldError] = list(errors)
        if message is None:
            message = "; ".join(
                f"{e.field}: {e.message}" if e.field else e.message for e in self.errors
            )
        super().__init__(message)

    @property
    def field(self) -> str | None:
        return self.errors[0].field if self.errors else None

    def for_field(self, field: str) -> str | None:
        for e in self.errors:
            if e.field == field:
                return e.message
        return None


class NotFoundError(TuiOAuthError):
    """The thing asked for does not exist."""


class ConflictError(ValidationError):
    """A unique value is taken (a consumer key, a provider name)."""


class FetchError(ValidationError):
    """Fetching or reading a remote document failed (consumer-info by URL)."""

    def __init__(self, message: str, *, field: str = "url") -> None:
        super().__init__([FieldError(field, message)], message)


class SecretStoreError(TuiOAuthError):
    """The OS keyring is missing, weak, locked, hung or failed."""


class StoreError(TuiOAuthError):
    """The database cannot be opened, migrated or written."""


class ReadOnlyError(TuiOAuthError):
    """A change was asked for on a store opened read-only."""


class StaleError(TuiOAuthError):
    """The record changed elsewhere since the caller read it (optimistic check failed).

    Raised instead of saving over someone else's change; the front door offers
    to reload.  ``current`` is the record as it is now.
    """

    def __init__(self, message: str, *, current: object = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.current = current


class StoreGoneError(StoreError):
    """The store this process opened was removed or replaced under it."""


class NoStoreError(StoreError):
    """There is no store where one was asked for (and none is made unasked)."""


class ProviderError(TuiOAuthError):
    """Talking to a service provider (the consumer side) failed.

    ``problem``/``advice``: the provider's ``oauth_problem`` and
    ``oauth_problem_advice`` when it sent them; ``status``: its HTTP status;
    ``base_string``: for ``signature_invalid``, the signature base string we
    signed (it holds no secret); ``skew``: for ``timestamp_refused``, the
    provider's clock minus ours in seconds, from its ``Date`` header.
    """

    def __init__(self, message: str, *, hint: str | None = None, problem: str | None = None,
                 advice: str | None = None, status: int | None = None,
                 base_string: str | None = None, skew: float | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problem = problem
        self.advice = advice
        self.status = status
        self.base_string = base_string
        self.skew = skew


class ProviderUnreachableError(ProviderError):
    """No answer: the address was refused, the connection failed, or the time ran out."""


class ProviderTimeoutError(ProviderUnreachableError):
    """The provider did not answer in full within the time limit."""


class ProviderResponseError(ProviderError):
    """The provider answered, but not with what the protocol expects (status, fields, size)."""


class ProviderProblemError(ProviderError):
    """The provider refused with an ``oauth_problem``."""
