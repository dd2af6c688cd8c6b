"""`tui-oauth consumers ...`: applications allowed to consume our resources."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tui_oauth.cli.common import (
    LazyChoice,
    app_context,
    complete_consumer_keys,
    confirm,
    examples,
    fmt_bool,
    fmt_time,
    needs_keyring,
    output_options,
    print_fields,
    print_json,
    print_record,
    print_records,
    read_secret,
    read_text_file,
    say,
    secret_edit,
    secret_options,
    touches_secret,
)
from tui_oauth.core.errors import FetchError, FieldError, ValidationError
from tui_oauth.core.registry import services
from tui_oauth.core.unset import UNSET

if TYPE_CHECKING:  # the models and services (SQLAlchemy, SQLModel) load when a command runs
    from tui_oauth.core.models import Consumer
    from tui_oauth.core.services.consumers import ConsumerDetail, ConsumerPreview
    from tui_oauth.core.sqlite_reads import ConsumerSummary

#: core.models.CONSUMER_SIGNATURE_METHODS, written out so that loading this module (for
#: --help or a TAB) does not import the models; tests/cli/test_cli_speed.py checks they agree.
METHOD = "RSA-SHA1|HMAC-SHA1"
#: Rows read from the store at a time by `consumers list`; the first page sets the
#: table's column widths.
LIST_PAGE_SIZE = 1000


@click.group(epilog=examples(
    "  tui-oauth consumers list",
    "  tui-oauth consumers add --from-url https://jira.example.com",
    "  tui-oauth consumers show jira:1354",
))
def consumers() -> None:
    """Applications allowed to use our resources."""


def consumer_dict(detail: ConsumerDetail) -> dict[str, Any]:
    c = detail.consumer
    pk = detail.public_key
    return {
        "key": c.key,
        "name": c.name,
        "description": c.description,
        "signature_method": c.signature_method,
        "public_key": None if pk is None else {
            "base64": pk.base64_der, "bits": pk.bits, "fingerprint": pk.fingerprint,
            "warnings": list(pk.warnings),
        },
        "has_shared_secret": c.has_shared_secret,
        "previous_secret_until": c.previous_secret_until,
        "allow_plaintext": c.allow_plaintext,
        "callback_url": c.callback_url,
        "three_lo_allowed": c.three_lo_allowed,
        "two_lo_allowed": c.two_lo_allowed,
        "two_lo_execute_as": c.two_lo_execute_as,
        "two_lo_impersonation": c.two_lo_impersonation,
        "request_tokens": detail.request_tokens,
        "access_tokens": detail.access_tokens,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }


def _sort_columns() -> list[str]:
    from tui_oauth.core.sqlite_reads import CONSUMER_SORTS

    return sorted(CONSUMER_SORTS)


def _summaries(filter_: str | None, sort: str, desc: bool) -> Iterator[ConsumerSummary]:
    """The consumers list, read directly from an up-to-date SQLite store when it is one
    (core/sqlite_reads.py: no SQLAlchemy to import, ~440 ms less), else by the service."""
    from tui_oauth.core.config import resolve_db_url
    from tui_oauth.core.sqlite_reads import consumer_summaries, open_current

    ctx = app_context()
    db = open_current(resolve_db_url(ctx.db))
    if db is None:
        yield from services(ctx.store).consumers.iter_list(filter_, sort=sort, descending=desc,
                                                           page_size=LIST_PAGE_SIZE)
        return
    try:
        yield from consumer_summaries(db, filter_, sort=sort, descending=desc,
                                      page_size=LIST_PAGE_SIZE)
    finally:
        db.close()


@consumers.command("list", epilog=examples(
    "  tui-oauth consumers list --filter jira --sort created --desc",
    "  tui-oauth consumers list -o jsonl | jq -r .name",
    "  for k in $(tui-oauth consumers list -q --filter jira); do",
    "      tui-oauth consumers show \"$k\"",
    "  done",
))
@click.option("--filter", "filter_", metavar="TEXT", help="Only those whose key, name or "
              "description contains TEXT (any case).")
@click.option("--sort", type=LazyChoice(_sort_columns), default="key", show_default=True)
@click.option("--desc", is_flag=True, help="Sort in descending order.")
@output_options("keys")
def list_(filter_: str | None, sort: str, desc: bool, output: str) -> None:
    """List consumers (no secret is read)."""
    # Every form streams: constant memory however many consumers there are, and the
    # table's first page prints at once (and sets the column widths).
    print_records(
        output, _summaries(filter_, sort, desc),
        record=lambda r: r, name=lambda r: r.key,
        headers=["key", "name", "signature", "2lo", "tokens", "created"],
        cells=lambda r: [r.key, r.name, r.signature_method, fmt_bool(r.two_lo_allowed),
                         r.token_count, fmt_time(r.created_at)],
        first=LIST_PAGE_SIZE, shorten=["middle", "end", None, None, None, None],
        empty="No consumers." + (" (none match the filter)" if filter_ else
                                 " Add one with `tui-oauth consumers add`."),
    )


def show_detail(detail: ConsumerDetail, extra: list[tuple[str, Any]] | None = None) -> None:
    c, pk = detail.consumer, detail.public_key
    print_fields([
        ("Key", c.key),
        ("Name", c.name),
        ("Description", c.description),
        ("Signature method", c.signature_method + (" (+PLAINTEXT over https)"
                                                   if c.allow_plaintext else "")),
        ("Public key", f"RSA {pk.bits} bits, {pk.fingerprint}" if pk else None),
        *[("  warning", w) for w in (pk.warnings if pk else ())],
        ("Shared secret", "set (in the keyring)" if c.has_shared_secret else "none"),
        ("  previous", f"still accepted until {fmt_time(c.previous_secret_until)} UTC"
                       if c.previous_secret_until else None),
        ("Callback URL", c.callback_url),
        ("3-legged OAuth", "allowed" if c.three_lo_allowed else "off"),
        ("2-legged OAuth", "allowed" if c.two_lo_allowed else "off"),
        ("  execute as", (c.two_lo_execute_as or "anonymous") if c.two_lo_allowed else None),
        ("  impersonation", fmt_bool(c.two_lo_impersonation) if c.two_lo_allowed else None),
        ("Tokens", f"{detail.access_tokens} access, {detail.request_tokens} request"),
        ("Created", fmt_time(c.created_at)),
        ("Updated", fmt_time(c.updated_at)),
        *(extra or []),
    ])


@consumers.command("show", epilog=examples(
    "  tui-oauth consumers show jira:1354",
    "  tui-oauth consumers show jira:1354 -o json",
    "  tui-oauth consumers show jira:1354 --public-key > jira.pem",
))
@click.argument("key", shell_complete=complete_consumer_keys)
@click.option("--public-key", "pem", is_flag=True, help="Print only the public key as PEM.")
@output_options("key")
def show(key: str, pem: bool, output: str) -> None:
    """Show one consumer (the shared secret is never printed), its clock against ours
    and its recorded refusals (count by problem, the last one)."""
    detail = services(app_context().store).consumers.detail(key)
    if pem:
        if detail.public_key is None:
            raise click.ClickException(f"Consumer {key!r} has no public key.")
        click.echo(detail.public_key.pem, nl=False)
        return
    store = app_context().store
    summary = services(store).refusals.summary(detail.consumer.key, recent=1)
    clock = services(store).refusals.clock(detail.consumer.key)
    last = summary.recent[0].at if summary.recent else None
    diagnostics = {
        "clock": None if clock is None else {
            "median_offset": clock.median_offset, "samples": clock.samples,
            "updated_at": clock.updated_at, "words": clock.words},
        "refusals": {"total": summary.total, "by_problem": summary.counts, "last_at": last},
    }

    def people() -> None:
        counts = ", ".join(f"{n} {p}" for p, n in summary.counts.items())
        show_detail(detail, [pair for pair in [
            ("Clock", f"{clock.words} (as of {fmt_time(clock.updated_at)} UTC)"
             if clock is not None else "not measured yet (no signed request seen)"),
            ("Refusals", f"{summary.total} ({counts})" if summary.total else "none recorded"),
            ("  last", f"{fmt_time(last)} UTC (`tui-oauth refusals list --consumer "
                       f"{detail.consumer.key}`)" if last is not None else None),
        ] if pair[1] is not None])

    print_record(output, {**consumer_dict(detail), **diagnostics}, name=detail.consumer.key,
                 show=people)


def field_options(fn: Any, *, adding: bool) -> Any:
    """The options shared by add and edit (edit leaves out what is not given)."""
    opts = [
        click.option("--name", help="Shown to users when they approve access."),
        click.option("--description"),
        click.option("--public-key-file", metavar="PATH",
                     help="RSA public key: PEM, PKCS#1, X.509 certificate or bare base64 DER "
                          "('-' reads standard input)."),
        click.option("--callback", "callback_url", metavar="URL",
                     help="Used only when the consumer sends none."),
        click.option("--signature-method", metavar=METHOD,
                     help="Default: RSA-SHA1 with a public key, else HMAC-SHA1."),
        click.option("--allow-plaintext/--no-allow-plaintext", default=False if adding else None,
                     help="Also accept PLAINTEXT signatures over https (needs a secret)."),
        click.option("--3lo/--no-3lo", "three_lo", default=True if adding else None,
                     help="Allow 3-legged OAuth (default: allowed)."),
        click.option("--2lo/--no-2lo", "two_lo", default=False if adding else None,
                     help="Allow 2-legged OAuth (default: off)."),
        click.option("--execute-as", metavar="USER",
                     help="2LO requests run as this user (blank: anonymous)."),
        click.option("--impersonation/--no-impersonation", default=False if adding else None,
                     help="Let 2LO requests name the user (xoauth_requestor_id)."),
    ]
    for opt in opts:  # applied to a Command, each option is appended in turn
        fn = opt(fn)
    return secret_options(fn)


def _public_key(path: str | None) -> str | None:
    return None if path is None else read_text_file(path, "--public-key-file")


def _print_preview(preview: ConsumerPreview) -> None:
    doc, f = preview.fetched.doc, preview.fetched
    say(f"Fetched {f.final_url} ({f.status}, {f.content_type}, {f.elapsed:.2f} s):")
    print_fields([
        ("Key", doc.key),
        ("Name", doc.name),
        ("Description", doc.description),
        ("Callback URL", doc.callback),
        ("Public key", f"RSA {doc.public_key.bits} bits, {doc.public_key.fingerprint}"),
        *[("  warning", w) for w in doc.public_key.warnings],
    ])


@consumers.command("add", epilog=examples(
    "  tui-oauth consumers add --from-url https://jira.example.com",
    "  tui-oauth consumers add --key app:1 --name 'My app' --public-key-file app.pem",
    "  tui-oauth consumers add --key app:2 --name 'HMAC app' --secret-file secret.txt",
))
@click.option("--from-url", "from_url", metavar="URL",
              help="The consumer application's base URL: fetches "
                   "URL/plugins/servlet/oauth/consumer-info and shows it before saving.")
@click.option("--key", help="The consumer key (unique; cannot change later).")
@click.option("--timeout", type=click.FloatRange(0.5, 120), default=10.0, show_default=True,
              help="Seconds for the whole --from-url fetch (DNS, connect, headers, body).")
@click.option("--allow-private", is_flag=True,
              help="With --from-url: also fetch from loopback, private and link-local "
                   "addresses (a server on your intranet). Cloud metadata addresses stay "
                   "refused.")
@click.option("--yes", "-y", is_flag=True, help="Save a fetched consumer without asking.")
@click.option("--json", "as_json", is_flag=True, help="Print the new consumer as JSON.")
@needs_keyring(when=touches_secret)
def add(from_url: str | None, key: str | None, timeout: float, allow_private: bool, yes: bool,
        as_json: bool,
        secret_stdin: bool, secret_file: Path | None, public_key_file: str | None,
        **fields: Any) -> None:
    """Add a consumer by hand, or --from-url from its consumer-info document."""
    store = app_context().store
    secret = read_secret(secret_stdin, secret_file)
    values = _field_values(fields)
    if from_url:
        if key:
            raise click.UsageError("--key comes from the fetched document; leave it out.")
        if public_key_file:
            raise click.UsageError("--public-key-file comes from the fetched document.")
        preview = _preview(from_url, timeout, allow_private)
        if not as_json:
            _print_preview(preview)
        if preview.existing is not None:
            raise click.ClickException(_exists_message(preview, preview.existing))
        if not yes:
            confirm("Add this consumer?", yes)
        consumer = services(store).consumers.add_from_preview(preview, shared_secret=secret,
                                                              **values)
    else:
        values.setdefault("name", "")
        consumer = services(store).consumers.add(key=key or "",
                                                 public_key=_public_key(public_key_file),
                                                 shared_secret=secret, **values)
    _report(consumer, "Added", as_json)


def _exists_message(preview: ConsumerPreview, existing: Any) -> str:
    """Adding by URL a consumer whose key is stored: what to do instead, without removing
    it (removing deletes its tokens)."""
    from tui_oauth.core.text import command_line, visible

    doc = preview.fetched.doc
    said = (f"A consumer with key {visible(preview.key)!r} already exists (named "
            f"{visible(existing.name)!r})")
    if existing.public_key == doc.public_key.base64_der:
        edit = command_line("consumers", "edit", "--name", "NAME", values=[preview.key])
        return (f"{said} with this same public key: nothing to add. Change its other "
                f"fields with `{edit}` (or the other options of `consumers edit`).")
    edit = command_line("consumers", "edit", "--public-key-file", "FILE",
                        values=[preview.key])
    return (f"{said} with another public key; the fetched one is "
            f"{doc.public_key.fingerprint}. To give it the fetched key and keep its "
            f"tokens, save the key (the document's <publicKey>) to FILE and run `{edit}`.")


# Fields of a fetched consumer-info document -> its XML elements.
DOC_ELEMENTS = {"key": "key", "name": "name", "public_key": "publicKey",
                "description": "description", "callback": "callback"}


def _preview(url: str, timeout: float, allow_private: bool) -> ConsumerPreview:
    """Fetch by URL; a problem in the document is about --from-url, not --key etc."""
    try:
        return services(app_context().store).consumers.preview_from_url(url, timeout=timeout,
                                                                        allow_private=allow_private)
    except FetchError as exc:
        refusal = getattr(exc, "refusal", None)  # FetchRefusedError: an address refused
        if refusal is not None and refusal.allowable and not allow_private:
            raise FetchError(f"{exc} If this server is on your intranet, use "
                             "--allow-private.") from None
        raise
    except ValidationError as exc:
        errors = []
        for e in exc.errors:
            element = DOC_ELEMENTS.get(e.field)
            message = e.message
            if element and not message.startswith(f"<{element}>"):
                message = f"<{element}> in the fetched document: {message}"
            errors.append(FieldError("url", message))
        raise ValidationError(errors) from None


def _field_values(fields: dict[str, Any]) -> dict[str, Any]:
    """Map option names to service arguments, dropping those not given (None)."""
    names = {"three_lo": "three_lo_allowed", "two_lo": "two_lo_allowed",
             "execute_as": "two_lo_execute_as", "impersonation": "two_lo_impersonation"}
    return {names.get(k, k): v for k, v in fields.items() if v is not None}


def _report(consumer: Consumer, verb: str, as_json: bool) -> None:
    detail = services(app_context().store).consumers.detail(consumer.key)
    if as_json:
        print_json(consumer_dict(detail))
    else:
        say(f"{verb} consumer {consumer.key!r} ({consumer.name}).")
    if detail.public_key is not None and detail.public_key.weak:
        say(f"warning: its public key has {detail.public_key.bits} bits; keys under 2048 bits "
            "can be broken. Ask the consumer's admin for a 2048-bit (or larger) key pair.",
            err=True)


@consumers.command("edit", epilog=examples(
    "  tui-oauth consumers edit app:1 --name 'New name' --2lo --execute-as alice",
    "  tui-oauth consumers edit app:1 --public-key-file new.pem",
    "  tui-oauth consumers edit app:2 --secret-stdin < secret.txt",
))
@click.argument("key", shell_complete=complete_consumer_keys)
@click.option("--remove-secret", is_flag=True, help="Delete the shared secret.")
@click.option("--json", "as_json", is_flag=True, help="Print the consumer as JSON.")
@needs_keyring(when=touches_secret)
def edit(key: str, remove_secret: bool, as_json: bool, secret_stdin: bool,
         secret_file: Path | None, public_key_file: str | None, **fields: Any) -> None:
    """Change a consumer (anything but its key); only the options given change."""
    store = app_context().store
    secret = secret_edit(secret_stdin, secret_file, remove_secret)
    values = _field_values(fields)
    if public_key_file is not None:
        values["public_key"] = _public_key(public_key_file)
    if not values and secret is UNSET and not remove_secret:
        raise click.UsageError("Nothing to change: give at least one option (see --help).")
    consumer = services(store).consumers.edit(key, shared_secret=secret, **values)
    _report(consumer, "Updated", as_json)


for _cmd, _adding in ((add, True), (edit, False)):
    field_options(_cmd, adding=_adding)


@consumers.command("remove", epilog=examples(
    "  tui-oauth consumers remove app:1",
    "  tui-oauth consumers remove app:1 --yes",
))
@click.argument("key", shell_complete=complete_consumer_keys)
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@needs_keyring
def remove(key: str, yes: bool) -> None:
    """Remove a consumer with all its tokens: it loses access at once."""
    store = app_context().store
    detail = services(store).consumers.detail(key)
    confirm(f"Remove consumer {key!r} ({detail.consumer.name}) and its "
            f"{detail.token_count} token(s)?", yes)
    n = services(store).consumers.remove(key)
    say(f"Removed consumer {key!r} and {n} token(s).")


@consumers.command("rotate-secret", epilog=examples(
    "  tui-oauth consumers rotate-secret partner --overlap 24h   # prints the new secret",
    "  tui-oauth consumers rotate-secret partner --secret-file new.txt --overlap 7d",
    "  tui-oauth consumers rotate-secret partner --overlap 0 --json",
))
@click.argument("key", shell_complete=complete_consumer_keys)
@click.option("--overlap", default="24h", show_default=True, metavar="DURATION",
              help="How long the old secret keeps working beside the new one (30m, 24h, 7d; "
                   "0: it stops at once; at most 90 days).")
@secret_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@needs_keyring
def rotate_secret(key: str, overlap: str, secret_stdin: bool, secret_file: Path | None,
                  as_json: bool) -> None:
    """Give consumer KEY a new shared secret without an outage: the old one is still
    accepted for the overlap, then forgotten (by `serve`, or `tokens purge`).

    The new secret is read from --secret-stdin/--secret-file, or generated and printed
    once on standard output: give it to the consumer's administrator.
    """
    from tui_oauth.core.timeutil import parse_duration

    try:
        window = parse_duration(overlap)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--overlap") from None
    given = read_secret(secret_stdin, secret_file)
    rotation = services(app_context().store).consumers.rotate_secret(key, secret=given,
                                                                     overlap=window)
    until = (f"the old one works until {fmt_time(rotation.previous_until)} UTC"
             if rotation.previous_until else "the old one no longer works")
    if as_json:
        print_json({"key": key, "secret": rotation.secret if rotation.generated else None,
                    "previous_secret_until": rotation.previous_until})
        return
    if rotation.generated:
        click.echo(rotation.secret)
    say(f"Rotated the shared secret of {key!r}; {until}.", err=True)
