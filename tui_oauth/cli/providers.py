"""`tui-oauth providers ...`: service providers whose resources we consume."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tui_oauth.cli.common import (
    app_context,
    complete_provider_names,
    confirm,
    examples,
    fmt_time,
    needs_keyring,
    output_options,
    print_fields,
    print_json,
    print_record,
    print_records,
    read_secret,
    say,
    secret_edit,
    secret_options,
)
from tui_oauth.core.registry import services
from tui_oauth.core.unset import UNSET

if TYPE_CHECKING:  # the models and services (SQLAlchemy, SQLModel) load when a command runs
    from tui_oauth.core.models import ServiceProvider

#: core.models.PROVIDER_SIGNATURE_METHODS, written out so that loading this module (for
#: --help or a TAB) does not import the models; tests/cli/test_cli_speed.py checks they agree.
METHOD = "HMAC-SHA1|RSA-SHA1|PLAINTEXT"


def provider_warnings(p: ServiceProvider) -> list[str]:
    from tui_oauth.core.services.providers import provider_warnings as warnings

    return list(warnings(p))


@click.group(epilog=examples(
    "  tui-oauth providers list",
    "  tui-oauth providers add --name jira --consumer-key tui-oauth \\",
    "      --request-token-url https://jira.example.com/plugins/servlet/oauth/request-token \\",
    "      --authorization-url https://jira.example.com/plugins/servlet/oauth/authorize \\",
    "      --access-token-url https://jira.example.com/plugins/servlet/oauth/access-token \\",
    "      --signature-method RSA-SHA1",
    "  tui-oauth providers connect jira",
    "  tui-oauth providers call jira /rest/api/2/myself",
))
def providers() -> None:
    """Service providers whose resources we consume."""


def provider_dict(p: ServiceProvider, tokens: int) -> dict[str, Any]:
    return {
        "name": p.name, "description": p.description, "consumer_key": p.consumer_key,
        "signature_method": p.signature_method, "has_shared_secret": p.has_shared_secret,
        "request_token_url": p.request_token_url, "authorization_url": p.authorization_url,
        "access_token_url": p.access_token_url, "allow_private": p.allow_private,
        "held_tokens": tokens,
        "warnings": provider_warnings(p), "created_at": p.created_at, "updated_at": p.updated_at,
    }


@providers.command("list", epilog=examples(
    "  tui-oauth providers list --filter jira",
    "  tui-oauth providers list -o jsonl",
    "  for p in $(tui-oauth providers list -q); do tui-oauth providers test \"$p\"; done",
))
@click.option("--filter", "filter_", metavar="TEXT", help="Name, consumer key or description.")
@output_options("names")
def list_(filter_: str | None, output: str) -> None:
    """List service providers (no secret is read)."""
    print_records(
        output, services(app_context().store).providers.list(filter_),
        record=lambda r: r, name=lambda r: r.name,
        headers=["name", "consumer key", "signature", "secret", "tokens", "created"],
        cells=lambda r: [r.name, r.consumer_key, r.signature_method,
                         "set" if r.has_shared_secret else "-", r.token_count,
                         fmt_time(r.created_at)],
        empty="No service providers." + ("" if filter_ else
                                         " Add one with `tui-oauth providers add`."),
    )


@providers.command("show", epilog=examples(
    "  tui-oauth providers show jira",
    "  tui-oauth providers show jira -o json | jq .warnings",
))
@click.argument("name", shell_complete=complete_provider_names)
@output_options("name")
def show(name: str, output: str) -> None:
    """Show one service provider (the shared secret is never printed)."""
    svc = services(app_context().store).providers
    p = svc.get(name)
    tokens = svc.token_count(name)

    def fields() -> None:
        print_fields([
            ("Name", p.name),
            ("Description", p.description),
            ("Consumer key", p.consumer_key),
            ("Shared secret", "set (in the keyring)" if p.has_shared_secret else "none"),
            ("Signature method", p.signature_method),
            ("Request token URL", p.request_token_url),
            ("Authorization URL", p.authorization_url),
            ("Access token URL", p.access_token_url),
            ("Private addresses", "allowed" if p.allow_private else "refused (public only)"),
            ("Tokens held", tokens),
            ("Created", fmt_time(p.created_at)),
            ("Updated", fmt_time(p.updated_at)),
        ])
        for w in provider_warnings(p):
            say(f"warning: {w}", err=True)

    print_record(output, provider_dict(p, tokens), name=p.name, show=fields)


def field_options(fn: Any, *, adding: bool) -> Any:
    opts = [
        click.option("--description"),
        click.option("--consumer-key", help="The key the provider gave us."),
        click.option("--signature-method", metavar=METHOD,
                     help="HMAC-SHA1 (default), RSA-SHA1 (signs with our Consumer Info key), "
                          "PLAINTEXT (https only)."),
        click.option("--request-token-url", metavar="URL"),
        click.option("--authorization-url", metavar="URL"),
        click.option("--access-token-url", metavar="URL"),
        click.option("--allow-private/--no-allow-private", default=None,
                     help="Let requests to this provider reach loopback and intranet "
                          "addresses (refused by default)."),
    ]
    for opt in opts:  # applied to a Command, each option is appended in turn
        fn = opt(fn)
    return secret_options(fn)


def _warn(p: ServiceProvider) -> None:
    for w in provider_warnings(p):
        say(f"warning: {w}", err=True)


@providers.command("add", epilog=examples(
    "  tui-oauth providers add --name jira --consumer-key tui-oauth \\",
    "      --request-token-url https://jira.example.com/plugins/servlet/oauth/request-token \\",
    "      --authorization-url https://jira.example.com/plugins/servlet/oauth/authorize \\",
    "      --access-token-url https://jira.example.com/plugins/servlet/oauth/access-token \\",
    "      --signature-method RSA-SHA1",
    "  ... --signature-method HMAC-SHA1 --secret-file secret.txt",
))
@click.option("--name", required=True, help="Unique name.")
@click.option("--json", "as_json", is_flag=True, help="Print the provider as JSON.")
@needs_keyring
def add(name: str, as_json: bool, secret_stdin: bool, secret_file: Path | None,
        **fields: Any) -> None:
    """Add a service provider."""
    svc = services(app_context().store).providers
    secret = read_secret(secret_stdin, secret_file)
    missing = [f"--{k.replace('_', '-')}" for k in
               ("consumer_key", "request_token_url", "authorization_url", "access_token_url")
               if not fields.get(k)]
    if missing:
        raise click.UsageError(f"Missing {', '.join(missing)}.")
    p = svc.add(name=name, shared_secret=secret, **fields)
    _warn(p)
    if as_json:
        print_json(provider_dict(p, 0))
    else:
        say(f"Added service provider {p.name!r}.")


@providers.command("edit", epilog=examples(
    "  tui-oauth providers edit jira --new-name jira-prod",
    "  tui-oauth providers edit jira --secret-stdin < secret.txt",
    "  tui-oauth providers edit jira --allow-private",
))
@click.argument("name", shell_complete=complete_provider_names)
@click.option("--new-name", help="Rename the provider.")
@click.option("--remove-secret", is_flag=True, help="Delete the shared secret.")
@click.option("--json", "as_json", is_flag=True, help="Print the provider as JSON.")
@needs_keyring
def edit(name: str, new_name: str | None, remove_secret: bool, as_json: bool,
         secret_stdin: bool, secret_file: Path | None, **fields: Any) -> None:
    """Change a service provider; only the options given change."""
    svc = services(app_context().store).providers
    secret = secret_edit(secret_stdin, secret_file, remove_secret)
    values = {k: v for k, v in fields.items() if v is not None}
    if new_name is not None:
        values["name"] = new_name
    if not values and secret is UNSET:
        raise click.UsageError("Nothing to change: give at least one option (see --help).")
    p = svc.edit(name, shared_secret=secret, **values)
    _warn(p)
    if as_json:
        print_json(provider_dict(p, svc.token_count(p.name)))
    else:
        say(f"Updated service provider {p.name!r}.")


for _cmd, _adding in ((add, True), (edit, False)):
    field_options(_cmd, adding=_adding)


@providers.command("remove", epilog=examples(
    "  tui-oauth providers remove jira",
    "  tui-oauth providers remove jira --yes",
))
@click.argument("name", shell_complete=complete_provider_names)
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@needs_keyring
def remove(name: str, yes: bool) -> None:
    """Remove a service provider and the tokens we hold from it."""
    svc = services(app_context().store).providers
    tokens = svc.token_count(name)
    confirm(f"Remove service provider {name!r} and the {tokens} token(s) we hold from it?", yes)
    n = svc.remove(name)
    say(f"Removed service provider {name!r} and {n} token(s).")
