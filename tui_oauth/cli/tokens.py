"""`tui-oauth tokens ...` and `tui-oauth settings ...`: tokens we issued, and the
provider's lifetimes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from tui_oauth.cli.common import (
    LazyChoice,
    app_context,
    complete_consumer_keys,
    confirm,
    examples,
    fail,
    fmt_time,
    join_keyring,
    output_options,
    print_fields,
    print_json,
    print_names,
    print_record,
    print_records,
    say,
)
from tui_oauth.core.registry import services

if TYPE_CHECKING:  # the services (SQLAlchemy, SQLModel) load when a command runs
    from tui_oauth.core.services.tokens import TokenRow


def _types() -> tuple[str, ...]:
    from tui_oauth.core.services.tokens import TYPES

    return TYPES


def _states() -> tuple[str, ...]:
    from tui_oauth.core.services.tokens import STATES

    return STATES


@click.group(epilog=examples(
    "  tui-oauth tokens list --consumer jira:1354",
    "  tui-oauth tokens revoke --user alice",
    "  tui-oauth tokens purge",
))
def tokens() -> None:
    """Request and access tokens issued to consumers: list, revoke, purge, authorize."""


def _row(t: TokenRow) -> dict[str, Any]:
    return {"token": t.token, "consumer_key": t.consumer_key, "consumer_name": t.consumer_name,
            "type": t.type, "user": t.user, "state": t.state, "issued_at": t.issued_at,
            "expires_at": t.expires_at, "last_used_at": t.last_used_at}


#: Rows read from the store at a time by `tokens list --all` (the service's largest page);
#: the first page sets the table's column widths.
ALL_PAGE_SIZE = 1000
HEADERS = ["token", "consumer", "user", "type", "state", "issued", "expires", "last used"]


def _cells(t: TokenRow) -> list[str]:
    return [t.token, t.consumer_key, t.user or "-", t.type, t.state, fmt_time(t.issued_at),
            fmt_time(t.expires_at), fmt_time(t.last_used_at)]


@tokens.command("list", epilog=examples(
    "  tui-oauth tokens list --consumer jira:1354 --state active",
    "  tui-oauth tokens list --all -o jsonl | jq -r .user",
    "  for t in $(tui-oauth tokens list --all -q --user alice); do",
    "      tui-oauth tokens revoke --yes \"$t\"",
    "  done",
))
@click.option("--consumer", "consumer_key", metavar="KEY", help="Only this consumer's tokens.",
              shell_complete=complete_consumer_keys)
@click.option("--user", help="Only this user's tokens.")
@click.option("--type", "type_", type=LazyChoice(_types), help="request or access.")
@click.option("--state", type=LazyChoice(_states), help="Shown state (expired included).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--before", "before_id", type=int, metavar="ID", help="The next (older) page.")
@click.option("--all", "all_", is_flag=True,
              help="Every matching token (older than --before), streamed page after page "
                   "in constant memory, instead of one page of --limit.")
@output_options("tokens")
@click.pass_context
def list_(ctx: click.Context, consumer_key: str | None, user: str | None, type_: str | None,
          state: str | None, limit: int, before_id: int | None, all_: bool,
          output: str) -> None:
    """Tokens, newest first (never their secrets)."""
    service = services(app_context().store).tokens
    filters: dict[str, Any] = dict(consumer_key=consumer_key, user=user, type=type_,
                                   state=state)
    listing: dict[str, Any] = dict(record=_row, name=lambda t: t.token, headers=HEADERS,
                                   cells=_cells, empty="No tokens.", json_key="tokens")
    if all_:
        if ctx.get_parameter_source("limit") is not ParameterSource.DEFAULT:
            raise click.UsageError("--all lists every token; leave out --limit.")

        def rows() -> Iterator[TokenRow]:
            # Paged by id (keyset): each page is one indexed query, whatever the size.
            before = before_id
            while True:
                page = service.list(limit=ALL_PAGE_SIZE, before_id=before, **filters)
                yield from page.rows
                if page.next_before_id is None:
                    return
                before = page.next_before_id

        # JSON: the same document as one page's, with no next page.
        print_records(output, rows(), first=ALL_PAGE_SIZE,
                      shorten=["middle", "middle", "end", None, None, None, None, None],
                      json_after={"next_before": None}, **listing)
        return
    page = service.list(limit=limit, before_id=before_id, **filters)
    print_records(output, page.rows, json_after={"next_before": page.next_before_id},
                  **listing)
    if page.next_before_id and output != "json":
        # Beside the table, as before; after names or JSON lines, on stderr (not data).
        say(f"(more: --before {page.next_before_id}, or --all)", err=output != "table")


@tokens.command(epilog=examples(
    "  tui-oauth tokens revoke 3f1c2a...",
    "  tui-oauth tokens revoke --consumer jira:1354 --yes",
    "  tui-oauth tokens revoke --unused-days 90 --type access",
))
@click.argument("token", required=False)
@click.option("--consumer", "consumer_key", metavar="KEY", help="Every token of this consumer.",
              shell_complete=complete_consumer_keys)
@click.option("--user", help="Every token of this user.")
@click.option("--type", "type_", type=LazyChoice(_types), help="Only request or access tokens.")
@click.option("--expired", is_flag=True, help="Tokens past their expiry.")
@click.option("--unused-days", type=click.IntRange(0), metavar="N",
              help="Tokens not used for N days.")
@click.option("--yes", is_flag=True, help="Do not ask.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def revoke(token: str | None, consumer_key: str | None, user: str | None, type_: str | None,
           expired: bool, unused_days: int | None, yes: bool, as_json: bool) -> None:
    """Revoke TOKEN, or every live token matching the options (the count is shown first).

    Takes effect on the consumer's next request.
    """
    store = app_context().store
    bulk = any(v is not None for v in (consumer_key, user, unused_days)) or expired
    if token and bulk:
        raise click.UsageError("Give a TOKEN or selection options, not both.")
    if token:
        confirm(f"Revoke token {token}?", yes)
        row = services(store).tokens.revoke(token)
        if as_json:
            print_json(_row(row))
        else:
            say(f"Token {row.token} ({row.consumer_key}, {row.user or '-'}): {row.state}.")
        return
    if not bulk:
        raise click.UsageError("Give a TOKEN, or --consumer, --user, --expired or --unused-days.")
    from tui_oauth.core.services.tokens import TokenSelection

    sel = TokenSelection(consumer_key=consumer_key, user=user, type=type_, expired=expired,
                         unused_days=unused_days)
    count = services(store).tokens.count(sel)
    if count == 0:
        if as_json:
            print_json({"revoked": 0})
        else:
            say("No live token matches; nothing to revoke.")
        return
    confirm(f"Revoke {count} token(s)?", yes)
    n = services(store).tokens.revoke_where(sel)
    if as_json:
        print_json({"revoked": n})
    else:
        say(f"Revoked {n} token(s).")


@tokens.command(epilog=examples(
    "  tui-oauth tokens purge",
    "  tui-oauth tokens purge --nonce-age 3600 --json",
))
@click.option("--nonce-age", type=click.IntRange(60), default=None, metavar="SECONDS",
              help="Delete nonces older than this (default: the timestamp window + 60 s).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def purge(nonce_age: int | None, as_json: bool) -> None:
    """Delete expired, used, denied and long-revoked tokens, old nonces, and rotated
    shared secrets past their overlap.

    Batched, safe while the server runs; the server prunes nonces itself too.
    """
    from tui_oauth.core.provider.settings import ProviderSettings

    store = app_context().store
    n_tokens = services(store).tokens.purge()
    age = nonce_age if nonce_age is not None else ProviderSettings.load(store).timestamp_window + 60
    n_nonces = services(store).tokens.purge_nonces(age)
    n_secrets = 0
    if services(store).consumers.old_secrets_due():  # rotated secrets whose overlap ended
        join_keyring()
        n_secrets = services(store).consumers.forget_old_secrets()
    services(store).consumer_info.forget_previous_key()  # our rotated public key, past its overlap
    if as_json:
        print_json({"tokens": n_tokens, "nonces": n_nonces, "old_secrets": n_secrets})
    else:
        say(f"Purged {n_tokens} token(s) and {n_nonces} nonce(s)"
            + (f", and deleted {n_secrets} rotated shared secret(s) past their overlap."
               if n_secrets else "."))


@tokens.command(epilog=examples(
    "  tui-oauth tokens authorize 8a7b... --user alice",
    "  tui-oauth tokens authorize 8a7b... --user alice --deny",
))
@click.argument("request_token")
@click.option("--user", required=True, help="The user who approves (the token acts as them).")
@click.option("--deny", is_flag=True, help="Deny instead: the consumer gets oauth_verifier=denied.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def authorize(request_token: str, user: str, deny: bool, as_json: bool) -> None:
    """Approve a pending REQUEST_TOKEN as USER and print the verifier (out-of-band flow)."""
    tokens_svc = services(app_context().store).tokens
    result = (tokens_svc.deny if deny else tokens_svc.authorize)(request_token, user)
    redirect = result.redirect_url()
    if as_json:
        print_json({"token": result.token, "consumer_key": result.consumer_key,
                    "user": result.user, "approved": result.approved,
                    "verifier": result.verifier, "callback": redirect})
        return
    if result.approved:
        say(result.verifier)
        say(f"Approved for {result.consumer_name} ({result.consumer_key}) as "
            f"{result.user}; give the verifier above to the application.", err=True)
    else:
        say(f"Denied {result.consumer_name} ({result.consumer_key}).", err=True)
    if redirect:
        say(f"Callback: {redirect}", err=True)


@click.group(epilog=examples(
    "  tui-oauth settings show",
    "  tui-oauth settings set access_token_ttl 86400",
))
def settings() -> None:
    """Provider settings: token lifetimes and the timestamp window (seconds), and how
    much a refusal tells (problem_detail: full or minimal)."""


@settings.command("show", epilog=examples(
    "  tui-oauth settings show",
    "  tui-oauth settings show -o json | jq .timestamp_window",
    "  tui-oauth settings show -q",
))
@output_options("setting names")
def settings_show(output: str) -> None:
    """The current values."""
    from tui_oauth.core.provider.settings import SPEC, ProviderSettings

    values = ProviderSettings.load(app_context().store).as_dict()
    if output == "name":
        print_names(values)
        return
    print_record(output, values, name=None, show=lambda: print_fields(
        [(f"{k} ({SPEC[k][3]})", v) for k, v in values.items()]))


@settings.command("set", epilog=examples(
    "  tui-oauth settings set request_token_ttl 600",
    "  tui-oauth settings set problem_detail minimal",
))
@click.argument("name")
@click.argument("value")
def settings_set(name: str, value: str) -> None:
    """Set NAME to VALUE: seconds for the lifetimes and the window, full or minimal for
    problem_detail (`settings show` lists them; a running server applies it when
    restarted)."""
    from tui_oauth.core.errors import ValidationError
    from tui_oauth.core.provider.settings import set_setting

    try:
        number = set_setting(app_context().store, name, value)
    except ValidationError as exc:  # each message names the setting: no "--name:" before it
        fail(" ".join(e.message for e in exc.errors) or str(exc))
    say(f"{name} = {number}. Restart `tui-oauth serve` to apply it.")

