"""`tui-oauth info ...`: our Consumer Info, who we are when we consume."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tui_oauth.cli.common import (
    app_context,
    confirm,
    examples,
    fail,
    fmt_time,
    needs_keyring,
    output_options,
    print_fields,
    print_record,
    say,
)
from tui_oauth.core.registry import services
from tui_oauth.core.unset import UNSET

if TYPE_CHECKING:  # the services (SQLAlchemy, SQLModel, cryptography) load when a command runs
    from tui_oauth.core.services.consumer_info import ConsumerInfoView


@click.group(epilog=examples(
    "  tui-oauth info show",
    "  tui-oauth info edit --name 'Our portal'",
    "  tui-oauth info export --format pem -o our-key.pem",
))
def info() -> None:
    """Our Consumer Info: key, name, key pair (created on first use)."""


def info_dict(view: ConsumerInfoView) -> dict[str, Any]:
    i, pk = view.info, view.public_key
    return {
        "key": i.key, "name": i.name, "description": i.description,
        "callback_url": i.callback_url,
        "public_key": {"base64": pk.base64_der, "pem": pk.pem, "bits": pk.bits,
                       "fingerprint": pk.fingerprint},
        "key_created_at": i.key_created_at, "created_at": i.created_at,
        "updated_at": i.updated_at,
    }


@info.command("show", epilog=examples(
    "  tui-oauth info show",
    "  tui-oauth info show -o json | jq -r .public_key.fingerprint",
    "  KEY=$(tui-oauth info show -q)",
))
@output_options("consumer key")
@needs_keyring
def show(output: str) -> None:
    """Show the Consumer Info and its public key (never the private key)."""
    view = services(app_context().store).consumer_info.view()
    i, pk = view.info, view.public_key
    print_record(output, info_dict(view), name=i.key, show=lambda: print_fields([
        ("Consumer key", i.key),
        ("Name", i.name),
        ("Description", i.description),
        ("Callback URL", i.callback_url),
        ("Public key", f"RSA {pk.bits} bits, {pk.fingerprint}"),
        ("Key created", fmt_time(i.key_created_at)),
        ("Public key (PEM)", pk.pem.strip()),
        ("Public key (base64)", pk.base64_der),
    ]))


@info.command("edit", epilog=examples(
    "  tui-oauth info edit --name 'Our portal' --description ''",
    "  tui-oauth info edit --callback https://portal.example.com/oauth/callback",
))
@click.option("--name")
@click.option("--description", help="'' clears it.")
@click.option("--callback", "callback_url", metavar="URL", help="'' clears it.")
@needs_keyring
def edit(name: str | None, description: str | None, callback_url: str | None) -> None:
    """Change the name, description or callback URL (the key never changes)."""
    if name is None and description is None and callback_url is None:
        raise click.UsageError("Nothing to change: give --name, --description or --callback.")
    services(app_context().store).consumer_info.edit(
        name=UNSET if name is None else name,
        description=UNSET if description is None else description,
        callback_url=UNSET if callback_url is None else callback_url,
    )
    say("Updated the Consumer Info.")


@info.command("export", epilog=examples(
    "  tui-oauth info export > consumer-info.xml",
    "  tui-oauth info export --format pem -o our-key.pem",
    "  tui-oauth info export --format base64",
))
@click.option("--format", "fmt", type=click.Choice(["xml", "pem", "base64"]), default="xml",
              show_default=True, help="consumer-info XML (what other applications fetch), "
                                      "or the public key.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
@click.option("--force", is_flag=True, help="Overwrite an existing --output file.")
@needs_keyring
def export(fmt: str, output: Path | None, force: bool) -> None:
    """Export the Consumer Info (public parts only)."""
    svc = services(app_context().store).consumer_info
    if fmt == "xml":
        data = svc.export_xml()
    elif fmt == "pem":
        data = svc.export_pem().encode()
    else:
        data = (svc.view().public_key.base64_der + "\n").encode()
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    if output.exists() and not force:
        fail(f"--output: {output} exists; add --force to overwrite it.")
    try:
        output.write_bytes(data)
    except OSError as exc:
        fail(f"--output: cannot write {output}: {exc.strerror}.")
    say(f"Wrote {fmt} to {output}.", err=True)


@info.command("rotate-key", epilog=examples(
    "  tui-oauth info rotate-key",
    "  tui-oauth info rotate-key --bits 3072 --yes",
    "  tui-oauth info rotate-key --overlap 7d --yes",
))
@click.option("--bits", type=click.Choice(["2048", "3072", "4096"]), default="2048",
              show_default=True)
@click.option("--overlap", default="0", show_default=True, metavar="DURATION",
              help="Keep publishing the old public key in our consumer-info document, as "
                   "<previousPublicKey>, for this long (24h, 7d; at most 90 days).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@needs_keyring
def rotate_key(bits: str, overlap: str, yes: bool) -> None:
    """Regenerate our RSA key pair.

    Every service provider that trusts the old public key stops accepting our
    requests until it is given the new one. --overlap helps only providers that
    read <previousPublicKey> from our consumer-info document: Atlassian's take one key
    (<publicKey>), so give each of them the new one at once.
    """
    from tui_oauth.core.timeutil import parse_duration

    try:
        window = parse_duration(overlap)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--overlap") from None
    svc = services(app_context().store).consumer_info
    current = svc.view()
    say(f"Current key: RSA {current.public_key.bits} bits, {current.fingerprint}")
    confirm("Regenerate the key pair (providers that trust the old public key will refuse "
            "our requests until they get the new one)?", yes)
    old, new = svc.rotate_key(int(bits), overlap=window)
    say(f"New key: RSA {new.bits} bits, {new.fingerprint} (was {old.fingerprint}).")
    if window:
        say("The old public key stays in our consumer-info document as <previousPublicKey> "
            "for the overlap; Atlassian providers read only <publicKey> (the new key).")
    say("Give the new public key to every provider: `tui-oauth info export`.")
