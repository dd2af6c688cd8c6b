"""Moving a configuration between stores: export to JSON, import from JSON or XML.

The export document (``format`` ``tui-oauth-config``, ``version`` 1) holds the
consumers, the public part of our Consumer Info, the service providers and the
provider settings.  Secrets are left out (``"secrets": "excluded"``) unless a
passphrase is given: then the shared secrets, the Consumer Info private key and
the provider data key are sealed together under it (:mod:`tui_oauth.core.sealed`),
and nothing secret appears in clear.

An import reads the same document (or Atlassian consumer-info XML documents,
each one consumer), checks every value with the services' own checks, and
applies it in one transaction: what is new is added, what is the same is left
alone, what differs is skipped unless ``replace``.  A dry run decides the same
way and writes nothing.  Errors name the place in the file, e.g.
``consumers[3].name``.

The data key (the key that encrypts token secrets) can also travel alone, in
its own sealed file (``format`` ``tui-oauth-data-key``), so that several hosts
sharing one PostgreSQL store hold the same key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from tui_oauth.core.audit import snapshot
from tui_oauth.core.errors import ConflictError, FieldError, SecretStoreError, ValidationError
from tui_oauth.core.keys import parse_public_key, private_matches_public
from tui_oauth.core.models import Consumer as ConsumerRow
from tui_oauth.core.models import (
    ConsumerInfo,
    HeldToken,
    KeyringItem,
    ServiceProvider,
    StoreMeta,
    Token,
    consumer_secret_item,
    private_key_item,
    provider_secret_item,
)
from tui_oauth.core.registry import services
from tui_oauth.core.sealed import seal, unseal
from tui_oauth.core.services import touch
from tui_oauth.core.timeutil import utcnow
from tui_oauth.core.validation import MAX_DESCRIPTION, MAX_KEY, MAX_NAME, Checker

if TYPE_CHECKING:
    from tui_oauth.core.provider.crypto import DataKey
    from tui_oauth.core.store import Store, UnitOfWork

FORMAT = "tui-oauth-config"
DATA_KEY_FORMAT = "tui-oauth-data-key"
VERSION = 1
SECRETS_PURPOSE = "tui-oauth config secrets v1"
DATA_KEY_PURPOSE = "tui-oauth data key v1"
EXCLUDED = "excluded"
#: A document larger than this is refused before it is parsed.
MAX_DOCUMENT = 256 * 1024 * 1024
#: No value of a configuration is longer (public keys are the longest, a few KiB).
MAX_STRING = 64 * 1024

CONSUMER_FIELDS = ("key", "name", "description", "public_key", "callback_url",
                   "signature_method", "allow_plaintext", "three_lo_allowed", "two_lo_allowed",
                   "two_lo_execute_as", "two_lo_impersonation")
PROVIDER_FIELDS = ("name", "description", "consumer_key", "signature_method",
                   "request_token_url", "authorization_url", "access_token_url",
                   "allow_private")
INFO_FIELDS = ("key", "name", "description", "callback_url", "public_key")
BOOL_FIELDS = frozenset({"allow_plaintext", "three_lo_allowed", "two_lo_allowed",
                         "two_lo_impersonation", "allow_private", "has_shared_secret"})
#: Written by export for people to read; ignored on import.
INFORMATIONAL = frozenset({"created_at", "updated_at", "fingerprint"})

# Actions of a report line.
ADD, CHANGE, SAME, SKIP = "add", "change", "unchanged", "skip"
DIFFERS = "differs; --replace to overwrite"


# Export ---------------------------------------------------------------------------


def _setting_rows(session: Session) -> dict[str, int | str]:
    from tui_oauth.core.provider.settings import stored_settings

    return stored_settings(session)


def export_config(store: Store, *, passphrase: str | None = None) -> dict[str, Any]:
    """The whole configuration as a JSON-able document; secrets sealed under
    ``passphrase`` when given, left out otherwise."""
    from tui_oauth.core.services.consumer_info import INFO_ID

    with store.session() as s:
        consumers = s.exec(select(ConsumerRow).order_by(col(ConsumerRow.key))).all()
        info = s.get(ConsumerInfo, INFO_ID)
        providers = s.exec(select(ServiceProvider)
                           .order_by(func.lower(ServiceProvider.name))).all()
        settings = _setting_rows(s)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": utcnow().isoformat(),
        "consumers": [
            {**{f: getattr(c, f) for f in CONSUMER_FIELDS},
             "has_shared_secret": c.has_shared_secret, "created_at": c.created_at.isoformat()}
            for c in consumers
        ],
        "consumer_info": None if info is None else {f: getattr(info, f) for f in INFO_FIELDS},
        "service_providers": [
            {**{f: getattr(p, f) for f in PROVIDER_FIELDS},
             "has_shared_secret": p.has_shared_secret, "created_at": p.created_at.isoformat()}
            for p in providers
        ],
        "settings": settings,
    }
    if passphrase is None:
        doc["secrets"] = EXCLUDED
        return doc
    secrets: dict[str, Any] = {"consumers": {}, "service_providers": {},
                               "consumer_info_private_key": None, "data_key": None}
    for c in consumers:
        if c.has_shared_secret:
            secrets["consumers"][c.key] = _must_read(store, consumer_secret_item(c),
                                                     f"Consumer {c.key!r}'s shared secret")
    for p in providers:
        if p.has_shared_secret:
            secrets["service_providers"][p.name] = _must_read(
                store, provider_secret_item(p), f"Service provider {p.name!r}'s shared secret")
    if info is not None:
        secrets["consumer_info_private_key"] = _must_read(
            store, private_key_item(info), "The Consumer Info private key")
    secrets["data_key"] = _current_data_key_text(store)
    doc["secrets"] = seal(json.dumps(secrets).encode("utf-8"), passphrase,
                          purpose=SECRETS_PURPOSE)
    return doc


def _must_read(store: Store, item: str, what: str) -> str:
    value = store.secrets.get(item)
    if value is None:
        raise SecretStoreError(f"{what} is missing from this host's keyring; nothing was "
                               "exported.",
                               hint="`tui-oauth doctor` lists what is missing; set the secret "
                                    "again (edit), or export without --with-secrets.")
    return value


def _current_data_key_text(store: Store) -> str | None:
    """The data key as stored (checked against the store's check value), or None when
    the store has none yet."""
    from tui_oauth.core.provider.crypto import CHECK_META_KEY, load_data_key

    if store.secrets.get(KeyringItem.DATA_KEY) is None:
        with store.session() as s:
            if s.get(StoreMeta, CHECK_META_KEY) is None:
                return None
    return load_data_key(store, create=False).to_text()


# Reading a document ---------------------------------------------------------------


@dataclass
class Incoming:
    """What a file asks for, every value checked; ``path`` of each is its place in
    the file, for messages."""

    consumers: list[tuple[str, dict[str, Any], bool]] = field(default_factory=list)
    consumer_info: tuple[str, dict[str, Any]] | None = None
    providers: list[tuple[str, dict[str, Any], bool]] = field(default_factory=list)
    settings: list[tuple[str, str, int | str]] = field(default_factory=list)
    sealed: Any = None  # the encrypted box, or None ("secrets": "excluded")
    sealed_path: str = "secrets"
    sources: list[str] = field(default_factory=list)
    # Filled by open_secrets:
    consumer_secrets: dict[str, str] = field(default_factory=dict)
    provider_secrets: dict[str, str] = field(default_factory=dict)
    private_key: str | None = None
    data_key: DataKey | None = None

    @property
    def needs_passphrase(self) -> bool:
        return self.sealed is not None and not self._opened

    _opened: bool = False

    def extend(self, other: Incoming) -> None:
        """Another file's consumers (XML documents read together)."""
        seen = {fields["key"]: path for path, fields, _ in self.consumers}
        for path, fields, has in other.consumers:
            if fields["key"] in seen:
                raise _error(path, f"consumer key {fields['key']!r} is also in "
                                   f"{seen[fields['key']]}; give each consumer once.")
            self.consumers.append((path, fields, has))
        self.sources.extend(other.sources)


def _error(path: str, message: str) -> ValidationError:
    return ValidationError(FieldError(path, message))


def _at(source: str, path: str) -> str:
    return f"{source}: {path}" if source else path


def _load_json(data: bytes, source: str) -> Any:
    if len(data) > MAX_DOCUMENT:
        raise _error(_at(source, "document"), f"is larger than {MAX_DOCUMENT // 2**20} MiB; "
                                              "is it the right file?")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _error(_at(source, "document"), "is not UTF-8 text; expected the JSON "
                                              "written by `tui-oauth export`.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _error(_at(source, "document"), f"is not valid JSON ({exc.msg} at line "
                                              f"{exc.lineno}, column {exc.colno}).") from None
    except (RecursionError, ValueError) as exc:
        raise _error(_at(source, "document"), f"could not be read as JSON "
                                              f"({type(exc).__name__}: nested too deeply or a "
                                              "number too long).") from None


def _check_members(obj: Any, path: str, known: set[str] | frozenset[str]) -> dict[str, Any]:
    """``obj`` is an object with only ``known`` members; ``path`` "" or "FILE: " is
    the document itself."""
    top = path == "" or path.endswith(": ")
    if not isinstance(obj, dict):
        where = f"{path}document" if top else path
        raise _error(where, f"must be a JSON object, not {_kind(obj)}.")
    unknown = sorted(set(obj) - set(known) - INFORMATIONAL)
    if unknown:
        shown = json.dumps(unknown[0])[1:-1][:80]
        raise _error(f"{path}{shown}" if top else f"{path}.{shown}",
                     "is not a known member here (a file from a newer tui-oauth, or a typo?).")
    return obj


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), "a value")


