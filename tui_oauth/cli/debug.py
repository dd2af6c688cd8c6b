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
from tui_oauth.core.registry import services

if TYPE_CHECKING:
    from tui_oauth.core.provider.debugger import Report, SentRequest

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


def _public_url(given: str | None, sent: SentRequest) -> tuple[str, str]:
    """The server's public URL and where it came from: --public-url (or its variable),
    the config file's [serve] public-url, the one of the `serve` the request was sent to
    (of the last few that served the store, store_meta), else the last one's, or serve's
    own default (from --listen)."""
    if given:
        return given, "--public-url"
    from tui_oauth.core.config import load_config

    serve = load_config().serve
    if serve.get("public_url"):
        return str(serve["public_url"]), "the config file's [serve] public-url"
    diagnostics = services(app_context().store).diagnostics
    reached = diagnostics.served_at(sent.url, scheme_known=sent.scheme_known)
    if reached is not None:
        return reached[0], "the one of the `serve` this request was sent to"
    served = diagnostics.served_public_url()
    if served:
        return served, "the one `serve` last served this store with"
    listen = os.environ.get("TUI_OAUTH_SERVE_LISTEN") or str(serve.get("listen")
                                                             or "127.0.0.1:8080")
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}", ASSUMED


def _internal_urls(given: tuple[str, ...]) -> list[str]:
    """--internal-url's URLs (checked), then the addresses the last few `serve`s of this
    store listened on."""
    from urllib.parse import urlsplit

    urls: list[str] = []
    for url in given:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise click.BadParameter(f"{url[:200]!r} is not an absolute http(s) URL; give "
                                     "scheme://host:port, e.g. http://10.0.0.11:8080.",
                                     param_hint="--internal-url")
        urls.append(url.split("?", 1)[0].split("#", 1)[0])
    diagnostics = services(app_context().store).diagnostics
    urls.extend(listen for _, listen in diagnostics.served() if listen)
    return list(dict.fromkeys(urls))


def report_dict(report: Report) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(report)


#: Where the public URL came from when nothing said it (serve's default from --listen).
ASSUMED = "serve's default from --listen: no --public-url given"


def show_report(report: Report, extra: list[tuple[str, Any]] | None = None, *,
                assumed_public_url: str | None = None) -> None:
    """A report for people: what the server computes, the verdict, the mistake.
    ``assumed_public_url``: the public URL checked against was only assumed (said in a
    no-match verdict: it may be the cause)."""
    from tui_oauth.core.provider.debugger import TRIED_WORDS

    mistake = report.mistake
    if report.matches:
        verdict = "matches"
    elif mistake:
        verdict = "does not match"
    elif assumed_public_url:
        verdict = (f"does not match; none of the usual mistakes explains it, but the public "
                   f"URL {assumed_public_url} was only assumed (no --public-url given, and "
                   "`serve` never noted one in this store): it may be the cause. Pass "
                   "--public-url with the URL consumers are served at")
    else:
        verdict = ("does not match; none of the usual mistakes explains it (a wrong key or "
                   "secret?)")
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
    "  tui-oauth debug signature req.txt --internal-url http://10.0.0.11:8080",
))
@click.argument("file", required=False, metavar="[FILE|-]")
@click.option("--consumer", "consumer_key", metavar="KEY", shell_complete=complete_consumer_keys,
              help="Check against this consumer (default: the request's oauth_consumer_key).")
@click.option("--token", metavar="TOKEN",
              help="Use this token's secret (default: the request's oauth_token).")
@click.option("--public-url", envvar="TUI_OAUTH_SERVE_PUBLIC_URL", show_envvar=True,
              metavar="URL",
              help="The server's public URL (as `serve --public-url`). Default: the config "
                   "file's [serve] public-url, else that of the `serve` the request was sent "
                   "to, else the one `serve` last served this store with, else "
                   "http://LISTEN as serve has it.")
@click.option("--internal-url", "internal_urls", metavar="URL", multiple=True,
              help="A URL the consumer may have signed instead of the public one (an "
                   "internal address, scheme://host:port[/prefix]; http and https are both "
                   "tried). Repeatable. Always tried: the addresses the last few `serve`s of "
                   "this store listened on.")
@output_options("verdict (match, or the mistake's code, or no-match)")
def signature(file: str | None, consumer_key: str | None, token: str | None,
              public_url: str | None, internal_urls: tuple[str, ...], output: str) -> None:
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
    url, source = _public_url(public_url, sent)
    internal = _internal_urls(internal_urls)
    if method != "RSA-SHA1":
        join_keyring()
    report = services(app_context().store).diagnostics.check_request(
        text, consumer_key=consumer_key, token=token, public_url=url, internal_urls=internal)
    verdict = "match" if report.matches else report.mistake.code if report.mistake \
        else "no-match"
    print_record(output, {**report_dict(report), "public_url": url, "public_url_from": source},
                 name=verdict,
                 show=lambda: show_report(report, [("Public URL", f"{url} ({source})")],
                                          assumed_public_url=url if source == ASSUMED
                                          else None))
    if not report.matches:
        click.get_current_context().exit(1)
