"""The audit trail: who changed what, when, with before and after.

Secrets never reach it: snapshots are built from rows (which hold no
secrets) and any field whose name says secret, private, password or
passphrase is replaced by ``[redacted]`` whatever its value.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, SQLModel

from tui_oauth.core.models import AuditEntry

REDACTED = "[redacted]"
_SECRET_NAME = re.compile(r"secret|private|password|passphrase|verifier", re.IGNORECASE)
_NOT_SECRET = {"has_shared_secret"}


@dataclass(frozen=True)
class Actor:
    """Who is acting: the OS user, and the SSH client's address when present."""

    user: str
    client_addr: str | None = None

    @classmethod
    def from_environment(cls, env: dict[str, str] | None = None) -> Actor:
        env = dict(os.environ) if env is None else env
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = f"uid:{os.getuid()}"
        addr = None
        for var in ("SSH_CLIENT", "SSH_CONNECTION"):
            if env.get(var):
                addr = env[var].split()[0]
                break
        return cls(user=user, client_addr=addr)

    def __str__(self) -> str:
        return f"{self.user}@{self.client_addr}" if self.client_addr else self.user


def redact(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _NOT_SECRET and _SECRET_NAME.search(key):
            out[key] = REDACTED if value not in (None, "") else value
        elif isinstance(value, datetime):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


def snapshot(row: SQLModel, *,
             exclude: tuple[str, ...] = ("id", "uid", "key_uid")) -> dict[str, Any]:
    """A JSON-able, redacted view of a row for the audit log."""
    data = row.model_dump(exclude=set(exclude))
    return redact(data)


def changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k in after if before.get(k) != after.get(k) and k != "updated_at")


def _dump(data: dict[str, Any] | None) -> str | None:
    if data is None:
        return None
    return json.dumps(redact(data), sort_keys=True, default=str, ensure_ascii=False)


def record(session: Session, actor: Actor, action: str, target_type: str, target: str, *,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
           detail: str | None = None) -> AuditEntry:
    entry = AuditEntry(
        actor=actor.user,
        client_addr=actor.client_addr,
        action=action,
        target_type=target_type,
        target=target[:255],
        before=_dump(before),
        after=_dump(after),
        detail=detail,
    )
    session.add(entry)
    return entry
