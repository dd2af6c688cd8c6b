"""Provider settings, kept in ``store_meta`` as ``setting.<name>`` rows.

Every process reading the store sees the same values; the server reads them
when it starts (and ``tui-oauth settings set`` says to restart it).

Most are seconds (``refusal_rows_per_consumer`` counts rows).  ``refusal_log``
(on/off) says whether the server records refused requests (core/provider/refusals.py),
kept ``refusal_retention`` seconds and at most ``refusal_rows_per_consumer`` rows per
consumer (all unknown consumer keys together count as one).  ``problem_detail`` says
how much a refusal tells someone who has not proved who they are: ``full`` (the
default: ``consumer_key_unknown``, ``signature_method_rejected`` naming the consumer's
method, ``token_rejected``, ``signature_invalid``, which is what admins need to fix a
client) or ``minimal`` (all four answer ``401 signature_invalid`` alike, so consumer keys and tokens
cannot be enumerated; the server's log still names the real cause).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlmodel import col, select

from tui_oauth.core.errors import ValidationError
from tui_oauth.core.models import StoreMeta

if TYPE_CHECKING:
    from tui_oauth.core.store import Store

PREFIX = "setting."
FULL, MINIMAL = "full", "minimal"
ON, OFF = "on", "off"
DAY = 86400


class Spec(NamedTuple):
    default: int | str
    low: int  # for numbers (in ``unit``)
    high: int
    description: str
    choices: tuple[str, ...] = ()  # for a word: the words allowed
    unit: str = "seconds"  # what a number counts, for messages


SPEC: dict[str, Spec] = {
    "access_token_ttl": Spec(7 * 86400, 60, 10 * 365 * 86400,
                             "access token lifetime (oauth_expires_in), seconds"),
    "authorization_ttl": Spec(30 * 86400, 60, 10 * 365 * 86400,
                              "how long a session can be renewed without asking the user "
                              "(oauth_authorization_expires_in), seconds"),
    "request_token_ttl": Spec(600, 30, 86400, "request token lifetime, seconds"),
    "timestamp_window": Spec(300, 10, 3600, "accepted clock difference, seconds"),
    "problem_detail": Spec(FULL, 0, 0, "what a refusal tells a caller who cannot sign: "
                           "full or minimal", (FULL, MINIMAL)),
    "refusal_log": Spec(ON, 0, 0, "record refused requests for `tui-oauth refusals`: "
                        "on or off", (ON, OFF)),
    "refusal_retention": Spec(7 * DAY, 3600, 365 * DAY,
                              "how long refused requests are kept, seconds"),
    "refusal_rows_per_consumer": Spec(200, 10, 100_000,
                                      "refused requests kept per consumer, all unknown "
                                      "keys together as one, rows",
                                      unit="rows"),
}


def stored_settings(session: Any) -> dict[str, int | str]:
    """The settings set in the store, by name, in name order (a hand-edited bad value is
    left out: the default applies)."""
    rows = session.exec(select(StoreMeta).where(col(StoreMeta.key).startswith(PREFIX))
                        .order_by(col(StoreMeta.key))).all()
    values: dict[str, int | str] = {}
    for row in rows:
        name = row.key[len(PREFIX):]
        if name in SPEC:
            try:
                values[name] = check(name, row.value)
            except ValidationError:
                continue
    return values


@dataclass(frozen=True)
class ProviderSettings:
    access_token_ttl: int = 7 * 86400
    authorization_ttl: int = 30 * 86400
    request_token_ttl: int = 600
    timestamp_window: int = 300
    problem_detail: str = FULL
    refusal_log: str = ON
    refusal_retention: int = 7 * DAY
    refusal_rows_per_consumer: int = 200

    @classmethod
    def load(cls, store: Store) -> ProviderSettings:
        with store.session() as s:
            values = stored_settings(s)
        return replace(cls(), **values)  # type: ignore[arg-type]

    @property
    def minimal_problems(self) -> bool:
        return self.problem_detail == MINIMAL

    @property
    def records_refusals(self) -> bool:
        return self.refusal_log == ON

    def as_dict(self) -> dict[str, int | str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def check(name: str, value: str | int) -> int | str:
    if name not in SPEC:
        raise ValidationError(f"Unknown setting {name!r}; known: {', '.join(SPEC)}.",
                              field="name")
    spec = SPEC[name]
    if spec.choices:
        word = str(value).strip().lower()
        if word not in spec.choices:
            raise ValidationError(f"{name} must be one of: {', '.join(spec.choices)}.",
                                  field=name)
        return word
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValidationError(f"{name} must be a whole number of {spec.unit}.",
                              field=name) from None
    if not spec.low <= number <= spec.high:
        raise ValidationError(f"{name} must be between {spec.low} and {spec.high} "
                              f"{spec.unit}.", field=name)
    return number


def set_setting(store: Store, name: str, value: str | int) -> int | str:
    checked = check(name, value)
    with store.transaction() as uow:
        write_setting(uow, name, checked, uow.session.get(StoreMeta, PREFIX + name))
    return checked


def write_setting(uow: Any, name: str, value: int | str, row: StoreMeta | None, *,
                  detail: str | None = None) -> None:
    """Store setting ``name`` (already checked) in ``uow``, over ``row`` (its stored
    value, if any), with its audit entry."""
    before = None if row is None else row.value
    if row is None:
        row = StoreMeta(key=PREFIX + name, value=str(value))
    else:
        row.value = str(value)
    uow.session.add(row)
    uow.audit("setting.set", "setting", name, before={"value": before},
              after={"value": str(value)}, detail=detail)
