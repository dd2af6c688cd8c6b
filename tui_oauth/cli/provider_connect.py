"""`tui-oauth providers connect|call|tokens|forget|test`: us as a consumer."""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import socket
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import click

from tui_oauth.cli.common import (
    app_context,
    complete_provider_names,
    confirm,
    examples,
    fail,
    fmt_time,
    needs_keyring,
    output_options,
    print_json,
    print_records,
    say,
)
from tui_oauth.cli.providers import providers
from tui_oauth.core.registry import services
from tui_oauth.core.text import command_line, visible

if TYPE_CHECKING:  # services.connect (requests, oauthlib, the models) loads when a command runs
    from tui_oauth.core.services.connect import CallResponse, ConnectStep

#: services.connect's DEFAULT_TIMEOUT, CALL_RESPONSE_LIMIT and OOB, written out so that
#: loading this module (for --help or a TAB) does not import it (and SQLAlchemy, requests,
#: oauthlib: ~500 ms); tests/cli/test_cli_speed.py checks they agree.
DEFAULT_TIMEOUT = 20.0
CALL_RESPONSE_LIMIT = 8 * 1024 * 1024
OOB = "oob"

MAX_DATA_FILE = 16 * 1024 * 1024
_FORM = "application/x-www-form-urlencoded"

user_option = click.option("--user", "local_user", metavar="LOCAL_USER",
                           help="Whose token: a local user name (default: the OS user).")
timeout_option = click.option("--timeout", type=click.FloatRange(0.1, 600),
                              default=DEFAULT_TIMEOUT, show_default=True,
                              help="Time limit of each exchange with the provider, seconds.")


def _link(url: str) -> str:
    """The URL, as an OSC 8 hyperlink (and copied with OSC 52) when stdout is a terminal."""
    shown = visible(url)
    if not sys.stdout.isatty() or shown != url:
        return shown
    copy = base64.b64encode(url.encode()).decode("ascii")
    return f"\x1b]8;;{url}\x1b\\{url}\x1b]8;;\x1b\\\x1b]52;c;{copy}\x07"


def _read_verifier() -> str:
    if sys.stdin.isatty():
        value = click.prompt("Verifier shown by the provider after approving",
                             default="", show_default=False)
    else:
        value = sys.stdin.readline()
    value = str(value).strip()
    if not value:
        fail("No verifier was given; nothing was stored. Run connect again and give the "
             "code the provider shows after approving.")
    return value


class _Listener:
    """A short-lived loopback HTTP server that receives the provider's callback."""

    def __init__(self, spec: str) -> None:
        host, sep, port_text = spec.rpartition(":")
        host = host.strip("[]")
        if not sep or not port_text.isdigit() or int(port_text) > 65535:
            raise click.BadParameter("expected HOST:PORT, e.g. 127.0.0.1:8765",
                                     param_hint="--callback-listen")
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise click.BadParameter(
                f"{host!r} is not a loopback address: the listener only listens on this "
                "machine (127.0.0.1, ::1 or localhost)", param_hint="--callback-listen")
        self.result: dict[str, str] = {}
        self.done = threading.Event()
        self.expected_token: str | None = None
        listener = self
        import http.server  # here: ~25 ms (-X importtime) that only --callback-listen needs

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
                token = query.get("oauth_token")
                ok = bool(query.get("oauth_verifier")) and (
                    listener.expected_token is None or token == listener.expected_token)
                body = (b"tui-oauth received the approval; you can close this window.\n" if ok
                        else b"tui-oauth: this is not the callback it is waiting for.\n")
                self.send_response(200 if ok else 400)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if ok and not listener.done.is_set():
                    listener.result = query
                    listener.done.set()

            def log_message(self, *args: object) -> None:
                pass

        family_host = "::1" if ":" in host else ("127.0.0.1" if host == "localhost" else host)
        server_cls = type("Server", (http.server.ThreadingHTTPServer,), {
            "address_family": socket.AF_INET6 if ":" in family_host else socket.AF_INET,
             "daemon_threads": True})
        try:
            self.server = server_cls((family_host, int(port_text)), Handler)
        except OSError as exc:
            fail(f"Cannot listen on {spec}: {exc.strerror or exc}. Choose another port.")
        port = self.server.server_address[1]
        shown = f"[{family_host}]" if ":" in family_host else host
        self.url = f"http://{shown}:{port}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def wait(self, seconds: float) -> str:
        try:
            if not self.done.wait(seconds):
                fail(f"No callback reached {self.url} within {seconds:g} s; nothing was "
                     "stored. Run connect again (a longer --wait?), and approve in the browser.")
            return self.result["oauth_verifier"]
        finally:
            self.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@providers.command("connect", epilog=examples(
    "  tui-oauth providers connect jira",
    "  tui-oauth providers connect jira --callback-listen 127.0.0.1:0",
    "  tui-oauth providers connect jira --user build-bot",
))
@click.argument("name", shell_complete=complete_provider_names)
@user_option
@click.option("--callback-listen", metavar="HOST:PORT",
              help="Receive the provider's callback on a short-lived listener on this "
                   "loopback address instead of typing the verifier (port 0: any free port).")
