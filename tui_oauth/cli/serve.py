"""`tui-oauth serve`: the OAuth 1.0a provider over HTTP (Starlette on uvicorn)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import sys
from typing import Any

import click

from tui_oauth.cli.common import app_context, examples, fail, needs_keyring
from tui_oauth.core.text import visible


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter("HOST:PORT, e.g. 127.0.0.1:8080", param_hint="--listen")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def _bind(host: str, port: int, *, one: bool) -> list[Any]:
    """The listening sockets on ``host:port`` (every address of a name such as localhost;
    ``one``: its first only, to hand to workers), made before anything says "Serving"; a
    failure (the address in use, a port below 1024, an unknown host) exits 1 in one line."""
    import errno
    import socket

    from tui_oauth.web import server

    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        return [server.listening_socket(host, port)] if one else \
            server.listening_sockets(host, port)
    except socket.gaierror as exc:
        fail(f"--listen {shown}: cannot resolve {host!r} ({exc.strerror or exc}); "
             "give an IP address or a host name of this machine.")
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            fail(f"--listen {shown}: the address is already in use (another server, or "
                 "another `tui-oauth serve`, listens there); stop it or choose another "
                 "port with --listen.")
        if exc.errno == errno.EACCES:
            fail(f"--listen {shown}: permission denied (ports below 1024 need root or "
                 "CAP_NET_BIND_SERVICE); choose a port of 1024 or more with --listen.")
        if exc.errno == errno.EADDRNOTAVAIL:
            fail(f"--listen {shown}: this machine has no such address; give one of its "
                 "addresses (or 127.0.0.1) with --listen.")
        fail(f"--listen {shown}: cannot listen there: {exc.strerror or exc}.")


#: An HTTP header name: an RFC 7230 token (letters, digits and !#$%&'*+-.^_`|~).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _header_name(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if not value:
        return None
    if not _HEADER_NAME.fullmatch(value):
        raise click.BadParameter(
            f"{visible(value)!r} is not a valid header name (letters, digits and "
            "!#$%&'*+-.^_`|~ only: no spaces, colons or other characters); give the name "
            "of the header your proxy sets, e.g. X-Remote-User.",
            param_hint="--trusted-user-header")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command(epilog=examples(
    "  tui-oauth serve --listen 127.0.0.1:8080 --public-url https://jira.example.com/base",
    "  tui-oauth --db postgresql+psycopg://oauth@db.internal/oauth serve --workers 2 \\",
    "      --listen 10.0.0.11:8080 --public-url https://oauth.example.com/jira",
    "  TUI_OAUTH_SERVE_LISTEN=127.0.0.1:9000 tui-oauth serve    # as the systemd unit does",
))
@click.option("--listen", envvar="TUI_OAUTH_SERVE_LISTEN", show_envvar=True,
              default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT",
              help="Where to listen (behind a proxy, keep it on loopback).")
@click.option("--public-url", envvar="TUI_OAUTH_SERVE_PUBLIC_URL", show_envvar=True,
              metavar="URL",
              help="The URL clients use (https://host/base): signatures are checked against "
                   "it. Default: http://HOST:PORT.")
@click.option("--trusted-user-header", envvar="TUI_OAUTH_SERVE_TRUSTED_USER_HEADER",
              show_envvar=True, metavar="NAME", callback=_header_name,
              help="Take the signed-in user from this request header, set by the fronting "
                   "proxy (e.g. X-Remote-User). Off by default: then the authorize page "
                   "cannot approve, use `tui-oauth tokens authorize`.")
@click.option("--header-timeout", envvar="TUI_OAUTH_SERVE_HEADER_TIMEOUT", show_envvar=True,
              type=click.FloatRange(0.5, 300), default=10.0,
              show_default=True, metavar="SECONDS",
              help="Close a connection whose request headers have not all arrived this long "
                   "after it opened (or after the previous response); a request body gets "
                   "as long again. Bounds slow clients (Slowloris).")
@click.option("--max-connections", envvar="TUI_OAUTH_SERVE_MAX_CONNECTIONS", show_envvar=True,
              type=click.IntRange(16, 1_000_000), default=4096,
              show_default=True,
              help="Open connections at most. Beyond it, the connection that has waited "
                   "longest for its request headers is closed to admit the new one; when "
                   "every connection is busy, the new one gets 503. Kept below the open-files "
                   "limit, whose soft limit is raised to the hard one.")
@click.option("--log-level", envvar="TUI_OAUTH_SERVE_LOG_LEVEL", show_envvar=True,
              type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True,
              help="debug adds the access log. OAuth signatures, tokens, verifiers, session "
                   "handles and secrets are redacted from every line.")
@click.option("--workers", envvar="TUI_OAUTH_SERVE_WORKERS", show_envvar=True,
              type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes sharing the listening socket, each a whole server "
                   "(its own database pool and consumer cache); nonces and tokens are "
                   "shared through the store. A worker that dies is started again. "
                   "About one per CPU core.")
@click.option("--socket-fd", type=int, hidden=True)  # a worker: serve on this inherited socket
@click.option("--ready-fd", type=int, hidden=True)  # a worker: write a byte here once serving
@needs_keyring(when=lambda _: not app_context().read_only)
def serve(listen: str, public_url: str | None, trusted_user_header: str | None,
          header_timeout: float, max_connections: int, log_level: str, workers: int,
          socket_fd: int | None, ready_fd: int | None) -> None:
    """Run the provider: request-token, authorize, access-token, consumer-info, /rest/whoami.

    Each option can also be set by its environment variable (TUI_OAUTH_SERVE_LISTEN, ...,
    shown below; an empty value counts as unset), as a systemd unit's EnvironmentFile=
    does; an option given on the command line wins over its variable.
    """
    if app_context().read_only:
        fail("serve cannot run --read-only: the provider writes nonces and tokens on every "
             "signed request; drop --read-only (the store's other users are unaffected).")

    from sqlalchemy.exc import SQLAlchemyError

    from tui_oauth.core.provider.engine import ProviderEngine, normalize_public_url
    from tui_oauth.web import server
    from tui_oauth.web.app import create_app

    host, port = _listen(listen)
    public = public_url or f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    try:
        public = normalize_public_url(public)
    except ValueError as exc:
        fail(f"--public-url: {exc}")
    if public.startswith("http://") and not _is_loopback(host):
        click.echo("warning: the public URL is http and the server listens beyond loopback: "
                   "tokens and HMAC signatures travel in clear. Put a TLS proxy in front.",
                   err=True)
    nofile = server.raise_nofile_limit()
    connections = server.connection_budget(max_connections, nofile)
    if connections < max_connections:
        click.echo(f"warning: --max-connections {max_connections} lowered to {connections}: "
                   f"the open-files limit is {nofile} (raise it with `ulimit -Hn` or "
                   "LimitNOFILE= in a systemd unit).", err=True)
    # Not a worker: listen first, so that an address in use is said before "Serving" and
    # before the store notes this serve's URLs for `debug signature`.
    listening = _bind(host, port, one=workers > 1) if socket_fd is None else None
    if socket_fd is None:  # not a worker: note the URL for `debug signature`
        from tui_oauth.core.errors import TuiOAuthError
        from tui_oauth.core.services.diagnostics import remember_public_url

        try:
            shown = host if ":" not in host else f"[{host}]"
            remember_public_url(app_context().store, public, f"http://{shown}:{port}")
        except (TuiOAuthError, SQLAlchemyError) as exc:
            click.echo(f"warning: the public and listen URLs could not be noted in the store "
                       f"(`debug signature` then needs --public-url): {exc}", err=True)
    if workers > 1 and listening is not None:
        _supervise(workers, listening[0], host, port, public,
                   trusted_user_header=trusted_user_header, header_timeout=header_timeout,
                   max_connections=connections, log_level=log_level)
        return
    if listening is None:
        assert socket_fd is not None
        listening = [server.inherited_socket(socket_fd)]
    repeats = server.configure_logging(log_level)
    store = app_context().store
    engine = ProviderEngine(store, public)
    running: list[Any] = []  # the uvicorn server, once made

    def stop(_message: str) -> None:  # the store is gone: stop as on Ctrl-C, then exit 1
        for uv in running:
            uv.should_exit = True

    app = create_app(engine, trusted_user_header=trusted_user_header, on_fatal=stop)
    if socket_fd is None:
        click.echo(f"Serving {public} on {host}:{port} (store {store.display_url}); "
                   f"consumers' keys and secrets load when first used; at most {connections} "
                   f"connections, request headers within {header_timeout:g} s.", err=True)
    else:
        click.echo(f"worker {os.getpid()}: serving; at most {connections} connections.",
                   err=True)
    config = server.make_config(app, host=host, port=port, header_timeout=header_timeout,
                                max_connections=connections, log_level=log_level,
                                access_log=log_level == "debug")

    def started() -> None:  # tell the parent (supervisor) this worker is serving
        if ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(ready_fd, b"1")
                os.close(ready_fd)

    try:
        server.run(config, sockets=listening, on_server=running.append, on_started=started)
    finally:
        repeats.flush()
    if app.state.fatal:
        fail(f"{app.state.fatal} The server stopped; start it again on the store you mean.")


def _supervise(workers: int, sock: Any, host: str, port: int, public: str, *,
               trusted_user_header: str | None, header_timeout: float,
               max_connections: int, log_level: str) -> None:
    """``serve --workers N``: one listening socket (TCP_NODELAY), N ``serve`` processes on
    it, each a whole server, kept running by :class:`~tui_oauth.web.server.Supervisor`."""
    from tui_oauth.core.provider.crypto import load_data_key
    from tui_oauth.web import server

    # Open the store here first: a missing store or a wrong data key is said once, and
    # on a new store the data key is made by one process, not raced for by N workers.
    context = app_context()
    load_data_key(context.store)
    context.close()
    db = context.db
    shown = f"[{host}]" if ":" in host else host

    def command(ready_fd: int) -> list[str]:
        argv = [sys.executable, "-m", "tui_oauth"]
        if db:
            argv += ["--db", db]
        argv += ["serve", "--listen", f"{shown}:{port}", "--public-url", public,
                 "--header-timeout", repr(header_timeout),
                 "--max-connections", str(max_connections), "--log-level", log_level,
                 "--socket-fd", str(sock.fileno()), "--ready-fd", str(ready_fd)]
        if trusted_user_header:
            argv += ["--trusted-user-header", trusted_user_header]
        return argv

    click.echo(f"Serving {public} on {shown}:{port} with {workers} worker processes.",
               err=True)
    with sock:
        code = server.Supervisor(sock, workers, command,
                                 grace=max(5, int(header_timeout) + 1) + 5.0,
                                 say=lambda line: click.echo(line, err=True)).run()
    if code:
        raise SystemExit(code)
