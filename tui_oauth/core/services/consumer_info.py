"""Consumer Info: who we are when we consume someone else's resources.

One record, created on first open, with an RSA key pair whose private half
lives only in the keyring.  Each key pair has its own keyring item
(``consumer-info/<key_uid>/private-key``), so regenerating writes a new item
and deletes the old one inside the same unit of work: if the commit fails, the
new item is deleted and the old one restored.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from tui_oauth import APP_NAME
from tui_oauth.core.audit import changed, snapshot
from tui_oauth.core.consumer_info_doc import render_consumer_info
from tui_oauth.core.errors import NotFoundError, SecretStoreError, ValidationError
from tui_oauth.core.keys import PublicKeyInfo, describe, generate_key_pair
from tui_oauth.core.models import ConsumerInfo, private_key_item
from tui_oauth.core.services import UNSET, check_fresh, touch
from tui_oauth.core.timeutil import utcnow
from tui_oauth.core.validation import MAX_DESCRIPTION, MAX_NAME, Checker

if TYPE_CHECKING:
    from tui_oauth.core.store import Store

INFO_ID = 1
MIN_BITS = 2048


@dataclass(frozen=True)
class ConsumerInfoView:
    info: ConsumerInfo
    public_key: PublicKeyInfo

    @property
    def fingerprint(self) -> str:
        return self.public_key.fingerprint


class ConsumerInfoService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _load(self) -> ConsumerInfo | None:
        with self.store.session() as s:
            return s.get(ConsumerInfo, INFO_ID)

    def get(self) -> ConsumerInfo:
        """The record, created with a fresh key pair on first use."""
        row = self._load()
        if row is not None:
            return row
        if self.store.read_only:
            raise NotFoundError(
                "This store has no Consumer Info yet.",
                hint="Open it once without --read-only to create it.",
            )
        return self._create()

    def view(self) -> ConsumerInfoView:
        info = self.get()
        return ConsumerInfoView(info, describe(info.public_key))

    def _create(self, bits: int = MIN_BITS) -> ConsumerInfo:
        private_pem, public_b64 = generate_key_pair(bits)
        host = socket.gethostname() or "localhost"
        info = ConsumerInfo(
            id=INFO_ID,
            key=f"{APP_NAME}:{uuid.uuid4()}",
            name=f"{APP_NAME} on {host}",
            description=f"OAuth consumer administered with {APP_NAME} on {host}",
            public_key=public_b64,
            key_uid=str(uuid.uuid4()),
        )
        try:
            with self.store.transaction() as uow:
                uow.session.add(info)
                uow.session.flush()  # a concurrent creator fails here, before the keyring
                uow.set_secret(private_key_item(info), private_pem)
                uow.audit("consumer_info.create", "consumer_info", info.key,
                          after=snapshot(info), detail=f"RSA {bits}-bit key pair generated")
        except IntegrityError:
            existing = self._load()
            if existing is None:
                raise
            return existing
        return info

    def edit(self, *, name: Any = UNSET, description: Any = UNSET,
             callback_url: Any = UNSET, expected_updated_at: datetime | None = None
             ) -> ConsumerInfo:
        """Change the fields given (in one write transaction); ``expected_updated_at``
        refuses to save over a change made since the caller read the record."""
        current = self.get()
        c = Checker()
        values: dict[str, Any] = {}
        if name is not UNSET:
            values["name"] = c.text("name", name, label="Name", max_len=MAX_NAME, required=True)
        if description is not UNSET:
            values["description"] = c.text("description", description, label="Description",
                                           max_len=MAX_DESCRIPTION, multiline=True)
        if callback_url is not UNSET:
            values["callback_url"] = c.url("callback_url", callback_url, label="Callback URL")
        c.raise_if_any()
        with self.store.transaction() as uow:
            row = uow.session.exec(
                select(ConsumerInfo).where(ConsumerInfo.id == current.id).with_for_update()
            ).one()
            check_fresh(row, expected_updated_at, "Consumer Info")
            before = snapshot(row)
            for field, value in values.items():
                setattr(row, field, value)
            after = snapshot(row)
            if not changed(before, after):
                return row
            touch(row)
            uow.session.add(row)
            uow.audit("consumer_info.edit", "consumer_info", row.key, before=before,
                      after=snapshot(row))
        return row

    def rotate_key(self, bits: int = MIN_BITS, *, overlap: timedelta = timedelta(0)
                   ) -> tuple[PublicKeyInfo, PublicKeyInfo]:
        """Regenerate the key pair.  Returns (old, new) public key info.

        Every service provider that trusts the old public key must be given the
        new one: requests we sign from now on use the new key.  With ``overlap``, the
        old public key stays published in our consumer-info document (as
        ``<previousPublicKey>``) until it ends; its private half is deleted at once.
        """
        if overlap < timedelta(0) or overlap > timedelta(days=90):
            raise ValidationError("The overlap must be between 0 and 90 days.", field="overlap")
        current = self.get()
        old_item = private_key_item(current)
        private_pem, public_b64 = generate_key_pair(bits)
        old_info = describe(current.public_key)
        with self.store.transaction() as uow:
            row = uow.session.exec(
                select(ConsumerInfo).where(ConsumerInfo.id == current.id).with_for_update()
            ).one()
            before = snapshot(row)
            if overlap:
                row.previous_public_key = row.public_key
                row.previous_key_until = utcnow() + overlap
            else:
                row.previous_public_key = row.previous_key_until = None
            row.public_key = public_b64
            row.key_uid = str(uuid.uuid4())
            touch(row)
            row.key_created_at = row.updated_at
            uow.session.add(row)
            uow.session.flush()
            uow.set_secret(private_key_item(row), private_pem)
            uow.delete_secret(old_item)
            new_info = describe(public_b64)
            uow.audit("consumer_info.rotate_key", "consumer_info", row.key, before=before,
                      after=snapshot(row),
                      detail=f"key pair regenerated ({bits} bits): {old_info.fingerprint} -> "
                             f"{new_info.fingerprint}" + (
                                 f"; the old public key stays published until "
                                 f"{row.previous_key_until:%Y-%m-%d %H:%M} UTC"
                                 if row.previous_key_until else ""))
        return old_info, new_info

    def private_key_pem(self) -> str:
        """The private key, read from the keyring (for RSA-SHA1 signing)."""
        info = self.get()
        pem = self.store.secrets.get(private_key_item(info))
        if pem is None:
            raise SecretStoreError(
                "The Consumer Info private key is missing from the keyring.",
                hint="Run `tui-oauth doctor`; `tui-oauth info rotate-key` makes a new key pair.",
            )
        return pem

    def export_xml(self) -> bytes:
        info = self.get()
        previous = (info.previous_public_key if info.previous_key_until is not None
                    and utcnow() < info.previous_key_until else None)
        return render_consumer_info(info.key, info.name, info.description, info.callback_url,
                                    info.public_key, previous)

    def forget_previous_key(self, now: datetime | None = None) -> bool:
        """Stop publishing a rotated public key whose overlap ended (the purge calls
        this); whether one was forgotten."""
        now = now or utcnow()
        due = (ConsumerInfo.id == INFO_ID, col(ConsumerInfo.previous_key_until) <= now)
        with self.store.session() as s:  # a read first: most minutes there is nothing
            if s.exec(select(ConsumerInfo.id).where(*due)).first() is None:
                return False
        with self.store.transaction() as uow:
            row = uow.session.exec(select(ConsumerInfo).where(*due).with_for_update()).first()
            if row is None:
                return False
            row.previous_public_key = row.previous_key_until = None
            uow.session.add(row)
            uow.audit("consumer_info.previous_key_end", "consumer_info", row.key,
                      detail="the old public key is no longer published (its overlap ended)")
        return True

    def export_pem(self) -> str:
        return describe(self.get().public_key).pem
