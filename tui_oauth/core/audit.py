"""The audit trail: who changed what, when, with before and after.

Secrets never reach it: snapshots are built from rows (which hold no
secrets) and any field named as a secret (``secret``, ``shared_secret``,
``secret_enc``, ``password``, ``passphrase``, ``verifier``, ``private_key``,
``session_handle``, alone or at the end of the name after ``_``) is replaced by
``[redacted]`` whatever its value.  Flags and dates about a secret
(``has_shared_secret``, ``previous_secret_until``, ``allow_private``) are not
secrets: they are recorded as they are, before and after.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pwd
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, SQLModel

from tui_oauth.core.models import AuditEntry
from tui_oauth.core.text import visible

REDACTED = "[redacted]"
#: A field holding a secret: one of these words, alone or ending the name after "_"
#: (``shared_secret``, ``oauth_token_secret``, ``token_secret_enc``, ``key_passphrase``).
_SECRET_NAME = re.compile(
    r"(?:^|_)(?:secret|password|passphrase|verifier|private_key|session_handle)"
    r"(?:_enc|_pem)?$", re.IGNORECASE)
#: Flags that say whether there is a secret (``has_shared_secret``): not secrets.
_FLAG = re.compile(r"^(?:has|is)_", re.IGNORECASE)


def is_secret_field(name: str) -> bool:
    """True if an audited field called ``name`` holds a secret (its value never shows)."""
    return bool(_SECRET_NAME.search(name)) and not _FLAG.match(name)


# Environment variables getpass.getuser() reads the login name from, in its order.
LOGIN_VARS = ("LOGNAME", "USER", "LNAME", "USERNAME")
MAX_LOGIN = 64
INVALID_ADDR = "invalid"


@dataclass(frozen=True)
class Actor:
    """Who is acting: the OS user, and the SSH client's address when present.

    ``user`` is the name of the process's real uid, which no environment
    variable can change; when the login name in the environment
    ($LOGNAME, $USER, as ``getpass.getuser`` reads it) says otherwise (``su``,
    ``sudo -E``, or a forged variable) it follows in brackets:
    ``root (login alice)``.  ``client_addr`` is the address in $SSH_CLIENT
    (or $SSH_CONNECTION) when it parses as an IP address, ``invalid`` when it
    does not, None without SSH.  Neither ever holds a control character.
    """

    user: str
    client_addr: str | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None, *,
                         uid: int | None = None) -> Actor:
        env = os.environ if env is None else env
        uid = os.getuid() if uid is None else uid
        try:
            user = visible(pwd.getpwuid(uid).pw_name)
        except KeyError:  # a uid without a passwd entry (containers)
            user = f"uid:{uid}"
        login = next((env[v] for v in LOGIN_VARS if env.get(v)), None)
        if login is not None and login != user:
            shown = visible(login)
            if len(shown) > MAX_LOGIN:
                shown = shown[:MAX_LOGIN] + "…"
            user = f"{user} (login {shown})"
        return cls(user=user, client_addr=client_address(env))

    def __str__(self) -> str:
        return f"{self.user}@{self.client_addr}" if self.client_addr else self.user


def client_address(env: Mapping[str, str]) -> str | None:
    """The SSH client's IP address from $SSH_CLIENT / $SSH_CONNECTION, normalised;
    ``invalid`` when the variable holds anything else; None when neither is set."""
    for var in ("SSH_CLIENT", "SSH_CONNECTION"):
        value = env.get(var)
        if not value:
            continue
        parts = value.split()
        try:
            return str(ipaddress.ip_address(parts[0] if parts else ""))
        except ValueError:
            return INVALID_ADDR
    return None


def redact(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if is_secret_field(key):
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