def _typed(obj: dict[str, Any], names: tuple[str, ...], path: str,
           required: tuple[str, ...]) -> dict[str, Any]:
    """Type checks before the services' checks: text is a string (or null), flags
    are true/false, nothing is huge."""
    out: dict[str, Any] = {}
    for name in names:
        where = f"{path}.{name}"
        if name not in obj:
            if name in required:
                raise _error(where, "is missing.")
            continue
        value = obj[name]
        if name in BOOL_FIELDS:
            if not isinstance(value, bool):
                raise _error(where, f"must be true or false, not {_kind(value)}.")
        elif value is not None and not isinstance(value, str):
            raise _error(where, f"must be a string, not {_kind(value)}.")
        elif isinstance(value, str) and len(value) > MAX_STRING:
            raise _error(where, f"is {len(value)} characters long; no value of a "
                                f"configuration is longer than {MAX_STRING}.")
        out[name] = value
    return out


def _with_paths(exc: ValidationError, path: str) -> ValidationError:
    return ValidationError([FieldError(f"{path}.{e.field}" if e.field else path, e.message)
                            for e in exc.errors])


def _list(doc: dict[str, Any], name: str, source: str) -> list[Any]:
    value = doc.get(name, [])
    if not isinstance(value, list):
        raise _error(_at(source, name), f"must be a list, not {_kind(value)}.")
    return value


