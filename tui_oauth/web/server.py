"""The provider's HTTP server: uvicorn, hardened, and the logging around it.

uvicorn bounds neither the time a client may take to send its request headers
nor the number of connections it holds open (``limit_concurrency`` answers 503
only once a request has been parsed, so a connection that never finishes its
headers is never counted against it).  A few hundred clients that each send a
header line every few seconds (Slowloris) therefore hold every file descriptor
and stop the server.  Here:

- :class:`HardenedH11Protocol` (uvicorn's h11 protocol; httptools is never used)
  gives a client ``header_timeout`` seconds to send a request's headers, counted
  from the connection or from the end of the previous response and *not* reset
  by each byte that arrives, and as long again for the body; then it answers
  408 (if part of a request came) and closes the connection.
- At most ``max_connections`` connections are open.  A connection beyond that
  closes, at once, the oldest connection still waiting for its request headers
  (a slow or idle one), or is itself answered 503 and closed when every
  connection is busy with a request.  A client that sends its request promptly
  is therefore served however many slow connections are open.
- :func:`raise_nofile_limit` raises RLIMIT_NOFILE's soft limit to the hard
  limit, and ``max_connections`` is kept below it with room for the database,
  the keyring and the sockets accepted or closed but not yet seen by the
  protocol, so that ``accept()`` does not fail with EMFILE (if it does, asyncio
  stops accepting for a second and says so, once per 10 s in the log).

An attacker holding more connections than the limit makes the server close and
accept connections as fast as it reconnects: the server keeps answering, more
slowly (benchmarks/slowloris.py measures it).  Beyond that, a proxy that buffers
whole requests (nginx) belongs in front.

Logging (:func:`configure_logging`): one stderr handler on the root logger with
a :class:`RedactFilter` (OAuth credentials and anything named ``*secret*`` are
replaced by ``[redacted]`` in every line: access log, application and library
logs, tracebacks) and a :class:`RepeatFilter` (a line repeated within 10 s is
shown once, then once more with "(repeated N times in the last T s)").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

# redact and REDACTED are used from here too (tests, older imports): kept importable.
from tui_oauth.core.redact import REDACTED, RedactFilter, redact  # noqa: F401
from tui_oauth.core.text import VisibleFormatter

log = logging.getLogger(__name__)

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 4096
#: Connections accepted per wakeup of the accept loop (asyncio accepts up to
#: ``backlog`` sockets before any of them is seen by the protocol, and as many
#: closed ones may await their close), and the listen queue.
ACCEPT_BACKLOG = 256
#: File descriptors kept for everything that is not a client connection: the
#: database pool, the keyring's D-Bus socket, logs, the threadpool.
FD_RESERVE = 128
MIN_CONNECTIONS = 16
LOG_EVERY = 10.0

_408 = (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 37\r\nConnection: close\r\n\r\n"
        b"The request did not arrive in time.\r\n")
_503 = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: 36\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
        b"Too many connections; retry later.\r\n")


# Connection limits ----------------------------------------------------------------


@dataclass
class ConnectionLimits:
    """Shared by every connection of one server (the event loop's thread only)."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    open: set[HardenedH11Protocol] = field(default_factory=set)
    #: Connections waiting for request headers, the longest-waiting first.
    waiting: OrderedDict[HardenedH11Protocol, None] = field(default_factory=OrderedDict)
    timed_out: int = 0
    evicted: int = 0
    refused: int = 0
    #: kind -> (when last logged, events since): under attack these happen thousands
    #: of times a second, so they are counted here rather than each sent to logging.
    _said: dict[str, tuple[float, int]] = field(default_factory=dict)

    def say(self, kind: str, level: int, message: str, *args: Any) -> None:
        """Log ``message`` at most once per :data:`LOG_EVERY` seconds per kind."""
        now = time.monotonic()
        last, since = self._said.get(kind, (-LOG_EVERY, 0))
        if now - last < LOG_EVERY:
            self._said[kind] = (last, since + 1)
            return
        self._said[kind] = (now, 0)
        if since:
            message += f" (and {since} more in the last {now - last:.0f} s)"
        log.log(level, message, *args)

    def summary(self) -> str:
        return (f"{self.timed_out} connection(s) closed for a slow request, "
                f"{self.evicted} slow connection(s) closed to admit new ones, "
                f"{self.refused} refused at the limit of {self.max_connections}")


class ServerConfig(uvicorn.Config):
    """uvicorn's Config with the :class:`ConnectionLimits` its protocol reads."""

    def __init__(self, app: Any, *, limits: ConnectionLimits, **kwargs: Any) -> None:
        self.limits = limits
        super().__init__(app, http=HardenedH11Protocol, **kwargs)


class HardenedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header/body deadline and a connection limit."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        limits = getattr(config, "limits", None)
        self.limits: ConnectionLimits = limits if limits is not None else ConnectionLimits()
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = "new"  # "headers", "body", "busy" (a request is being answered)

    # Where the client is in its request, and the deadline that goes with it.

    def _watch(self) -> None:
        if self.transport is None or self.transport.is_closing():
            self._forget()
            return
        state = self.conn.their_state
        phase = "headers" if state is h11.IDLE else "body" if state is h11.SEND_BODY else "busy"
        if phase == self._phase:
            return  # the deadline runs on: new bytes do not extend it
        self._phase = phase
        self._cancel_deadline()
        self.limits.waiting.pop(self, None)
        if phase == "busy":
            return
        if phase == "headers":
            self.limits.waiting[self] = None
        self._deadline = self.loop.call_later(self.limits.header_timeout, self._expired)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _forget(self) -> None:
        self._cancel_deadline()
        self._phase = "closed"
        self.limits.waiting.pop(self, None)
        self.limits.open.discard(self)

    def _drop(self, reply: bytes | None) -> None:
        if not self.transport.is_closing():
            if reply is not None:
                self.transport.write(reply)
            self.transport.close()
        self._forget()

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        self.limits.timed_out += 1
        what = "headers" if self._phase == "headers" else "body"
        self.limits.say(what, logging.INFO, "closed a connection from %s: its request %s did "
                        "not arrive within %g s", _peer(self.client), what,
                        self.limits.header_timeout)
        self._drop(self._timeout_reply())

    def _timeout_reply(self) -> bytes | None:
        # 408 when part of a request came and no answer was started; an idle
        # keep-alive connection is just closed.
        if self._phase == "headers":
            return _408 if self.conn.trailing_data[0] else None
        if self.conn.our_state is h11.SEND_RESPONSE and (
                self.cycle is None or not self.cycle.response_started):
            return _408
        return None

    def evict(self) -> None:
        """Close this connection (waiting for headers) to admit a new one."""
        self.limits.evicted += 1
        self._drop(self._timeout_reply())

    # uvicorn's protocol interface

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limits = self.limits
        if len(limits.open) >= limits.max_connections:
            oldest = next(iter(limits.waiting), None)
            if oldest is None:  # every connection is answering a request: refuse this one
                limits.refused += 1
                limits.say("refused", logging.WARNING, "refused a connection from %s: %d "
                           "connections are open, the limit, all busy", _peer(self.client),
                           len(limits.open))
                self._drop(_503)
                return
            oldest.evict()
            limits.say("evicted", logging.INFO, "at the limit of %d connections: closed the one "
                       "that had waited longest for its request headers",
                       limits.max_connections)
        limits.open.add(self)
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def shutdown(self) -> None:
        super().shutdown()
        if self.transport.is_closing():
            self._forget()


def _peer(client: tuple[str, int] | None) -> str:
    if not client:
        return "?"
    host, port = client
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def raise_nofile_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        for value in (target, 1 << 20, 65536):
            if value <= soft:
                break
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (value, hard))
            except (ValueError, OSError):
                continue
            soft = value
            break
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_budget(requested: int, nofile: int) -> int:
    """The most connections ``nofile`` descriptors allow, at most ``requested``."""
    return max(MIN_CONNECTIONS, min(requested, nofile - 2 * ACCEPT_BACKLOG - FD_RESERVE))


