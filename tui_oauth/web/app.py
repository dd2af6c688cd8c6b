"""The provider over HTTP: Starlette endpoints around :class:`ProviderEngine`.

Routes, relative to the public URL (and also served with its path prefix, so
a proxy may forward ``/base/...`` as is or strip it):

- ``POST /plugins/servlet/oauth/request-token``
- ``GET|POST /plugins/servlet/oauth/authorize``
- ``POST /plugins/servlet/oauth/access-token`` (also session renewal)
- ``GET /plugins/servlet/oauth/consumer-info``
- ``/rest/whoami`` (protected: 3LO or 2LO) and ``/rest/ping`` (not protected)

No input produces a 500: refusals are Problem Reporting answers, a database
outage is a 503, and anything unexpected is logged, counted in
``app.state.unexpected_errors`` and answered 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qsl, quote_from_bytes

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tui_oauth.core.errors import (
    NotFoundError,
    StoreError,
    StoreGoneError,
    TuiOAuthError,
    ValidationError,
)
from tui_oauth.core.provider.engine import ProviderEngine, WriteBusy
from tui_oauth.core.provider.problems import Problem
from tui_oauth.core.registry import services
from tui_oauth.web import pages

log = logging.getLogger(__name__)

OAUTH = "/plugins/servlet/oauth"
MAX_BODY = 64 * 1024
FORM = "application/x-www-form-urlencoded"
HTML_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class BodyTooLarge(Exception):
    pass


class QuietDisconnect:
    """A client that goes away before sending its whole request (starlette's
    ClientDisconnect while the body is read, or the server's body deadline) is
    nobody's error and there is no one left to answer: one debug line, no traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            log.debug("the client went away before its request was read: %s %s",
                      scope.get("method"), scope.get("path"))


