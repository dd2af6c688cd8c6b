"""`tui-oauth debug signature`: why does this request get signature_invalid?"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from tui_oauth.cli.common import (
    app_context,
    complete_consumer_keys,
    examples,
    fail,
    join_keyring,
    output_options,
    print_fields,
    print_record,
    say,
)

if TYPE_CHECKING:
    from tui_oauth.core.provider.debugger import Report

#: The most a request read from a file or stdin may be.
MAX_REQUEST = 1024 * 1024



@click.group(epilog=examples(
    "  tui-oauth debug signature request.txt",
    "  pbpaste | tui-oauth debug signature",
))
def debug() -> None:
    """Find out why a consumer's requests are refused."""


def _read_request(path: str | None) -> str:
    if path is None or path == "-":
        if sys.stdin.isatty():
            say("Paste the request (raw HTTP, a curl command line, or METHOD URL, headers, "
                "a blank line and the body), then Ctrl-D:", err=True)
        data = sys.stdin.buffer.read(MAX_REQUEST + 1)
        where = "standard input"
    else:
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_REQUEST + 1)
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror}. Give the file holding the request, "
                 "or - for standard input.")
        where = path
    if len(data) > MAX_REQUEST:
        fail(f"{where} is larger than {MAX_REQUEST // 1024} KiB; give one request.")
    return data.decode("utf-8", "surrogateescape")


def _public_url(given: str | None) -> tuple[str, str]:
    """The server's public URL and where it came from: --public-url (or its variable),
    the config file's [serve] public-url, the one `serve` last served the store with
    (store_meta), or serve's own default (from --listen)."""
    if given:
        return given, "--public-url"
    from tui_oauth.core.config import load_config

    serve = load_config().serve
    if serve.get("public_url"):
        return str(serve["public_url"]), "the config file's [serve] public-url"
    served = app_context().store.diagnostics.served_public_url()
    if served:
        return served, "the one `serve` last served this store with"
    listen = os.environ.get("TUI_OAUTH_SERVE_LISTEN") or str(serve.get("listen")
                                                             or "127.0.0.1:8080")
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}", "serve's default from --listen: no --public-url given"


def report_dict(report: Report) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(report)


def show_report(report: Report, extra: list[tuple[str, Any]] | None = None) -> None:
    """A report for people: what the server computes, the verdict, the mistake."""
    from tui_oauth.core.provider.debugger import TRIED_WORDS

    mistake = report.mistake
    verdict = ("matches" if report.matches
               else "does not match" + ("" if mistake else "; none of the usual mistakes "
                                        "explains it (a wrong key or secret?)"))
    sent = report.sent_url if report.sent_url != report.url else None
    print_fields([(label, value) for label, value in [
        *(extra or []),
        ("Request", f"{report.method} {report.url}"),
        ("  sent to", sent),
        ("Consumer", report.consumer_key),
        ("Token", report.token),
        ("Signature method", report.signature_method),
        ("Base string", report.base_string),
        ("Signature", verdict),
        ("Mistake", f"{mistake.code}: {mistake.what}" if mistake else None),
        ("Fix", mistake.fix if mistake else None),
        ("Consumer signed", mistake.base_string if mistake else None),
        ("Tried", ", ".join(TRIED_WORDS.get(t, t) for t in report.tried)
         if report.tried else None),
        *[("Note", note) for note in report.notes],
    ] if value is not None])


@debug.command("signature", epilog=examples(
    "  tui-oauth debug signature request.txt      (a raw HTTP request, as captured)",
    "  tui-oauth debug signature < curl.sh        (a curl command line)",
    "  printf 'GET https://jira.example.com/rest/api/2/myself\\nAuthorization: OAuth ...\\n'"
    " | tui-oauth debug signature",
    "  tui-oauth debug signature req.txt --public-url https://jira.example.com -o json",
    "  tui-oauth debug signature req.txt --consumer jira:1354 --token 3f1c2a...",
))
@click.argument("file", required=False, metavar="[FILE|-]")
@click.option("--consumer", "consumer_key", metavar="KEY", shell_complete=complete_consumer_keys,
              help="Check against this consumer (default: the request's oauth_consumer_key).")
@click.option("--token", metavar="TOKEN",
              help="Use this token's secret (default: the request's oauth_token).")
@click.option("--public-url", envvar="TUI_OAUTH_SERVE_PUBLIC_URL", show_envvar=True,
              metavar="URL",
              help="The server's public URL (as `serve --public-url`). Default: the config "
                   "file's [serve] public-url, else the one `serve` last served this store "
                   "with, else http://LISTEN as serve has it.")
@output_options("verdict (match, or the mistake's code, or no-match)")
def signature(file: str | None, consumer_key: str | None, token: str | None,
              public_url: str | None, output: str) -> None:
    """Check a request's OAuth signature as the server does, and name the usual mistake.

    Reads the request as the consumer sent it from FILE (or standard input): a raw
    HTTP request, a curl command line (line continuations welcome), or METHOD URL,
    then header lines, a blank line and the body.  It prints the signature base string
    this server computes (against its public URL), whether the signature matches with
    the stored secret or public key (and the token's secret), and when it does not,
    the usual mistake that explains it: the internal URL signed instead of the public
    one, http vs https, a default port written out, + vs %20, the body's parameters
    left out or added, a rotated secret, a stale token, PLAINTEXT encoding.  Secrets
    are read from the keyring, never from the command line, and never printed.

    Exit status: 0 when the signature matches, 1 when it does not (or on an error).
    """
    text = _read_request(file)
    from tui_oauth.core.provider.debugger import parse_request, signed_by

    sent = parse_request(text)  # unreadable input: said before the keyring is asked
    method = signed_by(sent)[2]
    url, source = _public_url(public_url)
    if method != "RSA-SHA1":
        join_keyring()
    report = app_context().store.diagnostics.check_request(
        text, consumer_key=consumer_key, token=token, public_url=url)
    verdict = "match" if report.matches else report.mistake.code if report.mistake \
        else "no-match"
    print_record(output, {**report_dict(report), "public_url": url, "public_url_from": source},
                 name=verdict,
                 show=lambda: show_report(report, [("Public URL", f"{url} ({source})")]))
    if not report.matches:
        click.get_current_context().exit(1)
