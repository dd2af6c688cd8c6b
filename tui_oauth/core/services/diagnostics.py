"""Why is this consumer refused: the signature debugger over the store's keys.

:meth:`DiagnosticsService.check_request` takes a request as a consumer sent it (see
:func:`tui_oauth.core.provider.debugger.parse_request`), reads the consumer's shared
secret(s) from the keyring or its RSA public key from the store, and the token's
secret as the provider does (sealed under the data key), and runs
:func:`debugger.check`.  :meth:`check_refusal` does the same for a recorded
``signature_invalid`` refusal, rebuilt from its base string and signature.

The secrets are read and used here, never returned: a :class:`Report` holds none.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select

from tui_oauth.core.errors import NotFoundError, ValidationError
from tui_oauth.core.models import PLAINTEXT, RSA_SHA1, Consumer, StoreMeta, Token
from tui_oauth.core.provider import debugger
from tui_oauth.core.provider.debugger import Report, SentRequest
from tui_oauth.core.registry import services
from tui_oauth.core.timeutil import utcnow

if TYPE_CHECKING:
    from tui_oauth.core.store import Store

#: store_meta key: the public URL `serve` serves (written at its start when it changed).
PUBLIC_URL_META = "serve.public_url"
#: store_meta key: the address `serve` listens on, as a URL (http://host:port).
LISTEN_URL_META = "serve.listen_url"
#: store_meta key: the (public URL, listen URL) pairs of the last few `serve`s of this
#: store, newest first, as JSON: several servers (or one moved to another port) share a
#: store, and a request is checked against the one it was sent to.
SERVED_META = "serve.served"
SERVED_KEPT = 8

#: A consumer's other tokens tried as "a stale token" at most (the newest).
STALE_TOKENS = 200


@dataclasses.dataclass(frozen=True)
class _Keys:
    secrets: tuple[str, ...]
    old_secrets: tuple[str, ...]
    public_key: Any
    notes: tuple[str, ...]


class DiagnosticsService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def check_request(self, text: str, *, consumer_key: str | None = None,
                      token: str | None = None, public_url: str | None = None,
                      internal_urls: tuple[str, ...] | list[str] = ()) -> Report:
        """Check a request as sent (a raw HTTP request, a curl command line, or METHOD
        URL + headers + body) against the stored keys.

        ``consumer_key``/``token``: use these instead of the request's own
        ``oauth_consumer_key``/``oauth_token`` (a key typed wrong by the consumer);
        ``public_url``: the server's ``--public-url`` (None: the URL as sent);
        ``internal_urls``: base URLs the consumer may have signed instead (scheme://
        host:port[/prefix], tried with http and https and the request's path), e.g.
        :meth:`served_listen_url`."""
        sent = debugger.parse_request(text)
        return self._check(sent, consumer_key=consumer_key, token=token, public_url=public_url,
                           internal_bases=internal_urls)

    def check_refusal(self, refusal_id: int) -> Report:
        """The same check on a recorded ``signature_invalid`` refusal: the request is
        rebuilt from its base string and signature, and checked against the URL the
        server used (its ``url``) with the one the request reached (``seen_url``) and the
        address the server listens on (``listen_url``, http and https) as internal URLs."""
        row = services(self.store).refusals.get(refusal_id)
        if row.problem != "signature_invalid" or not row.base_string:
            raise ValidationError(
                f"Refusal {refusal_id} is {row.problem}, not signature_invalid: there is no "
                f"signature to check. {row.advice}")
        if row.truncated:
            raise ValidationError(
                f"Refusal {refusal_id}'s base string was cut at 16 KiB when it was recorded: "
                "the signature cannot be checked from it. Check the request itself with "
                "`tui-oauth debug signature`.")
        if row.signature_method == PLAINTEXT or not row.signature:
            raise ValidationError(
                f"Refusal {refusal_id} was signed with PLAINTEXT, whose signature is the "
                "secret itself and is never recorded. Check the request itself with "
                "`tui-oauth debug signature`.")
        request = debugger.recorded(base_string=row.base_string, signature=row.signature,
                                    seen_url=row.seen_url, url=row.url,
                                    listen_url=row.listen_url)
        return self._check(request, consumer_key=row.consumer_key or None, token=None,
                           public_url=None)

    # -----------------------------------------------------------------------------------

    def _check(self, request: SentRequest | debugger.Recorded, *, consumer_key: str | None,
               token: str | None, public_url: str | None,
               internal_bases: tuple[str, ...] | list[str] = ()) -> Report:
        """Check a request (pasted, or a refusal's, :func:`debugger.recorded`) with the
        keys in the store and the keyring."""
        sent = request.sent if isinstance(request, debugger.Recorded) else request
        sent_key, sent_token, method = debugger.signed_by(sent)
        key = consumer_key or sent_key
        if not key:
            raise ValidationError("The request has no oauth_consumer_key; name the consumer "
                                  "(--consumer KEY).")
        consumer = self._consumer(key)
        notes: list[str] = []
        if consumer_key and sent_key and consumer_key != sent_key:
            notes.append(f"The request names consumer {sent_key!r}; checked against "
                         f"{consumer_key!r} as asked.")
        if method and not _accepts(consumer, method):
            notes.append(f"This consumer signs with {consumer.signature_method}"
                         f"{' or PLAINTEXT' if consumer.allow_plaintext else ''}, not "
                         f"{method}: the server refuses the method before the signature.")
        keys = self._keys(consumer, method)
        notes.extend(keys.notes)
        token_name = token or sent_token
        token_secret: str | None = None
        stale: list[tuple[str, str]] = []
        if token_name and method != RSA_SHA1:
            token_secret, stale, token_notes = self._token_secrets(consumer, token_name)
            notes.extend(token_notes)
        if token and sent_token and token != sent_token:
            notes.append("The request names another token; checked with the one asked for.")
        if isinstance(request, debugger.Recorded):
            report = request.check(secrets=keys.secrets, old_secrets=keys.old_secrets,
                                   public_key=keys.public_key, token_secret=token_secret,
                                   stale_token_secrets=stale)
        else:
            report = debugger.check(sent, public_url=public_url, secrets=keys.secrets,
                                    old_secrets=keys.old_secrets, public_key=keys.public_key,
                                    token_secret=token_secret, stale_token_secrets=stale,
                                    internal_bases=internal_bases)
        return dataclasses.replace(report, notes=notes + report.notes)

    def served_public_url(self) -> str | None:
        """The public URL `serve` last served this store with (store_meta), or None."""
        return self._meta(PUBLIC_URL_META)

    def served_listen_url(self) -> str | None:
        """The address `serve` last listened on for this store (http://host:port,
        store_meta), or None."""
        return self._meta(LISTEN_URL_META)

    def served(self) -> list[tuple[str, str | None]]:
        """The (public URL, listen URL) of the last few `serve`s of this store, newest
        first (the last one alone for a store served before they were kept)."""
        return _served(self._meta(SERVED_META)) or (
            [(public, self.served_listen_url())] if (public := self.served_public_url())
            else [])

    def served_at(self, url: str, *, scheme_known: bool = True
                  ) -> tuple[str, str | None] | None:
        """The noted `serve` (:meth:`served`) a request sent to ``url`` reached: the
        newest whose public URL or listen address ``url`` falls under (scheme, host,
        port, path prefix), or None.  ``scheme_known`` False (a raw request completed
        from its Host header): https is tried too."""
        urls = [url]
        if not scheme_known and url.lower().startswith("http://"):
            urls.append("https://" + url[len("http://"):])
        for public, listen in self.served():
            for candidate in urls:
                if _under(candidate, public) or (listen is not None
                                                 and _under(candidate, listen)):
                    return public, listen
        return None

    def _meta(self, key: str) -> str | None:
        with self.store.session() as s:
            row = s.get(StoreMeta, key)
        return row.value if row is not None and row.value else None

    def _consumer(self, key: str) -> Consumer:
        with self.store.session() as s:
            row = s.exec(select(Consumer).where(Consumer.key == key)).first()
        if row is None:
            raise NotFoundError(
                f"No consumer with key {key!r}: the server answers consumer_key_unknown "
                "before any signature is checked.",
                hint="Check the key the consumer sends (`tui-oauth consumers list`), or give "
                     "the right one with --consumer KEY.")
        return row

    def _keys(self, consumer: Consumer, method: str) -> _Keys:
        from tui_oauth.core.models import consumer_secret_item, previous_secret_item

        notes: list[str] = []
        if method == RSA_SHA1:
            public_key = None
            if consumer.public_key:
                from tui_oauth.core.keys import describe

                try:
                    public_key = describe(consumer.public_key).public_key()
                except Exception:  # a stored key that does not parse: said, not raised
                    notes.append("The consumer's stored public key does not parse.")
            return _Keys((), (), public_key, tuple(notes))
        if not consumer.has_shared_secret:
            return _Keys((), (), None, ())
        current = self.store.secrets.get(consumer_secret_item(consumer))
        if current is None:
            notes.append("The consumer's shared secret is missing from the keyring "
                         "(`tui-oauth doctor`).")
        previous = self.store.secrets.get(previous_secret_item(consumer))
        accepted = [current] if current is not None else []
        old: list[str] = []
        if previous is not None:
            until = consumer.previous_secret_until
            if until is not None and utcnow() < until:
                accepted.append(previous)
            else:
                old.append(previous)
        return _Keys(tuple(accepted), tuple(old), None, tuple(notes))

    def _token_secrets(self, consumer: Consumer, token: str
                       ) -> tuple[str | None, list[tuple[str, str]], list[str]]:
        """(the token's secret, (token, secret) of the consumer's other newest tokens,
        notes), read from their sealed copies with the data key, as the provider does."""
        from tui_oauth.core.provider.crypto import load_data_key

        notes: list[str] = []
        with self.store.session() as s:
            row = s.exec(select(Token.token, Token.secret_enc, Token.consumer_id)
                         .where(Token.token == token)).first()
            others = s.exec(select(Token.token, Token.secret_enc)
                            .where(Token.consumer_id == consumer.id, Token.token != token)
                            .order_by(col(Token.id).desc()).limit(STALE_TOKENS)).all()
        data_key = load_data_key(self.store, create=False)
        secret: str | None = None
        if row is None:
            notes.append("The token sent is not in the store (never issued, or purged): the "
                         "server answers token_rejected; the signature is checked without "
                         "a token secret.")
        elif row[2] != consumer.id:
            notes.append("The token sent belongs to another consumer: the server answers "
                         "token_rejected.")
        elif row[1] is not None:
            secret = data_key.decrypt(row[1], row[0])
            if secret is None:
                notes.append("The token's secret cannot be decrypted with this store's data "
                             "key.")
        stale: list[tuple[str, str]] = []
        for other, blob in others:
            if blob is not None:
                value = data_key.decrypt(blob, other)
                if value is not None:
                    stale.append((other, value))
        return secret, stale, notes


def _accepts(consumer: Consumer, method: str) -> bool:
    if method == PLAINTEXT:
        return consumer.allow_plaintext and consumer.signature_method != RSA_SHA1
    return method == consumer.signature_method



def remember_public_url(store: Store, public_url: str, listen_url: str | None = None
                        ) -> bool:
    """`serve`'s start: note the public URL it serves and the address it listens on
    (``listen_url``, http://host:port) in store_meta (for `debug signature` without
    --public-url, and its internal-URL check), each only when it differs from the one
    noted.  Returns whether anything was written."""
    written = _remember(store, PUBLIC_URL_META, public_url)
    if listen_url is not None:
        written = _remember(store, LISTEN_URL_META, listen_url) or written
    if len(public_url) <= 1024 and len(listen_url or "") <= 1024:
        with store.session() as s:
            row = s.get(StoreMeta, SERVED_META)
            before = _served(row.value if row is not None else None)
        entry = (public_url, listen_url)
        after = [entry, *(e for e in before if e != entry)][:SERVED_KEPT]
        while len(after) > 1 and len(json.dumps(after)) > 1024:  # store_meta's limit
            after.pop()
        if after != before:
            written = _remember(store, SERVED_META, json.dumps(after)) or written
    return written


def _under(url: str, base: str) -> bool:
    """Whether ``url`` is on ``base`` (same scheme, host and port, under its path)."""
    from urllib.parse import urlsplit

    try:
        u, b = urlsplit(url), urlsplit(base)
        same = (u.scheme.lower() == b.scheme.lower() and u.hostname == b.hostname
                and (u.port or _DEFAULT_PORTS.get(u.scheme.lower()))
                == (b.port or _DEFAULT_PORTS.get(b.scheme.lower())))
    except ValueError:  # a port that is not a number
        return False
    prefix = b.path.rstrip("/")
    return same and (u.path == prefix or u.path.startswith(prefix + "/"))


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _served(value: str | None) -> list[tuple[str, str | None]]:
    """store_meta's SERVED_META, read defensively (a hand-edited value is ignored)."""
    try:
        rows = json.loads(value) if value else []
    except ValueError:
        return []
    out: list[tuple[str, str | None]] = []
    for row in rows if isinstance(rows, list) else []:
        if (isinstance(row, list) and len(row) == 2 and isinstance(row[0], str)
                and (row[1] is None or isinstance(row[1], str))):
            out.append((row[0], row[1]))
    return out


def _remember(store: Store, key: str, value: str) -> bool:
    if len(value) > 1024:
        return False
    with store.session() as s:
        row = s.get(StoreMeta, key)
        if row is not None and row.value == value:
            return False
        if row is None:
            s.add(StoreMeta(key=key, value=value))
        else:
            row.value = value
            s.add(row)
        s.commit()
    return True
