"""`tui-oauth export` and `tui-oauth import`: the configuration from one store to another.

Also the helpers `keyring export-data-key` / `import-data-key` share: the
passphrase (asked twice without echo, or the first line of --passphrase-file,
never an argument or an environment variable) and the output file (0600).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tui_oauth.cli.common import (
    F,
    app_context,
    fail,
    needs_keyring,
    print_json,
    read_head,
    say,
)

if TYPE_CHECKING:
    from tui_oauth.core.transfer import Change, ImportReport, Incoming

MAX_PASSPHRASE = 4096
#: A command's epilog, as cli.common.examples writes it (click's \b keeps the lines).
EXAMPLES = "Examples:\n\n\b\n"
#: core.transfer.MAX_DOCUMENT, written out so that --help loads no database layer.
MAX_INPUT = 256 * 1024 * 1024


def passphrase_option(fn: F) -> F:
    return click.option(
        "--passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
        help="Read the passphrase from this file (its first line) instead of asking.")(fn)


def read_passphrase(passphrase_file: Path | None, *, new: bool) -> str:
    """The passphrase: from the file's first line, or asked on the terminal without
    echo (twice when ``new``, so that a typo does not lock the file)."""
    if passphrase_file is not None:
        data = read_head(passphrase_file, "--passphrase-file", MAX_PASSPHRASE)
        line = data.split("\n", 1)[0].rstrip("\r")
        if len(line) > MAX_PASSPHRASE:
            fail(f"--passphrase-file: the first line is longer than {MAX_PASSPHRASE} "
                 "characters; is it the right file?")
        if not line:
            fail("--passphrase-file: the first line is empty; put the passphrase there.")
        return line
    if not sys.stdin.isatty():
        fail("No terminal to ask for the passphrase on; give --passphrase-file FILE "
             "(the passphrase on its first line). Nothing was changed.")
    value: str = click.prompt("Passphrase (not shown)", hide_input=True, err=True,
                              confirmation_prompt="Again, to confirm" if new else False)
    return value


#: -o/--output FILE never replaces a file unless --force (as `info export -o` does).
force_option = click.option("--force", is_flag=True,
                            help="Overwrite an existing --output file.")


def refuse_existing(output: Path | None, force: bool) -> None:
    """Exit 1 if ``output`` exists and not ``force``: said before anything is asked or
    done, so no passphrase is typed for nothing."""
    if output is not None and not force and os.path.lexists(output):
        fail(f"--output: {output} exists; add --force to overwrite it.")


def write_output(output: Path | None, text: str, *, force: bool = False) -> None:
    """To standard output, or to ``output`` (mode 0600, written whole then put in place):
    an existing file only with ``force``, replaced atomically."""
    if output is None:
        click.echo(text, nl=False)
        return
    refuse_existing(output, force)
    directory = output.resolve().parent
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{output.name}.", suffix=".tmp")
    except OSError as exc:
        fail(f"--output: cannot write in {directory}: {exc.strerror}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:  # mkstemp makes it 0600
            fh.write(text)
        if force:
            os.replace(tmp, output)
        else:  # a link fails if a file appeared there meanwhile: never replaced unasked
            os.link(tmp, output)
            os.unlink(tmp)
    except FileExistsError:
        Path(tmp).unlink(missing_ok=True)
        fail(f"--output: {output} exists; add --force to overwrite it.")
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        fail(f"--output: cannot write {output}: {exc.strerror}.")


def read_input(path: Path, limit: int = MAX_INPUT) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        fail(f"{path}: cannot read it: {exc.strerror}.")
    if len(data) > limit:
        fail(f"{path}: larger than {limit // 2**20} MiB; is it the right file?")
    return data


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# export ---------------------------------------------------------------------------


@click.command("export", epilog=EXAMPLES + "\n".join((
    "  tui-oauth export -o config.json",
    "  tui-oauth export -o config.json --force    # replace config.json",
    "  tui-oauth export --with-secrets -o config.json",
    "  tui-oauth export --with-secrets --passphrase-file pass.txt -o config.json",
)))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to FILE (mode 0600) instead of standard output; an existing "
                   "FILE only with --force.")
@force_option
@click.option("--with-secrets", is_flag=True,
              help="Include the shared secrets, the Consumer Info private key and the "
                   "provider data key, encrypted under a passphrase.")
@passphrase_option
@needs_keyring(when=lambda options: bool(options.get("with_secrets")))
def export_cmd(output: Path | None, force: bool, with_secrets: bool,
               passphrase_file: Path | None) -> None:
    """Write the whole configuration as JSON: consumers, Consumer Info (public part),
    service providers, provider settings.

    Secrets are left out ("secrets": "excluded") unless --with-secrets: then they
    are encrypted (scrypt + AES-256-GCM) under a passphrase asked twice without
    echo, or read from --passphrase-file.
    """
    from tui_oauth.core.transfer import export_config

    if passphrase_file is not None and not with_secrets:
        raise click.UsageError("--passphrase-file goes with --with-secrets.")
    refuse_existing(output, force)
    store = app_context().store
    passphrase = read_passphrase(passphrase_file, new=True) if with_secrets else None
    doc = export_config(store, passphrase=passphrase)
    write_output(output, to_json(doc), force=force)
    info = "Consumer Info" if doc["consumer_info"] else "no Consumer Info"
    secrets = "secrets encrypted under the passphrase" if with_secrets else "secrets excluded"
    where = f" to {output}" if output is not None else ""
    say(f"Exported {len(doc['consumers'])} consumer(s), {info}, "
        f"{len(doc['service_providers'])} service provider(s), {len(doc['settings'])} "
        f"setting(s); {secrets}{where}.", err=True)


# import ---------------------------------------------------------------------------

KINDS = {"consumer": "consumer", "consumer_info": "Consumer Info",
         "service_provider": "service provider", "setting": "setting",
         "data_key": "data key"}
VERBS = {"add": ("added", "would add"), "change": ("changed", "would change"),
         "skip": ("skipped", "would skip"), "unchanged": ("unchanged", "unchanged")}


def _line(change: Change, dry_run: bool) -> str:
    from tui_oauth.core.transfer import DIFFERS

    verb = VERBS[change.action][1 if dry_run else 0]
    text = f"{verb:<12} {KINDS.get(change.kind, change.kind)} {change.name!r}"
    if change.reason == DIFFERS and change.fields:
        text += f" (differs in {', '.join(change.fields)}; --replace to overwrite)"
    elif change.reason:
        text += f" ({change.reason})"
    elif change.fields:
        text += f" ({', '.join(change.fields)})"
    return text


def read_files(files: tuple[Path, ...]) -> Incoming:
    """One export document, or any number of consumer-info XML documents."""
    from tui_oauth.core.transfer import looks_like_xml, read_config, read_consumer_info_xml

    store = app_context().store
    datas = [(path, read_input(path)) for path in files]
    json_files = [path for path, data in datas if not looks_like_xml(data)]
    if json_files and len(files) > 1:
        raise click.UsageError(
            f"{json_files[0]} is not XML: give one file written by `tui-oauth export`, or "
            "any number of consumer-info XML documents.")
    if json_files:
        return read_config(store, datas[0][1], source=str(files[0]))
    incoming = read_consumer_info_xml(datas[0][1], source=str(files[0]))
    for path, data in datas[1:]:
        incoming.extend(read_consumer_info_xml(data, source=str(path)))
    return incoming


@click.command("import", epilog=EXAMPLES + "\n".join((
    "  tui-oauth import --dry-run config.json",
    "  tui-oauth --db postgresql+psycopg://tui@db/oauth import config.json",
    "  tui-oauth import --replace --passphrase-file pass.txt config.json",
    "  tui-oauth import jira.xml confluence.xml      (consumer-info documents)",
)))
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Say what would be added, changed and "
                                              "skipped; write nothing.")
@click.option("--replace", is_flag=True,
              help="Overwrite what exists with different values (otherwise it is skipped).")
@passphrase_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@needs_keyring
def import_cmd(files: tuple[Path, ...], dry_run: bool, replace: bool,
               passphrase_file: Path | None, as_json: bool) -> None:
    """Apply a file written by `tui-oauth export`, or consumer-info XML documents
    (each becomes a consumer), in one transaction.

    New items are added; identical ones left alone; one that exists with other
    values is skipped unless --replace. Encrypted secrets need the export's
    passphrase (asked, or --passphrase-file).
    """
    from tui_oauth.core.transfer import open_secrets

    store = app_context().store
    incoming = read_files(files)
    if incoming.sealed is not None:
        open_secrets(incoming, read_passphrase(passphrase_file, new=False))
    elif passphrase_file is not None:
        say("The file holds no encrypted secrets; --passphrase-file is not needed.", err=True)
    from tui_oauth.core.transfer import import_config

    report = import_config(store, incoming, replace=replace, dry_run=dry_run)
    _print_report(report, as_json)


def _print_report(report: ImportReport, as_json: bool) -> None:
    if as_json:
        print_json({"dry_run": report.dry_run,
                    "changes": [{"kind": c.kind, "name": c.name, "action": c.action,
                                 "reason": c.reason, "fields": list(c.fields)}
                                for c in report.changes],
                    "counts": {a: report.count(a) for a in VERBS},
                    "tokens_unreadable": report.tokens_unreadable})
    else:
        for change in report.changes:
            say(_line(change, report.dry_run))
        if report.dry_run:
            say(f"Dry run, nothing was written: {report.summary()}.")
        else:
            say(f"Imported in one transaction: {report.summary()}.")
    if any(c.kind == "data_key" and c.action == "change" for c in report.changes):
        say(("warning: the data key would be replaced: " if report.dry_run else
             "warning: the data key was replaced: ")
            + f"{report.tokens_unreadable} token secret(s) encrypted under the old key "
            + ("would become" if report.dry_run else "are now") + " unreadable.", err=True)