def make_config(app: Any, *, header_timeout: float = DEFAULT_HEADER_TIMEOUT,
                max_connections: int = DEFAULT_MAX_CONNECTIONS, log_level: str = "info",
                access_log: bool = False, host: str = "127.0.0.1", port: int = 8080,
                log_config: Any = None) -> ServerConfig:
    """The uvicorn configuration ``tui-oauth serve`` runs with (``log_config=None``:
    logging is :func:`configure_logging`'s)."""
    limits = ConnectionLimits(header_timeout=header_timeout, max_connections=max_connections)
    return ServerConfig(app, limits=limits, host=host, port=port, log_level=log_level,
                        access_log=access_log, log_config=log_config, proxy_headers=False,
                        ws="none",  # no WebSocket routes: an Upgrade is just a request
                        server_header=False, backlog=ACCEPT_BACKLOG,
                        timeout_graceful_shutdown=max(5, int(header_timeout) + 1))


class _Server(uvicorn.Server):
    """uvicorn's server that says when it is listening (``on_started``)."""

    def __init__(self, config: uvicorn.Config,
                 on_started: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit and self._on_started is not None:
            self._on_started()


def run(config: ServerConfig, sockets: list[socket.socket] | None = None,
        on_server: Callable[[uvicorn.Server], None] | None = None,
        on_started: Callable[[], None] | None = None) -> None:
    """Serve until stopped.  ``on_server`` gets the uvicorn server first (to stop it from
    inside: ``server.should_exit = True``); ``on_started`` is called once it listens."""
    server = _Server(config, on_started)
    if on_server is not None:
        on_server(server)
    try:
        server.run(sockets=sockets)
    finally:
        if config.limits.timed_out or config.limits.evicted or config.limits.refused:
            log.info("%s", config.limits.summary())


# Several worker processes on one socket ------------------------------------------------


def listening_socket(host: str, port: int, backlog: int = ACCEPT_BACKLOG) -> socket.socket:
    """A TCP socket listening on ``host:port``, to be shared by worker processes.

    Made with ``IPPROTO_TCP`` and with ``TCP_NODELAY`` set on it (Linux passes it on to
    every accepted connection): asyncio sets TCP_NODELAY itself only on sockets whose
    protocol reads as TCP, and uvicorn's own ``--workers`` launcher makes its socket
    with protocol 0, so there h11's separate header and body writes meet the client's
    delayed ACK and every keep-alive request waits about 40 ms.
    """
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                              proto=socket.IPPROTO_TCP)[0]
    return _listen_on(info, backlog, v6only=False)