@click.option("--wait", type=click.FloatRange(1, 3600), default=300, show_default=True,
              help="With --callback-listen: how long to wait for the callback, seconds.")
@timeout_option
@needs_keyring
def connect(name: str, local_user: str | None, callback_listen: str | None, wait: float,
            timeout: float) -> None:
    """Get an access token from a service provider (a user approves in a browser)."""
    side = services(app_context().store).consumer_side
    from tui_oauth.core.services.connect import default_local_user

    user = local_user or default_local_user()
    listener = _Listener(callback_listen) if callback_listen else None
    try:
        step: ConnectStep = side.request_token(name, listener.url if listener else OOB,
                                               timeout=timeout)
    except BaseException:
        if listener is not None:
            listener.close()
        raise
    say("Open this URL in a browser, log in to the provider and approve:", err=True)
    click.echo(_link(step.authorization_url))
    if listener is not None:
        listener.expected_token = step.token
        say(f"Waiting up to {wait:g} s for the provider's callback on {listener.url} ...",
            err=True)
        verifier = listener.wait(wait)
    else:
        verifier = _read_verifier()
    held = side.exchange(step, verifier, user, timeout=timeout)
    expires = f", expires {fmt_time(held.expires_at)} UTC" if held.expires_at else ""
    renew = " (renewable)" if held.renewable else ""
    say(f"Connected to {name!r}: a token is held for local user {user!r}{expires}{renew}.")


