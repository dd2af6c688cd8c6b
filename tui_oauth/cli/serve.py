"""`tui-oauth serve`: the OAuth 1.0a provider over HTTP (Starlette on uvicorn)."""

from __future__ import annotations

import ipaddress
import logging

import click

from tui_oauth.cli.common import app_context, fail, needs_keyring


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter("HOST:PORT, e.g. 127.0.0.1:8080", param_hint="--listen")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT",
              help="Where to listen (behind a proxy, keep it on loopback).")
@click.option("--public-url", metavar="URL",
              help="The URL clients use (https://host/base): signatures are checked against "
                   "it. Default: http://HOST:PORT.")
@click.option("--trusted-user-header", metavar="NAME",
              help="Take the signed-in user from this request header, set by the fronting "
                   "proxy (e.g. X-Remote-User). Off by default: then the authorize page "
                   "cannot approve, use `tui-oauth tokens authorize`.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
@needs_keyring
def serve(listen: str, public_url: str | None, trusted_user_header: str | None,
          log_level: str) -> None:
    """Run the provider: request-token, authorize, access-token, consumer-info, /rest/whoami."""
    import uvicorn

    from tui_oauth.core.provider.engine import ProviderEngine, normalize_public_url
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
    store = app_context().store
    engine = ProviderEngine(store, public)
    app = create_app(engine, trusted_user_header=trusted_user_header)
    logging.getLogger("tui_oauth").setLevel(log_level.upper())
    click.echo(f"Serving {public} on {host}:{port} (store {store.display_url}); "
               f"{len(engine.consumers._by_uid)} consumer(s) loaded.", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=False,
                server_header=False, access_log=log_level == "debug")