def read_config(store: Store, data: bytes, *, source: str = "") -> Incoming:
    """Parse and check an export document; ValidationError names the place in it."""
    doc = _check_members(_load_json(data, source), _at(source, ""),
                         {"format", "version", "exported_at", "consumers", "consumer_info",
                          "service_providers", "settings", "secrets"})
    if doc.get("format") != FORMAT:
        raise _error(_at(source, "format"), f"must be {FORMAT!r}: this is not a file written "
                                            "by `tui-oauth export`.")
    version = doc.get("version")
    if version != VERSION or type(version) is not int:
        raise _error(_at(source, "version"),
                     f"is {json.dumps(version)[:20]}; this tui-oauth reads version {VERSION} "
                     "only. Import it with the tui-oauth that wrote it, or a newer one.")
    incoming = Incoming(sources=[source])
    seen: dict[str, str] = {}
    for i, raw in enumerate(_list(doc, "consumers", source)):
        path = _at(source, f"consumers[{i}]")
        obj = _check_members(raw, path, {*CONSUMER_FIELDS, "has_shared_secret"})
        values = _typed(obj, (*CONSUMER_FIELDS, "has_shared_secret"), path, ("key", "name"))
        has = bool(values.pop("has_shared_secret", False))
        try:
            fields = services(store).consumers.check_fields(values, has_secret=has)
        except ValidationError as exc:
            raise _with_paths(exc, path) from None
        if fields["key"] in seen:
            raise _error(f"{path}.key", f"{fields['key']!r} is also {seen[fields['key']]}; "
                                        "consumer keys are unique.")
        seen[fields["key"]] = path
        incoming.consumers.append((path, fields, has))
    info = doc.get("consumer_info")
    if info is not None:
        path = _at(source, "consumer_info")
        obj = _check_members(info, path, set(INFO_FIELDS))
        values = _typed(obj, INFO_FIELDS, path, (*INFO_FIELDS[:2], "public_key"))
        incoming.consumer_info = (path, _check_info(values, path))
    names: dict[str, str] = {}
    for i, raw in enumerate(_list(doc, "service_providers", source)):
        path = _at(source, f"service_providers[{i}]")
        obj = _check_members(raw, path, {*PROVIDER_FIELDS, "has_shared_secret"})
        values = _typed(obj, (*PROVIDER_FIELDS, "has_shared_secret"), path,
                        ("name", "consumer_key"))
        has = bool(values.pop("has_shared_secret", False))
        try:
            fields = services(store).providers.check_fields(values, has_secret=has)
        except ValidationError as exc:
            raise _with_paths(exc, path) from None
        folded = fields["name"].lower()
        if folded in names:
            raise _error(f"{path}.name", f"{fields['name']!r} is also {names[folded]}; "
                                         "provider names are unique (without regard to case).")
        names[folded] = path
        incoming.providers.append((path, fields, has))
    incoming.settings = _read_settings(doc.get("settings", {}), _at(source, "settings"))
    secrets = doc.get("secrets", EXCLUDED)
    incoming.sealed_path = _at(source, "secrets")
    if secrets != EXCLUDED:
        if not isinstance(secrets, dict):
            raise _error(incoming.sealed_path, f"must be {EXCLUDED!r} or the encrypted "
                                               "secrets written by `export --with-secrets`.")
        incoming.sealed = secrets
    return incoming