def _headers(values: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for value in values:
        key, sep, rest = value.partition(":")
        if not sep or not key.strip() or any(c in value for c in "\r\n"):
            raise click.BadParameter(f"{value!r} is not 'Name: value'", param_hint="-H")
        out.append((key.strip(), rest.strip()))
    return out


def _form(values: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not key=value", param_hint="-d")
        out.append((key, rest))
    return out


def _body_text(r: CallResponse) -> tuple[str | None, Any]:
    """The body as text (pretty JSON when JSON) and, for --json, as a value."""
    try:
        text = r.body.decode("utf-8")
    except UnicodeDecodeError:
        return None, None
    if (r.content_type == "application/json" or r.content_type.endswith("+json")) \
            and not r.truncated:
        with contextlib.suppress(ValueError):
            value = json.loads(text)
            return json.dumps(value, indent=2, ensure_ascii=False), value
    return text, text


@providers.command("call", epilog=examples(
    "  tui-oauth providers call jira /rest/api/2/myself",
    "  tui-oauth providers call jira POST /rest/api/2/issue --data-file issue.json \\",
    "      -H 'Content-Type: application/json'",
    "  tui-oauth providers call jira --2lo --as alice /rest/api/2/myself --json",
))
@click.argument("name", shell_complete=complete_provider_names)
@click.argument("method_or_url", metavar="[METHOD] URL")
@click.argument("url", required=False, metavar="")
@click.option("-d", "--data", "data", multiple=True, metavar="KEY=VALUE",
              help="A form field (sent form-encoded and signed); repeatable.")
@click.option("--data-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Send this file as the body, as is (form-encoded ones are signed).")
@click.option("-H", "--header", "header", multiple=True, metavar="'NAME: VALUE'",
              help="A request header; repeatable.")
@user_option
@click.option("--2lo", "two_legged", is_flag=True,
              help="2-legged: sign with no user's token.")
@click.option("--as", "as_user", metavar="USER",
              help="With --2lo: act as this provider user (xoauth_requestor_id).")
@click.option("--body-hash", is_flag=True,
              help="Sign oauth_body_hash of a --data-file body, for providers that ask.")
@click.option("--include", "-i", is_flag=True, help="Print the response headers too.")
@click.option("--max-bytes", type=click.IntRange(1, 1024 * 1024 * 1024),
              default=CALL_RESPONSE_LIMIT, show_default=True,
              help="Read at most this much of the body (the rest is cut off).")
@timeout_option
@click.option("--json", "as_json", is_flag=True, help="Print the response as JSON.")
@needs_keyring
def call(name: str, method_or_url: str, url: str | None, data: tuple[str, ...],
         data_file: Path | None, header: tuple[str, ...], local_user: str | None,
         two_legged: bool, as_user: str | None, body_hash: bool, include: bool,
         max_bytes: int,
         timeout: float, as_json: bool) -> None:
    """Send a signed request to a service provider with the token we hold.

    URL may be a path (/rest/api/2/myself): it is taken relative to the provider's
    request-token URL.  Exit 0 when the provider answers below 400.
    """
    method = method_or_url.upper() if url is not None else "GET"
    target = url if url is not None else method_or_url
    if as_user is not None and not two_legged:
        raise click.UsageError("--as needs --2lo.")
    if data and data_file is not None:
        raise click.UsageError("Give -d fields or --data-file, not both.")
    headers = _headers(header)
    form = _form(data) if data else None
    body: bytes | None = None
    if data_file is not None:
        try:
            if data_file.stat().st_size > MAX_DATA_FILE:
                fail(f"--data-file: {data_file} is larger than 16 MiB.")
            body = data_file.read_bytes()
        except OSError as exc:
            fail(f"--data-file: cannot read {data_file}: {exc.strerror or exc}.")
        ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
        if ctype.split(";")[0].strip().lower() == _FORM and body is not None:
            try:
                form = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                 strict_parsing=bool(body.strip()))
            except (UnicodeDecodeError, ValueError):
                fail(f"--data-file: {data_file} is not form-encoded, but the Content-Type "
                     "header says it is.")
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            body = None
    if (form is not None or body is not None) and method == "GET" and url is None:
        method = "POST"
    r = services(app_context().store).consumer_side.call(
        name, method, target, data=form, body=body, headers=headers, local_user=local_user,
        two_legged=two_legged, as_user=as_user, max_bytes=max_bytes, body_hash=body_hash,
        timeout=timeout)
    text, value = _body_text(r)
    if as_json:
        print_json({"status": r.status, "reason": r.reason,
                    "headers": [[k, v] for k, v in r.headers], "body": value,
                    "body_bytes": len(r.body), "truncated": r.truncated, "renewed": r.renewed,
                    "oauth_problem": r.problem, "oauth_problem_advice": r.advice})
    else:
        say(f"{r.status} {r.reason}".rstrip())
        if include:
            for k, v in r.headers:
                say(f"{k}: {v}")
        if include or text:
            click.echo("")
        if text is None:
            say(f"({len(r.body)} bytes of binary content, not shown; --json shows it neither: "
                "save it with another tool)")
        elif text:
            click.echo(visible(text, multiline=True))
        if r.truncated:
            say(f"warning: the body was cut off at {max_bytes} bytes (--max-bytes).", err=True)
    if r.renewed:
        say("note: the access token had expired and was renewed.", err=True)
    if r.status >= 400:
        if r.problem:
            advice = f" ({r.advice})" if r.advice else ""
            again = (" Connect again: `tui-oauth providers connect`." if r.problem in (
                "token_revoked", "token_expired", "token_rejected", "token_used") else "")
            fail(f"{name} refused the request: {r.problem}{advice}.{again}")
        fail(f"{name} answered {r.status} {r.reason}.".replace(" .", "."))


def _held(t: Any) -> dict[str, Any]:
    return {"user": t.user, "issued_at": t.issued_at, "expires_at": t.expires_at,
            "authorization_expires_at": t.authorization_expires_at,
            "renewable": t.renewable, "last_used_at": t.last_used_at}


@providers.command("tokens", epilog=examples(
    "  tui-oauth providers tokens jira",
    "  tui-oauth providers tokens jira -o jsonl",
    "  for u in $(tui-oauth providers tokens jira -q); do echo \"$u\"; done",
))
@click.argument("name", shell_complete=complete_provider_names)
@output_options("local users")
def tokens(name: str, output: str) -> None:
    """List the tokens we hold from a service provider (no secret is shown)."""
    print_records(
        output, services(app_context().store).consumer_side.tokens(name), record=_held,
        name=lambda t: t.user or "-",
        headers=["user", "issued", "expires", "renewable", "last used"],
        cells=lambda t: [t.user or "-", fmt_time(t.issued_at), fmt_time(t.expires_at),
                         "yes" if t.renewable else "no", fmt_time(t.last_used_at)],
        empty=f"No tokens held from {name}. Get one with "
              f"`{command_line('providers', 'connect', values=[name])}`.")


@providers.command("forget", epilog=examples(
    "  tui-oauth providers forget jira --user alice",
    "  tui-oauth providers forget jira --yes",
))
@click.argument("name", shell_complete=complete_provider_names)
@click.option("--user", "local_user", metavar="LOCAL_USER",
              help="Only this local user's token (default: all of them).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
def forget(name: str, local_user: str | None, yes: bool) -> None:
    """Drop tokens we hold from a service provider (asks first)."""
    side = services(app_context().store).consumer_side
    n = sum(1 for t in side.tokens(name) if local_user is None or t.user == local_user)
    whose = f" for local user {local_user!r}" if local_user is not None else ""
    if n == 0:
        say(f"No tokens held from {name!r}{whose}; nothing to forget.")
        return
    confirm(f"Forget the {n} token(s) held from {name!r}{whose}?", yes)
    done = side.forget(name, local_user)
    say(f"Forgot {done} token(s) held from {name!r}{whose}.")


@providers.command("test", epilog=examples(
    "  tui-oauth providers test jira",
    "  tui-oauth providers test jira --timeout 30",
))
@click.argument("name", shell_complete=complete_provider_names)
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=10.0, show_default=True,
              help="Time limit of each check, seconds.")
@needs_keyring
def test(name: str, timeout: float) -> None:
    """Check that a service provider works: its URLs, our clock, our signature."""
    failed = 0
    for result in services(app_context().store).consumer_side.test(name, timeout=timeout):
        failed += not result.passed
        say(f"{'ok  ' if result.passed else 'FAIL'} {result.name}: {result.detail}")
    if failed:
        fail(f"{failed} check(s) failed for {name!r}.")
