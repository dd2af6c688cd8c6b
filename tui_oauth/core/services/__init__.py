"""The service layer: what the TUI, the CLI and the web server call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import delete, func, select

from tui_oauth.core.audit import changed, snapshot
from tui_oauth.core.errors import StaleError, ValidationError
from tui_oauth.core.timeutil import utcnow
from tui_oauth.core.unset import UNSET as UNSET  # re-exported: the services take it
from tui_oauth.core.validation import Checker

if TYPE_CHECKING:
    from tui_oauth.core.store import UnitOfWork


@dataclass(frozen=True)
class SecretChange:
    """What an edit does to a shared secret: keep (UNSET), remove (None or ""), replace."""

    had: bool
    new: str | None = None
    remove: bool = False

    @classmethod
    def parse(cls, value: Any, *, had: bool, checker: Checker) -> SecretChange:
        if value is UNSET:
            return cls(had)
        if value in (None, ""):
            return cls(had, remove=True)
        return cls(had, new=checker.secret("shared_secret", value, label="Shared secret"))

    @property
    def after(self) -> bool:
        """Whether a secret exists after the edit."""
        return (self.had and not self.remove) or self.new is not None

    @property
    def changes(self) -> bool:
        return self.new is not None or (self.remove and self.had)


def editable_changes(changes: dict[str, Any], editable: tuple[str, ...]) -> dict[str, Any]:
    """The fields an edit asks to change (those not UNSET); a field that is not one of
    ``editable`` is refused (ValidationError)."""
    unknown = sorted(set(changes) - set(editable))
    if unknown:
        raise ValidationError(f"Unknown field(s): {', '.join(unknown)}.", field=unknown[0])
    return {k: v for k, v in changes.items() if v is not UNSET}


class FieldCheck(Protocol):
    """A service's check of a row's fields (its ``_clean``): each field checked into
    ``c``, which the caller raises once with every error; the cleaned values."""

    def __call__(self, c: Checker, data: dict[str, Any], *,
                 has_secret: bool) -> dict[str, Any]: ...


def check_edit(row: Any, given: dict[str, Any], shared_secret: Any,
               editable: tuple[str, ...], clean: FieldCheck,
               ) -> tuple[dict[str, Any], SecretChange]:
    """An edit of ``row`` (read and locked) checked as a whole: the ``given`` fields laid
    over the row's ``editable`` ones and checked by ``clean``, with the secret change
    (a secret that fails its own check counts as there, so that it is not also said to
    be missing).  One ValidationError lists every problem; else the checked fields and
    the secret change."""
    c = Checker()
    secret = SecretChange.parse(shared_secret, had=row.has_shared_secret, checker=c)
    merged = {f: getattr(row, f) for f in editable}
    merged.update(given)
    fields = clean(c, merged, has_secret=secret.after or bool(c.errors))
    c.raise_if_any()
    return fields, secret


def check_fresh(row: Any, expected_updated_at: datetime | None, what: str) -> None:
    """Refuse to save over a change made elsewhere since the caller read ``row``.

    ``expected_updated_at`` is the ``updated_at`` the caller saw (a form when it
    opened); None skips the check (a command that changes only what it names).
    """
    if expected_updated_at is not None and row.updated_at != expected_updated_at:
        raise StaleError(
            f"{what} was changed elsewhere since you opened it; nothing was saved.",
            current=type(row)(**row.model_dump()),  # a detached copy: the rollback expires row
            hint="Reload it to see the change, then make yours again.",
        )


def touch(row: Any) -> None:
    """Set ``updated_at`` to now, always later than before (it is the row's version)."""
    now = utcnow()
    previous = getattr(row, "updated_at", None)
    if previous is not None and now <= previous:
        now = previous + timedelta(microseconds=1)
    row.updated_at = now


def save_edit(uow: UnitOfWork, row: Any, fields: dict[str, Any], secret: SecretChange, *,
              item: str, action: str, target_type: str, target: str) -> bool:
    """Apply an edit to a row read and locked in ``uow``, write the keyring, audit.

    ``fields`` holds only what the caller asked to change (every other column
    keeps the value another writer may just have given it).  False if nothing
    changed.
    """
    before = snapshot(row)
    for name, value in fields.items():
        setattr(row, name, value)
    row.has_shared_secret = secret.after
    if not changed(before, snapshot(row)) and not secret.changes:
        return False
    touch(row)
    uow.session.add(row)
    uow.session.flush()
    detail = None
    if secret.new is not None:
        detail = "shared secret replaced"
        uow.set_secret(item, secret.new)
    elif secret.remove and secret.had:
        detail = "shared secret removed"
        uow.delete_secret(item)
    uow.audit(action, target_type, target, before=before, after=snapshot(row), detail=detail)
    return True


def locked(uow: UnitOfWork, model: Any, where: Any, missing: Callable[[], Exception]) -> Any:
    """The ``model`` row matching ``where``, read and locked for a change in ``uow``;
    ``missing()`` is raised when there is none."""
    row = uow.session.execute(select(model).where(where).with_for_update()).scalars().first()
    if row is None:
        raise missing()
    return row


def save_new(uow: UnitOfWork, row: Any, secret: str | None, *, item: str, action: str,
             target_type: str, target: str) -> None:
    """Add a new row in ``uow``, audit it, and put its shared secret (if any) under
    keyring ``item``."""
    uow.session.add(row)
    uow.session.flush()
    uow.audit(action, target_type, target, after=snapshot(row))
    if secret is not None:
        uow.set_secret(item, secret)


def remove_with(uow: UnitOfWork, row: Any, children: Any, parent_id: Any, *,
                items: list[str], action: str, target_type: str, target: str,
                what: str) -> int:
    """Remove a row read and locked in ``uow`` with its ``children`` (the rows whose
    ``parent_id`` column is its id: explicitly, so the count is right whatever the
    database does with cascades) and its keyring ``items``; audit; the children's count."""
    count = int(uow.session.execute(select(func.count()).select_from(children)
                                    .where(parent_id == row.id)).scalar_one())
    before = snapshot(row)
    uow.session.execute(delete(children).where(parent_id == row.id))
    uow.session.delete(row)
    uow.session.flush()
    for item in items:
        uow.delete_secret(item)
    uow.audit(action, target_type, target, before=before,
              detail=f"{count} {what} removed with it")
    return count