class StripPrefix:
    """Serve ``/base/x`` as ``/x`` when the public URL has the path ``/base``."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.prefix and scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(self.prefix + "/"):
                scope = dict(scope, path=path[len(self.prefix):])
        await self.app(scope, receive, send)


def problem_response(problem: Problem, realm: str) -> Response:
    return Response(problem.body(), status_code=problem.status, media_type=FORM,
                    headers={"WWW-Authenticate": problem.www_authenticate(realm)})


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


#: Octets of a request target kept as they are; any other (not ASCII, a control) as %XX,
#: which decodes to the same octet, so the base string is unchanged.
TARGET_SAFE = bytes(range(0x21, 0x7F))


def raw_target(request: Request) -> tuple[str, str]:
    """The path and query exactly as the client sent them (they were signed so)."""
    raw_path = request.scope.get("raw_path")
    if raw_path:  # some servers include the query in raw_path
        path = quote_from_bytes(raw_path.split(b"?", 1)[0], safe=TARGET_SAFE)
    else:
        path = request.url.path
    query = quote_from_bytes(request.scope.get("query_string", b""), safe=TARGET_SAFE)
    return path, query


def seen_url(request: Request, path: str) -> str:
    """scheme://Host/path as the request reached this server (what a client behind a
    proxy may have signed), for the refusal log."""
    host = request.headers.get("host", "")
    return f"{request.url.scheme}://{host}{path}"


def listen_url(request: Request, path: str) -> str:
    """scheme://host:port/path of the address this server listens on (ASGI "server"),
    for the refusal log: what a client behind a proxy that keeps the Host header
    (nginx ``proxy_set_header Host $host``) may have signed.  "" on a Unix socket."""
    server = request.scope.get("server")
    if not server or server[1] is None:
        return ""
    host = str(server[0])
    shown = f"[{host}]" if ":" in host else host
    return f"{request.url.scheme}://{shown}:{server[1]}{path}"


def create_app(engine: ProviderEngine, *, trusted_user_header: str | None = None,
               refresh_interval: float = 1.0, prune_interval: float = 60.0,
               purge_interval: float = 8 * 3600.0,
               on_fatal: Callable[[str], None] | None = None,
               inline: bool | None = None) -> Starlette:
    """The provider's ASGI app.  ``on_fatal`` is called (once) when serving cannot go
    on: the store was removed or replaced under the server (`serve` then stops)."""
    realm = engine.public_url
    svc = services(engine.store)
    csrf_key = engine.data_key.derive("authorize-csrf")
    header_name = trusted_user_header.lower() if trusted_user_header else None
    # The signed-request check (parse, one read, the signature, one nonce INSERT) runs on
    # the event loop: the thread-pool hop cost more than the work (provider_throughput:
    # ratio 0.34-0.45 through the pool, 0.63-0.67 inline, SQLite and PostgreSQL alike).
    # The token flows (ORM writes, rare) and the authorize page stay in the pool.  The
    # loop never waits for SQLite's write lock: when a purge's batch or another process
    # holds it, the nonce's write (nothing else) goes to the pool and waits there
    # (engine.WriteBusy; provider_scale --trace: BEGIN IMMEDIATE had waited up to 329 ms
    # on the loop, 2.3 s in 6 s, while a purge and consumer churn ran).
    verify_inline = True if inline is None else inline
    refusals = engine.refusal_log

    def unexpected(app_state: Any, exc: BaseException) -> None:
        app_state.unexpected_errors += 1
        log.exception("unexpected error answering a request", exc_info=exc)

    async def oauth_call(request: Request, flow: Callable[..., Any],
                         run_inline: bool = False) -> Any:
        """Run an engine flow on the request; returns its result or a Response."""
        try:
            body = await read_body(request)
        except BodyTooLarge:
            return PlainTextResponse("Request body too large.", status_code=413)
        path, query = raw_target(request)
        uri = engine.public_uri(path, query)
        try:  # the engine decides what of the body counts (RFC 5849 section 3.4.1.3.1)
            if run_inline:
                try:
                    return flow(uri, request.method, body, dict(request.headers), wait=False)
                except WriteBusy as busy:
                    return await run_in_threadpool(busy.finish)
            return await run_in_threadpool(flow, uri, request.method, body,
                                           dict(request.headers))
        except Problem as problem:
            log.info("refused %s %s: %s", request.method, path, problem.problem
                     if problem.cause == problem.problem
                     else f"{problem.cause} (answered {problem.problem})")
            refusals.record(problem, method=request.method, url=engine.public_uri(path),
                            seen_url=seen_url(request, path),
                            client_addr=request.client.host if request.client else "",
                            listen_url=listen_url(request, path))
            return problem_response(problem, realm)
        except StoreError as exc:
            return PlainTextResponse(exc.message, status_code=503)
        except Exception as exc:
            unexpected(request.app.state, exc)
            return problem_response(Problem("parameter_rejected",
                                            "The request could not be processed."), realm)

    async def request_token(request: Request) -> Response:
        result = await oauth_call(request, engine.request_token)
        if isinstance(result, Response):
            return result
        return Response(result, media_type=FORM, headers={"Cache-Control": "no-store"})

    async def access_token(request: Request) -> Response:
        result = await oauth_call(request, engine.access_token)
        if isinstance(result, Response):
            return result
        return Response(result, media_type=FORM, headers={"Cache-Control": "no-store"})

    async def whoami(request: Request) -> Response:
        result = await oauth_call(request, engine.verify, verify_inline)
        if isinstance(result, Response):
            return result
        return JSONResponse({"consumer_key": result.consumer_key,
                             "consumer_name": result.consumer_name,
                             "user": result.user, "mode": result.mode})

    async def ping(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def consumer_info(request: Request) -> Response:
        try:
            xml = await run_in_threadpool(svc.consumer_info.export_xml)
        except TuiOAuthError as exc:
            return PlainTextResponse(exc.message, status_code=503)
        return Response(xml, media_type="application/xml")

    def html(text: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(text, status_code=status, headers=HTML_HEADERS)

    def csrf_for(token: str, user: str) -> str:
        msg = f"authorize\x00{token}\x00{user}".encode()
        return hmac.new(csrf_key, msg, hashlib.sha256).hexdigest()

    def current_user(request: Request) -> str | None:
        if header_name is None:
            return None
        value = request.headers.get(header_name, "").strip()
        return value or None

    async def load_pending(token: str) -> Any:
        try:
            return await run_in_threadpool(svc.tokens.pending, token)
        except NotFoundError:
            return html(pages.message("Unknown request", "This authorization request is not "
                                      "known here. Start again from the application."), 404)
        except ValidationError as exc:
            return html(pages.message("Request no longer valid", exc.message), 400)
        except StoreError as exc:
            return html(pages.message("Unavailable", exc.message), 503)

    async def authorize(request: Request) -> Response:
        try:
            return await _authorize(request)
        except ClientDisconnect:
            raise  # QuietDisconnect: not an error
        except Exception as exc:
            unexpected(request.app.state, exc)
            return html(pages.message("Bad request", "The request could not be processed."),
                        400)

    async def _authorize(request: Request) -> Response:
        if request.method == "GET":
            token = request.query_params.get("oauth_token", "")
            form: dict[str, str] = {}
        else:
            try:
                body = await read_body(request, 8 * 1024)
            except BodyTooLarge:
                return PlainTextResponse("Request body too large.", status_code=413)
            try:
                form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                      max_num_fields=10))
            except (UnicodeDecodeError, ValueError):
                return html(pages.message("Bad request", "The form cannot be read."), 400)
            token = form.get("oauth_token", "")
        if not token or len(token) > 255 or not token.isprintable():
            return html(pages.message("Bad request", "oauth_token is missing."), 400)
        pending = await load_pending(token)
        if isinstance(pending, Response):
            return pending
        user = current_user(request)
        if request.method == "GET":
            if header_name is None:
                return html(pages.approve_elsewhere(token, pending.consumer_name,
                                                    pending.consumer_description))
            if user is None:
                return html(pages.message("Not signed in", "The proxy in front of this server "
                                          "did not say who you are."), 401)
            action = engine.public_uri(OAUTH + "/authorize").split("://", 1)[1]
            action = action[action.find("/"):]
            return html(pages.authorize_form(action, token, csrf_for(token, user), user,
                                             pending.consumer_name,
                                             pending.consumer_description))
        # POST: the decision
        if header_name is None:
            return html(pages.approve_elsewhere(token, pending.consumer_name,
                                                pending.consumer_description), 403)
        if user is None:
            return html(pages.message("Not signed in", "The proxy in front of this server "
                                      "did not say who you are."), 401)
        if request.headers.get("sec-fetch-site", "") == "cross-site" or not hmac.compare_digest(
                form.get("csrf", "").encode(), csrf_for(token, user).encode()):
            return html(pages.message("Refused", "This form did not come from this page. "
                                      "Open the authorization link again."), 403)
        decision = form.get("decision")
        if decision not in ("allow", "deny"):
            return html(pages.message("Bad request", "Choose Allow or Deny."), 400)
        call = svc.tokens.authorize if decision == "allow" else svc.tokens.deny
        try:
            result = await run_in_threadpool(call, token, user)
        except NotFoundError:
            return html(pages.message("Unknown request", "This request is not known here."), 404)
        except ValidationError as exc:
            return html(pages.message("Request no longer valid", exc.message), 400)
        except StoreError as exc:
            return html(pages.message("Unavailable", exc.message), 503)
        target = result.redirect_url()
        if target is not None:
            return RedirectResponse(target, status_code=303, headers=HTML_HEADERS)
        if result.approved:
            return html(pages.verifier_page(result.consumer_name, result.verifier))
        return html(pages.denied_page(result.consumer_name))

    async def flush_refusals() -> None:
        if refusals.has_work:
            written = await run_in_threadpool(refusals.flush)
            if refusals.dropped != app.state.refusals_dropped:
                log.warning("the refusal log dropped %d record(s) (more than %d waiting)",
                            refusals.dropped - app.state.refusals_dropped,
                            refusals.max_pending)
                app.state.refusals_dropped = refusals.dropped
            if written:
                log.debug("refusal log: %d record(s) written", written)

    async def housekeeping() -> None:
        """Every second: is the store still the one opened?  Write the refusal log.  On
        their own schedules: refresh the consumers' secrets, prune nonces, purge old
        tokens (and old refusals)."""
        loop = asyncio.get_running_loop()
        due = {"refresh": loop.time() + refresh_interval, "prune": loop.time() + prune_interval,
               "purge": loop.time() + purge_interval}
        while True:
            await asyncio.sleep(min(1.0, refresh_interval, prune_interval))
            try:
                await run_in_threadpool(engine.store.check_identity, deep=True)
            except StoreGoneError as exc:
                log.critical("%s %s", exc.message, exc.hint or "")
                app.state.fatal = exc.message
                if on_fatal is not None:
                    on_fatal(exc.message)
                return
            except Exception as exc:  # the database is down: requests say so (503)
                log.warning("cannot check the store: %s", exc)
                continue
            now = loop.time()
            try:
                await flush_refusals()
            except Exception as exc:  # keep serving; say why
                log.warning("cannot write the refusal log: %s", exc)
            try:
                if now >= due["refresh"]:
                    due["refresh"] = now + refresh_interval
                    await run_in_threadpool(engine.consumers.refresh_all)
                    # a data key rotation began or ended (on any host)
                    await run_in_threadpool(engine.reload_data_key)
                    await run_in_threadpool(engine.checkpoint_wal)
                if now >= due["prune"]:
                    due["prune"] = now + prune_interval
                    # nonces whose timestamps are refused anyway (past the window)
                    await run_in_threadpool(svc.tokens.purge_nonces,
                                            engine.settings.timestamp_window + 60)
                    # rotated shared secrets whose overlap ended (refused already)
                    await run_in_threadpool(svc.consumers.forget_old_secrets)
                    await run_in_threadpool(svc.consumer_info.forget_previous_key)
                if now >= due["purge"]:  # as Atlassian: every 8 hours
                    due["purge"] = now + purge_interval
                    purged = await run_in_threadpool(svc.tokens.purge)
                    if purged:
                        log.info("purged %d expired, used or long-revoked token(s)", purged)
            except Exception as exc:  # keep serving; say why
                log.warning("housekeeping failed: %s", exc)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(housekeeping())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            try:  # what waits of the refusal log
                await run_in_threadpool(refusals.flush)
            except Exception as exc:
                log.warning("cannot write the refusal log: %s", exc)
            engine.close()

    oauth_methods = ["GET", "POST"]
    any_method = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    routes = [
        Route(OAUTH + "/request-token", request_token, methods=oauth_methods),
        Route(OAUTH + "/authorize", authorize, methods=["GET", "POST"]),
        Route(OAUTH + "/access-token", access_token, methods=oauth_methods),
        Route(OAUTH + "/consumer-info", consumer_info, methods=["GET"]),
        Route("/rest/whoami", whoami, methods=any_method),
        Route("/rest/ping", ping, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.unexpected_errors = 0
    app.state.fatal = None
    app.state.refusals_dropped = 0
    app.state.engine = engine
    app.add_middleware(QuietDisconnect)
    if engine.public_path:
        app.add_middleware(StripPrefixMiddleware, prefix=engine.public_path)
    return app


class StripPrefixMiddleware(StripPrefix):
    """StripPrefix in Starlette's middleware form (``app.add_middleware``)."""

