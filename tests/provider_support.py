"""Helpers for the provider tests: a real uvicorn server on 127.0.0.1 in a thread,
consumers of each kind, and requests-oauthlib clients."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import requests
import uvicorn
from oauthlib.oauth1 import Client
from requests_oauthlib import OAuth1, OAuth1Session
from sqlalchemy import update
from sqlmodel import Session, col

from tests.helpers import pem_private, rsa_key, spki_b64
from tui_oauth.core.models import Token
from tui_oauth.core.provider.engine import ProviderEngine
from tui_oauth.core.provider.settings import ProviderSettings
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store
from tui_oauth.core.timeutil import utcnow
from tui_oauth.web.app import create_app

OAUTH = "/plugins/servlet/oauth"


@dataclass
class Server:
    base: str  # http://127.0.0.1:PORT (what we connect to)
    public: str  # the public URL signatures are made against
    engine: ProviderEngine
    app: Any

    def url(self, path: str) -> str:
        return self.public + path

    def connect_url(self, path: str) -> str:
        return self.base + path


@contextmanager
def running_server(store: Store, *, public_url: str | None = None,
                   trusted_user_header: str | None = "X-Remote-User",
                   settings: ProviderSettings | None = None,
                   **app_options: Any) -> Iterator[Server]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    engine = ProviderEngine(store, public_url or base, settings=settings)
    app = create_app(engine, trusted_user_header=trusted_user_header, **app_options)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield Server(base, public_url or base, engine, app)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def add_rsa_consumer(store: Store, key: str = "jira:6f1c0d2e-1111-4a2b-9c3d-5e6f7a8b9c0d",
                     index: int = 0, **fields: Any) -> str:
    """An RSA-SHA1 consumer; returns its private key PEM (the client's)."""
    private = rsa_key(index)
    services(store).consumers.add(key=key, name=fields.pop("name", "JIRA"),
                                  public_key=spki_b64(private), **fields)
    return pem_private(private)


def add_hmac_consumer(store: Store, key: str = "www.google.com",
                      secret: str = "kd94hf93k423kf44", **fields: Any) -> str:  # noqa: S107
    services(store).consumers.add(key=key, name=fields.pop("name", "Partner"), shared_secret=secret,
                                  signature_method="HMAC-SHA1", **fields)
    return secret


class SessionHandleClient(Client):  # type: ignore[misc]  # oauthlib has no type hints
    """An oauthlib client that also signs ``oauth_session_handle`` in the header."""

    session_handle: str | None = None

    def get_oauth_params(self, request: Any) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = super().get_oauth_params(request)
        if self.session_handle:
            params.append(("oauth_session_handle", self.session_handle))
        return params


def oauth_session(consumer_key: str, *, rsa_pem: str | None = None,
                  secret: str | None = None, **kwargs: Any) -> OAuth1Session:
    if rsa_pem is not None:
        return OAuth1Session(consumer_key, signature_method="RSA-SHA1", rsa_key=rsa_pem,
                             **kwargs)
    return OAuth1Session(consumer_key, client_secret=secret, **kwargs)


def auth(consumer_key: str, *, rsa_pem: str | None = None, secret: str | None = None,
         **kwargs: Any) -> OAuth1:
    if rsa_pem is not None:
        return OAuth1(consumer_key, signature_method="RSA-SHA1", rsa_key=rsa_pem, **kwargs)
    return OAuth1(consumer_key, client_secret=secret, **kwargs)


def authorize_page(srv: Server, request_token: str, user: str = "bob") -> requests.Response:
    """The authorize page for ``request_token``, to ``user`` (signed in by the trusted
    header)."""
    return requests.get(srv.url(OAUTH + "/authorize"), params={"oauth_token": request_token},
                        headers={"X-Remote-User": user}, timeout=10)


def csrf_of(page: requests.Response) -> str:
    """The CSRF token in an authorize page's form."""
    return page.text.split("name=csrf value='", 1)[1].split("'", 1)[0]


def expire_token(store: Store, token: str) -> None:
    """Let a request or access token expire: its expiry set to a second ago."""
    with Session(store.engine) as db:
        db.exec(update(Token).where(col(Token.token) == token)
                .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.commit()


def problem_of(response: Any) -> str | None:
    from urllib.parse import parse_qs

    values = parse_qs(response.text).get("oauth_problem")
    return values[0] if values else None