def _check_info(values: dict[str, Any], path: str) -> dict[str, Any]:
    c = Checker()
    out = {
        "key": c.identifier("key", values.get("key"), label="Consumer key", max_len=MAX_KEY),
        "name": c.text("name", values.get("name"), label="Name", max_len=MAX_NAME,
                       required=True),
        "description": c.text("description", values.get("description"), label="Description",
                              max_len=MAX_DESCRIPTION, multiline=True),
        "callback_url": c.url("callback_url", values.get("callback_url"),
                              label="Callback URL"),
        "public_key": None,
    }
    try:
        out["public_key"] = parse_public_key(str(values.get("public_key") or ""),
                                             "public_key").base64_der
    except ValidationError as exc:
        c.errors.extend(exc.errors)
    try:
        c.raise_if_any()
    except ValidationError as exc:
        raise _with_paths(exc, path) from None
    return out


def _read_settings(raw: Any, path: str) -> list[tuple[str, str, int | str]]:
    from tui_oauth.core.provider.settings import SPEC, check

    if not isinstance(raw, dict):
        raise _error(path, f"must be an object of setting names and values, not {_kind(raw)}.")
    out: list[tuple[str, str, int | str]] = []
    for name, value in raw.items():
        where = f"{path}.{name}"
        if name not in SPEC:
            raise _error(where, f"is not a setting; known: {', '.join(SPEC)}.")
        if isinstance(value, bool) or not isinstance(value, int | str) or (
                isinstance(value, str) and len(value) > 64):
            raise _error(where, f"must be a number or a word, not {_kind(value)}.")
        try:
            out.append((where, name, check(name, value)))
        except ValidationError as exc:
            raise _error(where, exc.errors[0].message if exc.errors else str(exc)) from None
    return out


def read_consumer_info_xml(data: bytes, *, source: str) -> Incoming:
    """One consumer from an Atlassian consumer-info XML document (as `consumers add
    --from-url` reads it: defusedxml, a size limit, the same checks)."""
    from tui_oauth.core.consumer_info_doc import parse_consumer_info
    from tui_oauth.core.models import RSA_SHA1

    try:
        doc = parse_consumer_info(data)
    except ValidationError as exc:
        raise ValidationError([FieldError(_at(source, e.field or "document"), e.message)
                               for e in exc.errors]) from None
    fields = dict(key=doc.key, name=doc.name, description=doc.description,
                  public_key=doc.public_key.base64_der, callback_url=doc.callback,
                  signature_method=RSA_SHA1, allow_plaintext=False, three_lo_allowed=True,
                  two_lo_allowed=False, two_lo_execute_as=None, two_lo_impersonation=False)
    return Incoming(consumers=[(_at(source, "consumer"), fields, False)], sources=[source])


