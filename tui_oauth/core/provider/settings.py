"""Provider settings, kept in ``store_meta`` as ``setting.<name>`` rows (seconds).

Every process reading the store sees the same values; the server reads them
when it starts (and ``tui-oauth settings set`` says to restart it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

from sqlmodel import col, select

from tui_oauth.core.errors import ValidationError
from tui_oauth.core.models import StoreMeta

if TYPE_CHECKING:
    from tui_oauth.core.store import Store

PREFIX = "setting."

#: name -> (default, minimum, maximum, description)
SPEC: dict[str, tuple[int, int, int, str]] = {
    "access_token_ttl": (7 * 86400, 60, 10 * 365 * 86400,
                         "access token lifetime (oauth_expires_in), seconds"),
    "authorization_ttl": (30 * 86400, 60, 10 * 365 * 86400,
                          "how long a session can be renewed without asking the user "
                          "(oauth_authorization_expires_in), seconds"),
    "request_token_ttl": (600, 30, 86400, "request token lifetime, seconds"),
    "timestamp_window": (300, 10, 3600, "accepted clock difference, seconds"),
}


@dataclass(frozen=True)
class ProviderSettings:
    access_token_ttl: int = SPEC["access_token_ttl"][0]
    authorization_ttl: int = SPEC["authorization_ttl"][0]
    request_token_ttl: int = SPEC["request_token_ttl"][0]
    timestamp_window: int = SPEC["timestamp_window"][0]

    @classmethod
    def load(cls, store: Store) -> ProviderSettings:
        with store.session() as s:
            rows = s.exec(select(StoreMeta).where(col(StoreMeta.key).startswith(PREFIX))).all()
        values: dict[str, int] = {}
        for row in rows:
            name = row.key[len(PREFIX):]
            if name in SPEC:
                try:
                    values[name] = check(name, row.value)
                except ValidationError:
                    continue  # a hand-edited bad value: keep the default
        return replace(cls(), **values)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def check(name: str, value: str | int) -> int:
    if name not in SPEC:
        raise ValidationError(f"Unknown setting {name!r}; known: {', '.join(SPEC)}.",
                              field="name")
    _default, low, high, _ = SPEC[name]
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValidationError(f"{name} must be a whole number of seconds.", field=name) from None
    if not low <= number <= high:
        raise ValidationError(f"{name} must be between {low} and {high} seconds.", field=name)
    return number


def set_setting(store: Store, name: str, value: str | int) -> int:
    number = check(name, value)
    with store.transaction() as uow:
        row = uow.session.get(StoreMeta, PREFIX + name)
        before = None if row is None else row.value
        if row is None:
            row = StoreMeta(key=PREFIX + name, value=str(number))
        else:
            row.value = str(number)
        uow.session.add(row)
        uow.audit("setting.set", "setting", name, before={"value": before},
                  after={"value": str(number)})
    return number
