"""Service providers: third parties whose resources we consume."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from tui_oauth.core.errors import ConflictError, FieldError, NotFoundError
from tui_oauth.core.models import (
    HMAC_SHA1,
    PLAINTEXT,
    PROVIDER_SIGNATURE_METHODS,
    RSA_SHA1,
    HeldToken,
    ServiceProvider,
    provider_secret_item,
)
from tui_oauth.core.registry import services
from tui_oauth.core.services import (
    UNSET,
    check_edit,
    check_fresh,
    editable_changes,
    locked,
    remove_with,
    save_edit,
    save_new,
)
from tui_oauth.core.services.windows import (
    any_contains,
    count_rows,
    counts_by,
    in_order,
    position_of,
    window_ids,
)
from tui_oauth.core.validation import MAX_DESCRIPTION, MAX_KEY, MAX_NAME, Checker

if TYPE_CHECKING:
    from tui_oauth.core.store import Store, UnitOfWork

URL_FIELDS = {
    "request_token_url": "Request token URL",
    "authorization_url": "Authorization URL",
    "access_token_url": "Access token URL",
}
EDITABLE = ("name", "description", "consumer_key", "signature_method", *URL_FIELDS,
            "allow_private")


@dataclass(frozen=True)
class ProviderSummary:
    name: str
    consumer_key: str
    signature_method: str
    has_shared_secret: bool
    request_token_url: str
    token_count: int
    created_at: datetime


def named(name: str) -> Any:
    """The condition for the provider called ``name``: names are unique without regard
    to case (an index on lower(name) serves it)."""
    return func.lower(ServiceProvider.name) == name.lower()


def plain_http(urls: Mapping[str, str | None]) -> str | None:
    """'Request token URL uses http' (or 'A, B use http') for the http URLs, or None."""
    labels = [label for f, label in URL_FIELDS.items()
              if (urls.get(f) or "").strip().lower().startswith("http://")]
    if not labels:
        return None
    return f"{', '.join(labels)} {'uses' if len(labels) == 1 else 'use'} http"


def http_warning(urls: Mapping[str, str | None]) -> str | None:
    plain = plain_http(urls)
    if plain is None:
        return None
    return f"{plain}, not https: tokens and signatures cross the network unencrypted."


def provider_warnings(provider: ServiceProvider) -> list[str]:
    """Things an admin should know that do not stop the save."""
    warning = http_warning({f: getattr(provider, f) for f in URL_FIELDS})
    return [warning] if warning else []


class ServiceProviderService:
    def __init__(self, store: Store) -> None:
        self.store = store

    # Windows: what the console's list asks for as it scrolls (see services/windows.py)

    ORDER = (func.lower(ServiceProvider.name),)  # unique: no tie to break

    def count(self, filter: str | None = None) -> int:
        with self.store.session() as s:
            return count_rows(s, ServiceProvider, self._conditions(filter))

    def window(self, filter: str | None = None, *, start: int = 0, size: int = 100,
               total: int | None = None) -> list[ProviderSummary]:
        """Rows ``start`` .. ``start + size - 1`` of the list by name (ignoring case)."""
        with self.store.session() as s:
            ids = window_ids(s, ServiceProvider.id, self._conditions(filter), self.ORDER,
                             descending=False, start=start, size=size, total=total)
            if not ids:
                return []
            rows = s.exec(select(ServiceProvider).where(col(ServiceProvider.id).in_(ids))).all()
            counts = counts_by(s, col(HeldToken.provider_id), ids)
        return [ProviderSummary(p.name, p.consumer_key, p.signature_method, p.has_shared_secret,
                                p.request_token_url, counts.get(p.id or 0, 0), p.created_at)
                for p in in_order(rows, ids, lambda p: p.id)]

    def position(self, name: str, filter: str | None = None) -> int | None:
        with self.store.session() as s:
            return position_of(s, ServiceProvider, self._conditions(filter), self.ORDER,
                               named(name), descending=False)

    @staticmethod
    def _conditions(filter: str | None) -> list[Any]:
        return any_contains([ServiceProvider.name, ServiceProvider.consumer_key,
                             ServiceProvider.description], filter)

    def list(self, filter: str | None = None) -> list[ProviderSummary]:
        counts = (
            select(HeldToken.provider_id, func.count().label("n"))
            .group_by(col(HeldToken.provider_id))
            .subquery()
        )
        stmt = select(ServiceProvider, func.coalesce(counts.c.n, 0)).outerjoin(
            counts, counts.c.provider_id == ServiceProvider.id
        )
        stmt = stmt.where(*self._conditions(filter))
        stmt = stmt.order_by(func.lower(ServiceProvider.name))
        with self.store.session() as s:
            rows = s.exec(stmt).all()
        return [
            ProviderSummary(p.name, p.consumer_key, p.signature_method, p.has_shared_secret,
                            p.request_token_url, int(n), p.created_at)
            for p, n in rows
        ]

    def get(self, name: str) -> ServiceProvider:
        """The provider named ``name``; names are unique without regard to case, so
        ``example`` finds ``Example``."""
        with self.store.session() as s:
            row = s.exec(select(ServiceProvider).where(named(name))).first()
        if row is None:
            raise self._missing(name)
        return row

    @staticmethod
    def _missing(name: str) -> NotFoundError:
        return NotFoundError(f"No service provider named {name!r}.",
                             hint="`tui-oauth providers list` shows them.")

    def _locked(self, uow: UnitOfWork, name: str) -> ServiceProvider:
        """The provider ``name`` read and locked for a change in ``uow`` (NotFoundError)."""
        row: ServiceProvider = locked(uow, ServiceProvider, named(name),
                                      lambda: self._missing(name))
        return row

    def token_count(self, name: str) -> int:
        provider = self.get(name)
        with self.store.session() as s:
            return int(s.exec(select(func.count()).select_from(HeldToken)
                              .where(HeldToken.provider_id == provider.id)).one())

    def shared_secret(self, name: str) -> str | None:
        """Read the shared secret from the keyring: only when revealed on purpose."""
        provider = self.get(name)
        if not provider.has_shared_secret:
            return None
        return self.store.secrets.get(provider_secret_item(provider))

    def record_reveal(self, name: str) -> None:
        """Note in the audit log that someone looked at the secret."""
        provider = self.get(name)
        with self.store.transaction() as uow:
            uow.audit("provider.reveal_secret", "service_provider", provider.name,
                      detail="shared secret revealed on purpose")

    def _clean(self, c: Checker, data: dict[str, Any], *, has_secret: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["name"] = c.text("name", data.get("name"), label="Name", max_len=MAX_NAME,
                             required=True)
        out["description"] = c.text("description", data.get("description"), label="Description",
                                    max_len=MAX_DESCRIPTION, multiline=True)
        out["consumer_key"] = c.identifier("consumer_key", data.get("consumer_key"),
                                           label="Consumer key", max_len=MAX_KEY)
        method = (data.get("signature_method") or HMAC_SHA1).strip().upper()
        out["signature_method"] = method
        for field, label in URL_FIELDS.items():
            out[field] = c.url(field, data.get(field), label=label, required=True)
        out["allow_private"] = bool(data.get("allow_private") or False)
        if method not in PROVIDER_SIGNATURE_METHODS:
            c.fail("signature_method", f"Signature method {method!r} is not one of "
                   f"{', '.join(PROVIDER_SIGNATURE_METHODS)}.")
        elif method in (HMAC_SHA1, PLAINTEXT) and not has_secret:
            c.fail("shared_secret", f"{method} needs the shared secret the provider gave you "
                   "(--secret-stdin or --secret-file).")
        if method == PLAINTEXT:
            plain = plain_http(out)
            if plain:
                c.fail("signature_method", "PLAINTEXT sends the secret as is, so it is only "
                       f"allowed with https URLs; {plain}. Use https or choose HMAC-SHA1.")
        return out

    def check_fields(self, data: dict[str, Any], *, has_secret: bool) -> dict[str, Any]:
        """Every field of a new provider, checked as :meth:`add` checks them (for an
        import); raises one ValidationError listing every problem."""
        c = Checker()
        fields = self._clean(c, data, has_secret=has_secret)
        c.raise_if_any()
        return fields

    def add(self, *, name: str, consumer_key: str, request_token_url: str,
            authorization_url: str, access_token_url: str, shared_secret: str | None = None,
            signature_method: str | None = None, description: str | None = None,
            allow_private: Any = False) -> ServiceProvider:
        c = Checker()
        secret = c.secret("shared_secret", shared_secret, label="Shared secret")
        fields = self._clean(c, dict(
            name=name, description=description, consumer_key=consumer_key,
            signature_method=signature_method, request_token_url=request_token_url,
            authorization_url=authorization_url, access_token_url=access_token_url,
            allow_private=allow_private,
        ), has_secret=shared_secret is not None)
        c.raise_if_any()
        if fields["signature_method"] == RSA_SHA1:
            services(self.store).consumer_info.get()  # our key pair must exist to sign with it
        provider = ServiceProvider(uid=str(uuid.uuid4()), has_shared_secret=secret is not None,
                                   **fields)
        try:
            with self.store.transaction() as uow:
                existing = uow.session.exec(select(ServiceProvider.name).where(
                    func.lower(ServiceProvider.name) == provider.name.lower())).first()
                if existing is not None:
                    raise self._taken(provider.name, existing)
                save_new(uow, provider, secret, item=provider_secret_item(provider),
                         action="provider.add", target_type="service_provider",
                         target=provider.name)
        except IntegrityError:
            raise self._taken(provider.name) from None
        return provider

    @staticmethod
    def _taken(name: str, existing: str | None = None) -> ConflictError:
        """``name`` is taken; ``existing`` is the stored name it clashes with (another
        case, e.g. 'Example' for 'example'), when known."""
        if existing is not None and existing != name:
            return ConflictError([FieldError(
                "name", f"A service provider named {existing!r} already exists, and "
                        f"names are unique without regard to case ({name!r} is the "
                        "same name); choose another name, or edit that provider.")])
        return ConflictError([FieldError(
            "name", f"A service provider named {name!r} already exists (names are "
                    "unique without regard to case); choose another name.")])

    def edit(self, name: str, /, *, shared_secret: Any = UNSET,
             expected_updated_at: datetime | None = None, **changes: Any) -> ServiceProvider:
        """Change the fields given, and only those, in one write transaction.

        ``shared_secret``: UNSET keeps, None/"" removes, a string replaces.
        ``expected_updated_at`` refuses to save over a change made since the caller
        read the provider (StaleError).
        """
        given = editable_changes(changes, EDITABLE)
        uses_rsa = str(given.get("signature_method") or "").strip().upper() == RSA_SHA1
        if uses_rsa:
            services(self.store).consumer_info.get()  # our key pair must exist to sign with it
        try:
            with self.store.transaction() as uow:
                row = self._locked(uow, name)
                check_fresh(row, expected_updated_at, f"Service provider {name!r}")
                fields, secret = check_edit(row, given, shared_secret, EDITABLE, self._clean)
                other = None if fields["name"] == row.name else uow.session.exec(
                    select(ServiceProvider.name).where(
                        func.lower(ServiceProvider.name) == fields["name"].lower(),
                        ServiceProvider.id != row.id)).first()
                if other is not None:
                    raise self._taken(fields["name"], other)
                save_edit(uow, row, {f: fields[f] for f in given}, secret,
                          item=provider_secret_item(row), action="provider.edit",
                          target_type="service_provider", target=fields["name"])
        except IntegrityError:
            raise self._taken(str(given.get("name", name))) from None
        return row

    def remove(self, name: str) -> int:
        """Remove a provider and the tokens we hold from it; returns that token count."""
        with self.store.transaction() as uow:
            row = self._locked(uow, name)
            return remove_with(uow, row, HeldToken, col(HeldToken.provider_id),
                               items=[provider_secret_item(row)] if row.has_shared_secret else [],
                               action="provider.remove", target_type="service_provider",
                               target=name, what="held token(s)")