def looks_like_xml(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def open_secrets(incoming: Incoming, passphrase: str) -> None:
    """Decrypt the sealed secrets into ``incoming``, checking each value.

    A wrong passphrase raises WrongPassphraseError; nothing has been written then.
    """
    from tui_oauth.core.provider.crypto import DataKey

    if incoming.sealed is None:
        return
    path = incoming.sealed_path
    plain = unseal(incoming.sealed, passphrase, purpose=SECRETS_PURPOSE, path=path)
    try:
        secrets = json.loads(plain.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _error(path, "the decrypted secrets are not JSON; the file is damaged.") from None
    secrets = _check_members(secrets, path, {"consumers", "service_providers",
                                             "consumer_info_private_key", "data_key"})
    c = Checker()
    for section, what, named, into in (
            ("consumers", "consumer", {f["key"] for _, f, _ in incoming.consumers},
             incoming.consumer_secrets),
            ("service_providers", "service provider",
             {f["name"] for _, f, _ in incoming.providers}, incoming.provider_secrets)):
        for name, value in _mapping(secrets, section, path).items():
            where = f"{path}.{section}[{json.dumps(name)}]"
            if name not in named:
                raise _error(where, f"names no {what} of this file.")
            into[name] = _secret(c, value, where)
    pem = secrets.get("consumer_info_private_key")
    if pem is not None:
        where = f"{path}.consumer_info_private_key"
        if not isinstance(pem, str) or len(pem) > MAX_STRING:
            raise _error(where, "must be the private key as PEM text.")
        if incoming.consumer_info is None:
            raise _error(where, "is given but the file has no consumer_info.")
        try:
            matches = private_matches_public(pem, incoming.consumer_info[1]["public_key"])
        except ValidationError as exc:
            raise _error(where, exc.errors[0].message) from None
        if not matches:
            raise _error(where, "is not the pair of consumer_info.public_key; the file "
                                "is damaged.")
        incoming.private_key = pem
    key_text = secrets.get("data_key")
    if key_text is not None:
        where = f"{path}.data_key"
        if not isinstance(key_text, str) or len(key_text) > 100:
            raise _error(where, "must be the data key as base64 text.")
        try:
            incoming.data_key = DataKey.from_text(key_text)
        except SecretStoreError:
            raise _error(where, "is not a 256-bit base64 key; the file is damaged.") from None
    incoming._opened = True


def _mapping(obj: dict[str, Any], name: str, path: str) -> dict[str, Any]:
    value = obj.get(name) or {}
    if not isinstance(value, dict):
        raise _error(f"{path}.{name}", f"must be an object, not {_kind(value)}.")
    return value


def _secret(c: Checker, value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_STRING:
        raise _error(where, "must be the secret as a string.")
    checked = c.secret("shared_secret", value, label="The shared secret")
    if checked is None:
        message = c.errors.pop().message if c.errors else "is empty."
        raise _error(where, message)
    return checked


# Applying -------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One line of an import's report."""

    kind: str  # consumer, consumer_info, service_provider, setting, data_key
    name: str
    action: str  # add, change, unchanged, skip
    reason: str | None = None
    fields: tuple[str, ...] = ()


@dataclass
class ImportReport:
    changes: list[Change] = field(default_factory=list)
    dry_run: bool = False
    tokens_unreadable: int = 0  # token secrets the replaced data key made unreadable

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    def summary(self) -> str:
        return (f"{self.count(ADD)} added, {self.count(CHANGE)} changed, "
                f"{self.count(SKIP)} skipped, {self.count(SAME)} unchanged")


class _Importer:
    def __init__(self, store: Store, incoming: Incoming, *, replace: bool,
                 session: Session, uow: UnitOfWork | None) -> None:
        self.store = store
        self.incoming = incoming
        self.replace = replace
        self.s = session
        self.uow = uow  # None: a dry run, nothing is written
        self.report = ImportReport(dry_run=uow is None)

    def note(self, kind: str, name: str, action: str, reason: str | None = None,
             fields: list[str] | tuple[str, ...] = ()) -> None:
        self.report.changes.append(Change(kind, name, action, reason, tuple(fields)))

    def secret(self, item: str) -> str | None:
        return self.store.secrets.get(item)

    def run(self) -> ImportReport:
        if self.incoming.consumer_info is not None:
            self.consumer_info(*self.incoming.consumer_info)
        for _, fields, has in self.incoming.consumers:
            self.consumer(fields, has, self.incoming.consumer_secrets.get(fields["key"]))
        for _, fields, has in self.incoming.providers:
            self.provider(fields, has, self.incoming.provider_secrets.get(fields["name"]))
        for _, name, value in self.incoming.settings:
            self.setting(name, value)
        if self.incoming.data_key is not None:
            self.data_key(self.incoming.data_key)
        return self.report

    # -- consumers and providers ---------------------------------------------------

    def _row(self, kind: str, row: Any, fields: dict[str, Any], names: tuple[str, ...],
             has: bool, secret: str | None, item: Callable[[Any], str],
             action: str, target_type: str) -> None:
        name = fields["key" if kind == "consumer" else "name"]
        if row is None:
            if has and secret is None and (fields["signature_method"] != "RSA-SHA1"
                                           or fields.get("allow_plaintext")):
                self.note(kind, name, SKIP, "its shared secret is not in the file; export "
                                            "with --with-secrets")
                return
            self.note(kind, name, ADD, None if not has or secret is not None else
                      "without its shared secret, which is not in the file")
            if self.uow is None:
                return
            model = ConsumerRow if kind == "consumer" else ServiceProvider
            new = model(uid=str(uuid.uuid4()), has_shared_secret=secret is not None, **fields)
            self.s.add(new)
            self.s.flush()
            self.uow.audit(f"{action}.add", target_type, name, after=snapshot(new),
                           detail="by import")
            if secret is not None:
                self.uow.set_secret(item(new), secret)
            return
        differs = [f for f in names if getattr(row, f) != fields[f]]
        current = self.secret(item(row)) if row.has_shared_secret and secret is not None \
            else None
        if secret is not None:
            if current != secret:
                differs.append("shared_secret")
        elif not has and row.has_shared_secret:  # (a secret left out of the file: unknown)
            differs.append("shared_secret")
        if not differs:
            self.note(kind, name, SAME)
            return
        if not self.replace:
            self.note(kind, name, SKIP, DIFFERS, differs)
            return
        if has and secret is None and not row.has_shared_secret and (
                fields["signature_method"] != "RSA-SHA1" or fields.get("allow_plaintext")):
            self.note(kind, name, SKIP, "differs, and its shared secret is not in the file; "
                                        "export with --with-secrets", differs)
            return
        self.note(kind, name, CHANGE, None, differs)
        if self.uow is None:
            return
        before = snapshot(row)
        for f in names:
            setattr(row, f, fields[f])
        detail = "by import"
        if secret is not None and current != secret:
            row.has_shared_secret = True
            self.uow.set_secret(item(row), secret)
            detail = "by import; shared secret replaced"
        elif not has and row.has_shared_secret:
            row.has_shared_secret = False
            self.uow.delete_secret(item(row))
            detail = "by import; shared secret removed"
        touch(row)
        self.s.add(row)
        self.s.flush()
        self.uow.audit(f"{action}.edit", target_type, name, before=before,
                       after=snapshot(row), detail=detail)

    def consumer(self, fields: dict[str, Any], has: bool, secret: str | None) -> None:

        query = select(ConsumerRow).where(ConsumerRow.key == fields["key"])
        row = self.s.exec(query if self.uow is None else query.with_for_update()).first()
        self._row("consumer", row, fields, CONSUMER_FIELDS, has, secret,
                  consumer_secret_item, "consumer", "consumer")

    def provider(self, fields: dict[str, Any], has: bool, secret: str | None) -> None:
        from tui_oauth.core.services.providers import named

        query = select(ServiceProvider).where(named(fields["name"]))
        row = self.s.exec(query if self.uow is None else query.with_for_update()).first()
        self._row("service_provider", row, fields, PROVIDER_FIELDS, has, secret,
                  provider_secret_item, "provider", "service_provider")

    # -- Consumer Info ---------------------------------------------------------------

    def consumer_info(self, path: str, fields: dict[str, Any]) -> None:
        from tui_oauth.core.services.consumer_info import INFO_ID

        pem = self.incoming.private_key
        row = self.s.get(ConsumerInfo, INFO_ID)
        name = fields["key"]
        if row is None:
            if pem is None:
                self.note("consumer_info", name, SKIP, "its private key is not in the file; "
                                                       "export with --with-secrets")
                return
            self.note("consumer_info", name, ADD)
            if self.uow is None:
                return
            info = ConsumerInfo(id=INFO_ID, key_uid=str(uuid.uuid4()), **fields)
            self.s.add(info)
            self.s.flush()
            self.uow.set_secret(private_key_item(info), pem)
            self.uow.audit("consumer_info.import", "consumer_info", name, after=snapshot(info),
                           detail="by import, with its key pair")
            return
        differs = [f for f in INFO_FIELDS if getattr(row, f) != fields[f]]
        if not differs:
            self.note("consumer_info", name, SAME)
            return
        if not self.replace:
            self.note("consumer_info", name, SKIP, DIFFERS, differs)
            return
        new_pair = row.public_key != fields["public_key"]
        if new_pair and pem is None:
            self.note("consumer_info", name, SKIP, "differs, and its private key is not in the "
                                                   "file; export with --with-secrets", differs)
            return
        self.note("consumer_info", name, CHANGE, None, differs)
        if self.uow is None:
            return
        before = snapshot(row)
        old_item = private_key_item(row)
        for f in INFO_FIELDS:
            setattr(row, f, fields[f])
        touch(row)
        if new_pair:
            assert pem is not None
            row.key_uid = str(uuid.uuid4())
            row.key_created_at = row.updated_at
        self.s.add(row)
        self.s.flush()
        if new_pair:
            assert pem is not None
            self.uow.set_secret(private_key_item(row), pem)
            self.uow.delete_secret(old_item)
        self.uow.audit("consumer_info.import", "consumer_info", name, before=before,
                       after=snapshot(row),
                       detail="by import" + ("; key pair replaced" if new_pair else ""))

    # -- settings and the data key -----------------------------------------------------

    def setting(self, name: str, value: int | str) -> None:
        from tui_oauth.core.provider.settings import PREFIX, write_setting

        row = self.s.get(StoreMeta, PREFIX + name)
        if row is not None and row.value == str(value):
            self.note("setting", name, SAME)
            return
        if row is not None and not self.replace:
            self.note("setting", name, SKIP, DIFFERS, ("value",))
            return
        self.note("setting", name, ADD if row is None else CHANGE)
        if self.uow is None:
            return
        write_setting(self.uow, name, value, row, detail="by import")

    def data_key(self, key: DataKey) -> None:

        state = _data_key_state(self.s, self.store, key)
        if state == "same":
            self.note("data_key", KeyringItem.DATA_KEY, SAME)
            return
        if state == "differs" and not self.replace:
            self.note("data_key", KeyringItem.DATA_KEY, SKIP,
                      "this store has a different data key; --replace to overwrite (token "
                      "secrets encrypted under the old key become unreadable)")
            return
        self.note("data_key", KeyringItem.DATA_KEY, ADD if state == "absent" else CHANGE)
        if state == "differs":
            self.report.tokens_unreadable = _encrypted_tokens(self.s)
        if self.uow is not None:
            _write_data_key(self.uow, key, state)


def import_config(store: Store, incoming: Incoming, *, replace: bool = False,
                  dry_run: bool = False) -> ImportReport:
    """Apply ``incoming`` in one transaction (or only say what would happen)."""
    if incoming.needs_passphrase:
        raise ValidationError(FieldError(incoming.sealed_path, "The file holds encrypted "
                                         "secrets; give their passphrase."))
    if dry_run:
        with store.session() as s:
            return _Importer(store, incoming, replace=replace, session=s, uow=None).run()
    with store.transaction() as uow:
        report = _Importer(store, incoming, replace=replace, session=uow.session,
                           uow=uow).run()
        sources = ", ".join(s for s in incoming.sources if s) or "a file"
        uow.audit("config.import", "store", sources[:255],
                  after={a: report.count(a) for a in (ADD, CHANGE, SKIP, SAME)},
                  detail=f"imported: {report.summary()}")
    return report


# The data key alone -----------------------------------------------------------------


def export_data_key(store: Store, passphrase: str) -> dict[str, Any]:
    """The store's data key sealed under ``passphrase`` (``keyring export-data-key``)."""
    from tui_oauth.core.provider.crypto import load_data_key

    key = load_data_key(store, create=False)
    return {"format": DATA_KEY_FORMAT, "version": VERSION, "exported_at": utcnow().isoformat(),
            "data_key": seal(key.to_text().encode("ascii"), passphrase,
                             purpose=DATA_KEY_PURPOSE)}


def read_data_key_file(data: bytes, *, source: str = "") -> Any:
    """The sealed box of a data key file (checked before the passphrase is asked)."""
    doc = _check_members(_load_json(data, source), _at(source, ""),
                         {"format", "version", "exported_at", "data_key"})
    if doc.get("format") != DATA_KEY_FORMAT:
        raise _error(_at(source, "format"), f"must be {DATA_KEY_FORMAT!r}: this is not a "
                                            "file written by `tui-oauth keyring "
                                            "export-data-key`.")
    if doc.get("version") != VERSION or type(doc.get("version")) is not int:
        raise _error(_at(source, "version"), f"this tui-oauth reads version {VERSION} only.")
    if "data_key" not in doc:
        raise _error(_at(source, "data_key"), "is missing.")
    return doc["data_key"]


def open_data_key(box: Any, passphrase: str, *, source: str = "") -> DataKey:
    from tui_oauth.core.provider.crypto import DataKey

    path = _at(source, "data_key")
    plain = unseal(box, passphrase, purpose=DATA_KEY_PURPOSE, path=path)
    try:
        return DataKey.from_text(plain.decode("ascii"))
    except (UnicodeDecodeError, SecretStoreError):
        raise _error(path, "does not hold a 256-bit key; the file is damaged.") from None


@dataclass(frozen=True)
class DataKeyImport:
    action: str  # add, unchanged, change
    tokens_unreadable: int = 0


def data_key_conflict(store: Store, key: DataKey) -> int | None:
    """None when importing ``key`` overwrites nothing different; else how many token
    secrets it would make unreadable."""
    with store.session() as s:
        if _data_key_state(s, store, key) != "differs":
            return None
        return _encrypted_tokens(s)


def import_data_key(store: Store, key: DataKey, *, replace: bool = False) -> DataKeyImport:
    """Put ``key`` in this host's keyring as the store's data key.

    A different key already there (in the keyring, or the one the store's tokens
    were encrypted with) is overwritten only with ``replace``: token secrets
    encrypted under the old key then cannot be read any more.
    """
    from tui_oauth.core.provider.crypto import _lock

    with _lock, store.transaction() as uow:
        state = _data_key_state(uow.session, store, key)
        if state == "same":
            return DataKeyImport(SAME)
        lost = 0
        if state == "differs":
            lost = _encrypted_tokens(uow.session)
            if not replace:
                raise ConflictError(FieldError(
                    "data_key", "This store already has a different data key "
                                f"({lost} token secret(s) are encrypted under it); nothing "
                                "was changed. Add --replace to overwrite it: those token "
                                "secrets would become unreadable."))
        _write_data_key(uow, key, state, lost)
    return DataKeyImport(ADD if state == "absent" else CHANGE, lost)


def _data_key_state(session: Session, store: Store, key: DataKey) -> str:
    """"same", "absent" (nothing different to overwrite) or "differs"."""
    import hmac

    from tui_oauth.core.provider.crypto import CHECK_META_KEY

    current = store.secrets.get(KeyringItem.DATA_KEY)
    meta = session.get(StoreMeta, CHECK_META_KEY)
    check = key.check_value()
    meta_ok = meta is None or hmac.compare_digest(meta.value, check)
    if current is not None:
        same = hmac.compare_digest(current.strip(), key.to_text())
        if same and meta is not None and meta_ok:
            return "same"
        return "absent" if same and meta_ok else "differs"
    return "absent" if meta_ok else "differs"


def _encrypted_tokens(session: Session) -> int:
    issued = session.exec(select(func.count()).select_from(Token)
                          .where(col(Token.secret_enc).is_not(None))).one()
    held = session.exec(select(func.count()).select_from(HeldToken)
                        .where(col(HeldToken.secret_enc).is_not(None))).one()
    return int(issued) + int(held)


def _write_data_key(uow: UnitOfWork, key: DataKey, state: str, lost: int = 0) -> None:
    from tui_oauth.core.provider.crypto import CHECK_META_KEY

    meta = uow.session.get(StoreMeta, CHECK_META_KEY)
    if meta is None:
        uow.session.add(StoreMeta(key=CHECK_META_KEY, value=key.check_value()))
    else:
        meta.value = key.check_value()
        uow.session.add(meta)
    uow.session.flush()
    uow.set_secret(KeyringItem.DATA_KEY, key.to_text())
    detail = "data key imported"
    if state == "differs":
        detail = (f"data key replaced by import; {lost} token secret(s) encrypted under the "
                  "old key can no longer be read")
    uow.audit("provider.data_key.import", "keyring", KeyringItem.DATA_KEY, detail=detail)