def listening_sockets(host: str, port: int,
                      backlog: int = ACCEPT_BACKLOG) -> list[socket.socket]:
    """Sockets listening on every address ``host`` resolves to (``localhost``: 127.0.0.1
    and ::1, as uvicorn would bind them itself), made with :func:`listening_socket`'s
    options; one address gives one socket, exactly :func:`listening_socket`'s."""
    infos = list(dict.fromkeys(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                  proto=socket.IPPROTO_TCP)))
    if len(infos) == 1:
        return [_listen_on(infos[0], backlog, v6only=False)]
    made: list[socket.socket] = []
    try:
        for info in infos:  # IPv6 only on its own socket: the IPv4 one is beside it
            made.append(_listen_on(info, backlog, v6only=True))
    except OSError:
        for sock in made:
            sock.close()
        raise
    return made


def _listen_on(info: tuple[Any, ...], backlog: int, *, v6only: bool) -> socket.socket:
    family, kind, proto, _, address = info
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def inherited_socket(fd: int) -> socket.socket:
    """The listening socket a worker was given by its parent (fd ``fd``)."""
    sock = socket.socket(fileno=fd)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _die_with_parent() -> None:  # in the child, before exec: SIGTERM when the parent dies
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _how_ended(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    ready_fd: int = -1  # the read end of the pipe the worker writes one byte to when up
    started: float = 0.0
    quick_deaths: int = 0


class Supervisor:
    """Runs ``count`` worker processes on one listening socket and keeps them running.

    ``command(ready_fd)`` is a worker's argv: it must serve on the inherited socket
    (``sock.fileno()``) and write a byte to ``ready_fd`` once it listens.  At start,
    every worker must say it is ready within ``start_timeout`` seconds, else all are
    stopped and :meth:`run` returns 1.  A worker that dies later is started again
    (after 1, 2, 4 ... 30 s when it keeps dying within a minute of its start); one
    that cannot start again stops them all (1).  SIGTERM or SIGINT stops every worker
    (SIGTERM, then SIGKILL after ``grace`` seconds) and :meth:`run` returns 0.
    """

    def __init__(self, sock: socket.socket, count: int,
                 command: Callable[[int], list[str]], *, start_timeout: float = 60.0,
                 grace: float = 15.0, say: Callable[[str], None] | None = None) -> None:
        self.sock = sock
        self.workers = [_Worker(i + 1) for i in range(count)]
        self.command = command
        self.start_timeout = start_timeout
        self.grace = grace
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self.stopping: int | None = None  # the signal that asked us to stop

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.stopping = signum

    def _spawn(self, worker: _Worker) -> None:
        read_end, write_end = os.pipe()
        try:
            worker.proc = subprocess.Popen(
                self.command(write_end), pass_fds=(self.sock.fileno(), write_end),
                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        worker.ready_fd = read_end
        worker.started = time.monotonic()

    def _wait_ready(self, workers: list[_Worker]) -> _Worker | None:
        """Wait until each of ``workers`` is ready; the first that is not (or None)."""
        deadline = time.monotonic() + self.start_timeout
        pending = {w.ready_fd: w for w in workers}
        while pending and self.stopping is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return next(iter(pending.values()))
            readable, _, _ = select.select(list(pending), [], [], min(left, 0.2))
            for fd in readable:
                worker = pending.pop(fd)
                if not os.read(fd, 1):  # EOF: it exited (or closed the pipe) first
                    return worker
            for worker in pending.values():
                if worker.proc is not None and worker.proc.poll() is not None:
                    return worker
        return None

    def _close_pipe(self, worker: _Worker) -> None:
        if worker.ready_fd >= 0:
            os.close(worker.ready_fd)
            worker.ready_fd = -1

    def _stop_all(self) -> None:
        alive = [w for w in self.workers if w.proc is not None and w.proc.poll() is None]
        for worker in alive:
            with contextlib.suppress(ProcessLookupError):
                worker.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + self.grace
        for worker in alive:
            assert worker.proc is not None
            try:
                worker.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"worker {worker.index} (pid {worker.proc.pid}) did not stop "
                         f"within {self.grace:g} s: killed")
                worker.proc.kill()
                worker.proc.wait()
        for worker in self.workers:
            self._close_pipe(worker)

    def _failed(self, worker: _Worker, when: str) -> int:
        proc = worker.proc
        code = None
        if proc is not None:  # its pipe closes a moment before it can be waited for
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = proc.wait(0 if self.stopping is not None else 2)
        how = (_how_ended(code) if code is not None
               else f"did not say it was ready within {self.start_timeout:g} s")
        self.say(f"error: worker {worker.index} {how} {when}; stopping the others.")
        self._stop_all()
        return 1

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _run(self) -> int:
        try:
            for worker in self.workers:
                self._spawn(worker)
        except OSError as exc:
            self.say(f"error: cannot start a worker: {exc}")
            self._stop_all()
            return 1
        failed = self._wait_ready(self.workers)
        if failed is not None:
            return self._failed(failed, "before it was serving")
        for worker in self.workers:
            self._close_pipe(worker)
        self.say(f"{len(self.workers)} workers serving (pids "
                 f"{', '.join(str(w.proc.pid) for w in self.workers if w.proc)}).")
        while self.stopping is None:
            time.sleep(0.2)
            for worker in self.workers:
                proc = worker.proc
                if self.stopping is not None or proc is None or proc.poll() is None:
                    continue
                lived = time.monotonic() - worker.started
                worker.quick_deaths = worker.quick_deaths + 1 if lived < 60 else 0
                delay = min(30.0, 2.0 ** (worker.quick_deaths - 1)) if worker.quick_deaths else 0
                self.say(f"worker {worker.index} (pid {proc.pid}) {_how_ended(proc.returncode)}; "
                         "starting it again"
                         + (f" in {delay:g} s." if delay else "."))
                until = time.monotonic() + delay
                while self.stopping is None and time.monotonic() < until:
                    time.sleep(0.1)
                if self.stopping is not None:
                    break
                try:
                    self._spawn(worker)
                except OSError as exc:
                    self.say(f"error: cannot start worker {worker.index} again: {exc}")
                    self._stop_all()
                    return 1
                if self._wait_ready([worker]) is not None and self.stopping is None:
                    return self._failed(worker, "when started again")
                self._close_pipe(worker)
                if self.stopping is None:
                    self.say(f"worker {worker.index} (pid "
                             f"{worker.proc.pid if worker.proc else '?'}) is serving again.")
        self.say(f"stopping {len(self.workers)} workers ({signal.Signals(self.stopping).name}).")
        self._stop_all()
        return 0


# Logging (redaction: tui_oauth.core.redact) ---------------------------------------

_VARYING = re.compile(r"0x[0-9a-fA-F]+|\d+")


@dataclass
class _Seen:
    since: float
    text: str
    suppressed: int = 0


class RepeatFilter(logging.Filter):
    """Collapses repeated lines: the first of a kind in ``window`` seconds is shown,
    the rest are counted, and the next one shown after the window says how many.

    Lines are "of a kind" when logger, level and message are equal once numbers
    (ports, file descriptors, addresses) are ignored.  The access log is left
    alone: every request is its line.
    """

    def __init__(self, window: float = 10.0, *, max_kinds: int = 2048,
                 exempt: tuple[str, ...] = ("uvicorn.access",),
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.max_kinds = max_kinds
        self.exempt = exempt
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, int, str], _Seen] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name in self.exempt:
            return True
        message = record.getMessage()
        key = (record.name, record.levelno, _VARYING.sub("#", message)[:400])
        now = self.clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen.since < self.window:
                seen.suppressed += 1
                return False
            self._seen[key] = _Seen(now, message)
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_kinds:
                self._seen.popitem(last=False)
        if seen is not None and seen.suppressed:
            record.msg = (f"{message} (repeated {seen.suppressed} times in the last "
                          f"{max(1, round(now - seen.since))} s)")
            record.args = None
        return True

    def pending(self) -> Iterator[tuple[str, int, str]]:
        """(logger, level, line) for each kind with repeats not yet reported; resets them."""
        now = self.clock()
        with self._lock:
            for (name, level, _), seen in self._seen.items():
                if seen.suppressed:
                    yield (name, level, f"{seen.text} (repeated {seen.suppressed} times in "
                                        f"the last {max(1, round(now - seen.since))} s)")
                    seen.suppressed = 0

    def flush(self, handlers: list[logging.Handler] | None = None) -> None:
        """Log the repeats not yet reported (at shutdown), to ``handlers`` (the root's)."""
        for name, level, line in list(self.pending()):
            record = logging.getLogger(name).makeRecord(name, level, "(repeats)", 0, line,
                                                        (), None)
            for handler in logging.getLogger().handlers if handlers is None else handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)


#: Loggers whose records get the redaction filter directly, in addition to the
#: root handler (a record logged on them is redacted whatever handler gets it).
REDACTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi",
                    "tui_oauth", "oauthlib", "starlette")


def install_redaction(handler: logging.Handler | None = None) -> RedactFilter:
    """Put one :class:`RedactFilter` on every handler of the root and uvicorn loggers
    (and ``handler``), and on the loggers that might see a credential."""
    redacting = RedactFilter()
    handlers: list[logging.Handler] = [] if handler is None else [handler]
    for name in ("", *REDACTED_LOGGERS):
        logger = logging.getLogger(name)
        handlers.extend(logger.handlers)
        if name and not any(isinstance(f, RedactFilter) for f in logger.filters):
            logger.addFilter(redacting)
    for h in handlers:
        if not any(isinstance(f, RedactFilter) for f in h.filters):
            h.filters.insert(0, redacting)  # before any other filter sees the record
    return redacting


def configure_logging(level: str, stream: Any = None) -> RepeatFilter:
    """Logging for ``tui-oauth serve``: one stderr handler on the root logger with
    redaction then repeat collapsing; ``tui_oauth`` and ``uvicorn`` at ``level``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    # Log lines quote what clients sent (paths, keys): escaped, one line per entry.
    handler.setFormatter(VisibleFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    repeats = RepeatFilter()
    handler.addFilter(RedactFilter())
    handler.addFilter(repeats)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper())
    for name in ("tui_oauth", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.setLevel(numeric)
        for old in list(logger.handlers):  # everything goes through the root handler
            logger.removeHandler(old)
        logger.propagate = True
    install_redaction()
    return repeats
