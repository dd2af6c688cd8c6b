"""Outgoing HTTP: which addresses may be reached, and one deadline for a whole exchange.

Every fetch that tui-oauth makes on someone's say-so (a URL typed in a form, a
redirect, a configured service provider) goes through :func:`guarded_session`:

- **The address actually connected to is checked.**  The host name is resolved
  once (within the deadline), *every* address it resolves to is checked against
  an :class:`AddressPolicy`, and the socket connects to those checked addresses,
  never to the name again, so a DNS answer that changes between a check and the
  connection (DNS rebinding) cannot slip through.  Each redirect is a new
  request and goes through the same check.  TLS still verifies the certificate
  against the host name (SNI too): only the TCP connection is pinned.
- **By default only public (global unicast) addresses are reached.**  Loopback,
  private, unique-local, link-local, shared (100.64.0.0/10), multicast,
  unspecified, reserved and documentation ranges are refused, and so are their
  IPv4-mapped, NAT64, 6to4, Teredo and IPv4-compatible IPv6 forms.
  ``allow_private`` admits loopback, private, unique-local, shared and
  link-local addresses (an intranet server); cloud metadata endpoints stay
  refused even then.  A refusal happens before any connection is attempted, so
  its message is the same whether or not something listens on the port.
- **No proxy.**  The session ignores ``HTTP(S)_PROXY``/``ALL_PROXY`` (a proxy
  would resolve and connect on our behalf, out of reach of the check) and
  ``~/.netrc``; passing ``proxies=`` explicitly is refused.  A CA bundle named
  by ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` is still honoured.
- **One wall-clock deadline** (:class:`Deadline`) covers DNS, connect, TLS, the
  status line, the headers and the body together: each blocking step waits at
  most for the time that remains, and a watchdog shuts the connections down
  when the time is up, so a server that drips its answer a byte at a time
  cannot hold a fetch past it.  ``Deadline.phase`` says what was going on then.

Nothing here prints; errors carry messages in words, free of any front end's
flag or button names (the CLI and the console add their own hint).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

from tui_oauth.core.errors import TuiOAuthError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# --- the address policy -----------------------------------------------------------------

# Rules a refusal can name.  ALLOWABLE: admitted by allow_private (an intranet).
LOOPBACK = "loopback"
PRIVATE = "private"
UNIQUE_LOCAL = "unique-local"
SITE_LOCAL = "site-local"
SHARED = "shared"
LINK_LOCAL = "link-local"
CLOUD_METADATA = "cloud-metadata"
UNSPECIFIED = "unspecified"
MULTICAST = "multicast"
BROADCAST = "broadcast"
DOCUMENTATION = "documentation"
RESERVED = "reserved"
TRANSITION = "transition"
ALLOWABLE = frozenset({LOOPBACK, PRIVATE, UNIQUE_LOCAL, SITE_LOCAL, SHARED, LINK_LOCAL})

# Cloud instance metadata and platform endpoints: credentials live there.  Refused even
# with allow_private (an intranet server is never one of these).
_METADATA = {
    ipaddress.ip_address(a): what
    for a, what in (
        ("169.254.169.254", "cloud instance metadata (AWS, GCP, Azure, OpenStack, Oracle)"),
        ("169.254.170.2", "AWS ECS task metadata"),
        ("169.254.170.23", "AWS EKS pod identity"),
        ("fd00:ec2::254", "AWS instance metadata over IPv6"),
        ("fd00:ec2::23", "AWS EKS pod identity over IPv6"),
        ("100.100.100.200", "Alibaba Cloud instance metadata"),
        ("168.63.129.16", "Azure's platform endpoint (WireServer)"),
    )
}


def _nets(*specs: tuple[str, str, str]) -> tuple[tuple[IPNetwork, str, str], ...]:
    return tuple((ipaddress.ip_network(n), rule, what) for n, rule, what in specs)


# Checked in order; the first match names the rule.  Written out rather than left to
# ipaddress.is_global, whose tables differ between Python releases (3.11.7 calls
# 224.0.0.1, 192.88.99.1, 2002::1 and fec0::1 global).
_IPV4 = _nets(
    ("0.0.0.0/32", UNSPECIFIED, "the unspecified address (it reaches this machine)"),
    ("0.0.0.0/8", RESERVED, 'in 0.0.0.0/8 ("this network"), not a destination'),
    ("127.0.0.0/8", LOOPBACK, "a loopback address (this machine)"),
    ("10.0.0.0/8", PRIVATE, "a private address (10.0.0.0/8)"),
    ("172.16.0.0/12", PRIVATE, "a private address (172.16.0.0/12)"),
    ("192.168.0.0/16", PRIVATE, "a private address (192.168.0.0/16)"),
    ("100.64.0.0/10", SHARED,
     "in the shared address space 100.64.0.0/10 (carrier-grade NAT, internal networks)"),
    ("169.254.0.0/16", LINK_LOCAL, "link-local (169.254.0.0/16)"),
    ("192.0.0.0/24", RESERVED, "reserved for IETF protocol assignments (192.0.0.0/24)"),
    ("192.0.2.0/24", DOCUMENTATION, "reserved for documentation (192.0.2.0/24)"),
    ("198.51.100.0/24", DOCUMENTATION, "reserved for documentation (198.51.100.0/24)"),
    ("203.0.113.0/24", DOCUMENTATION, "reserved for documentation (203.0.113.0/24)"),
    ("192.88.99.0/24", TRANSITION, "the retired 6to4 relay anycast range (192.88.99.0/24)"),
    ("198.18.0.0/15", RESERVED, "reserved for network benchmarks (198.18.0.0/15)"),
    ("224.0.0.0/4", MULTICAST, "a multicast address"),
    ("255.255.255.255/32", BROADCAST, "the broadcast address"),
    ("240.0.0.0/4", RESERVED, "reserved for future use (240.0.0.0/4)"),
)
_IPV6 = _nets(
    ("::/128", UNSPECIFIED, "the unspecified address (it reaches this machine)"),
    ("::1/128", LOOPBACK, "a loopback address (this machine)"),
    ("fc00::/7", UNIQUE_LOCAL, "a unique-local address (private IPv6, fc00::/7)"),
    ("fe80::/10", LINK_LOCAL, "link-local (fe80::/10)"),
    ("fec0::/10", SITE_LOCAL, "a site-local address (private IPv6, fec0::/10, retired)"),
    ("ff00::/8", MULTICAST, "a multicast address"),
    ("2001:db8::/32", DOCUMENTATION, "reserved for documentation (2001:db8::/32)"),
    ("3fff::/20", DOCUMENTATION, "reserved for documentation (3fff::/20)"),
    ("2001::/23", RESERVED, "reserved for IETF protocol assignments (2001::/23)"),
    ("64:ff9b:1::/48", RESERVED, "in the local-use IPv4/IPv6 translation range"),
    ("2000::/3", "", ""),  # global unicast: allowed
    ("::/0", RESERVED, "outside IPv6 global unicast (2000::/3), not a public address"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


@dataclass(frozen=True)
class Refusal:
    """Why an address was refused: ``rule`` (one of the names above) and, in words, what
    the address ``is_``; ``via`` names the form when an IPv6 address carries an IPv4
    one.  ``allowable``: allow_private would have admitted it."""

    address: str
    rule: str
    is_: str
    allowable: bool
    via: str = ""

    def describe(self, host: str | None = None) -> str:
        """One sentence: what was refused and why, free of front-end option names."""
        address = f"{self.address} ({self.via})" if self.via else self.address
        if host is None or _same_address(host, self.address):
            subject = f"{address} is"
        else:
            subject = f"{host} resolves to {address}, which is"
        why = (
            "addresses like it are refused even when private addresses are allowed"
            if not self.allowable else
            "by default only public addresses are fetched from, so that a URL cannot "
            "reach services inside this network"
        )
        return f"{subject} {self.is_}: refused before connecting ({why})."


def _same_address(host: str, address: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")) == ipaddress.ip_address(address)
    except ValueError:
        return False


def _lookup(ip: IPAddress) -> tuple[str, str]:
    table = _IPV4 if ip.version == 4 else _IPV6
    for net, rule, what in table:
        if ip in net:
            return rule, what
    return "", ""  # IPv4 global unicast


def classify(address: str | IPAddress) -> Refusal | None:
    """The rule that refuses ``address`` by default, or None for a public address."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    text = str(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(ip.packed)  # the %scope plays no part in the rules
    if ip in _METADATA:
        base = _lookup(ip)[1]
        where = f"where {_METADATA[ip]} and its credentials live"
        return Refusal(text, CLOUD_METADATA, f"{base}, {where}" if base else f"the address {where}",
                       allowable=False)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded, form, follows = _embedded_ipv4(ip)
        if embedded is not None:
            via = f"{form} of {embedded}"
            inner = classify(embedded)
            if inner is None:
                if follows:  # NAT64 to a public IPv4 address, or the mapped form of one
                    return None
                return Refusal(text, TRANSITION, "a retired IPv6 transition form",
                               allowable=False, via=via)
            return Refusal(text, inner.rule, inner.is_, allowable=follows and inner.allowable,
                           via=via)
    rule, what = _lookup(ip)
    if not rule:
        return None
    return Refusal(text, rule, what, allowable=rule in ALLOWABLE)


def _embedded_ipv4(
    ip: ipaddress.IPv6Address,
) -> tuple[ipaddress.IPv4Address | None, str, bool]:
    """An IPv4 address carried inside ``ip``: (it, the form's name, whether the IPv6
    address reaches that IPv4 address itself and so follows its rule)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "the IPv4-mapped form", True
    if ip in _NAT64:
        return ipaddress.IPv4Address(ip.packed[-4:]), "the NAT64 form", True
    if ip.sixtofour is not None:
        return ip.sixtofour, "a 6to4 address", False
    if ip.teredo is not None:
        return ip.teredo[1], "a Teredo address", False
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        return ipaddress.IPv4Address(ip.packed[-4:]), "the IPv4-compatible form", False
    return None, "", False


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses an outgoing connection may reach.

    ``allow_private`` admits loopback, private, unique-local, site-local, shared and
    link-local addresses (for a server on an intranet), never a cloud metadata
    endpoint.  ``allowed_networks`` admits exactly those networks whatever else
    they are (an explicit, narrow exception, e.g. one known host).
    """

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = field(default=())

    def refusal(self, address: str | IPAddress) -> Refusal | None:
        """None if ``address`` may be connected to, else why not."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            ip = ipaddress.IPv6Address(ip.packed)
        if any(ip.version == n.version and ip in n for n in self.allowed_networks):
            return None
        found = classify(address)
        if found is None or (self.allow_private and found.allowable):
            return None
        return found


class AddressRefusedError(TuiOAuthError):
    """A host resolved to an address the policy refuses; nothing was connected to."""

    def __init__(self, host: str, refusal: Refusal) -> None:
        super().__init__(refusal.describe(host))
        self.host = host
        self.refusal = refusal


class ProxyRefusedError(TuiOAuthError):
    """A proxy was asked for: it would connect on our behalf, out of the policy's reach."""


# --- the deadline ---------------------------------------------------------------------

RESOLVING = "resolving"
CONNECTING = "connecting"
TLS = "tls"
WAITING = "waiting"  # request sent (or about to be); status line and headers not all in
READING = "reading"  # headers in; reading the body


class Deadline:
    """One wall-clock limit for a whole exchange (all its requests and redirects).

    Use as a context manager: entering starts a watchdog that, when the time is up,
    shuts down every connection registered with :meth:`watch` (which wakes any read
    blocked on it); leaving cancels the watchdog and releases them.  :meth:`remaining`
    bounds each blocking step; :attr:`phase` says what the exchange was doing (set by
    the guarded connections and by the caller).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.at = self.started + seconds
        self.phase = RESOLVING
        self.fired = False
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def expired(self) -> bool:
        return self.fired or self.remaining() <= 0

    def __enter__(self) -> Deadline:
        self._timer = threading.Timer(max(self.remaining(), 0.0), self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            watched, self._watched = self._watched, []
            self.fired = self.fired or self.remaining() <= 0
        for sock in watched:
            sock.close()

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock``'s connection down when the time is up.  Keeps a duplicate of
        the descriptor (shutdown acts on the connection, whichever descriptor names
        it), so it still works after TLS has taken the original socket over."""
        dup = sock.dup()
        with self._lock:
            if not self.fired:
                self._watched.append(dup)
                return
        _shutdown(dup)
        dup.close()

    def _expire(self) -> None:
        with self._lock:
            self.fired = True
            watched = list(self._watched)
        for sock in watched:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer, or never connected
        sock.shutdown(socket.SHUT_RDWR)


# --- the guarded connection ------------------------------------------------------------


@dataclass(frozen=True)
class Guard:
    policy: AddressPolicy
    deadline: Deadline


def resolve(host: str, port: int, deadline: Deadline) -> list[tuple[Any, ...]]:
    """``getaddrinfo`` for a TCP connection, given up when the deadline passes.

    The lookup runs in a daemon thread because getaddrinfo cannot be interrupted; an
    abandoned lookup ends on its own with the resolver's timeouts.
    """
    family = allowed_gai_family()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:  # a literal address: no lookup to wait for
        return socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    box: dict[str, Any] = {}

    def lookup() -> None:
        try:
            box["result"] = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
        except BaseException as exc:  # handed to the waiting thread
            box["error"] = exc

    worker = threading.Thread(target=lookup, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(max(deadline.remaining(), 0.0))
    if worker.is_alive():
        raise TimeoutError(f"resolving {host} took longer than the time allowed")
    if "error" in box:
        raise box["error"]
    result: list[tuple[Any, ...]] = box["result"]
    return result


def open_connection(host: str, port: int, guard: Guard,
                    socket_options: Iterable[tuple[int, int, int | bytes]] | None = None,
                    source_address: tuple[str, int] | None = None) -> socket.socket:
    """Resolve ``host`` once, check every address, connect to a checked one.

    Raises :class:`AddressRefusedError` before any connection if any address is
    refused (one refused answer among allowed ones is how DNS rebinding looks),
    ``socket.gaierror`` if the name does not resolve, ``TimeoutError`` when the
    deadline passes, or the last connection error.
    """
    deadline = guard.deadline
    host = host.strip("[]")
    deadline.phase = RESOLVING
    infos = resolve(host, port, deadline)
    if not infos:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} has no address")
    for *_, sockaddr in infos:
        refusal = guard.policy.refusal(sockaddr[0])
        if refusal is not None:
            raise AddressRefusedError(host, refusal)
    deadline.phase = CONNECTING
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise TimeoutError(f"connecting to {host} took longer than the time allowed")
        sock = socket.socket(family, kind, proto)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(remaining)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        deadline.watch(sock)
        return sock
    assert error is not None
    raise error


_quiet = threading.local()


class _QuietHeaderDefects(logging.Filter):
    """urllib3 logs a warning with a traceback when it cannot parse a response's headers,
    which any server can cause (and the deadline's shutdown does, mid-header).  For a
    guarded connection the fetch itself reports what went wrong, so drop that line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (getattr(_quiet, "active", False)
                    and str(record.msg).startswith("Failed to parse headers"))


_HEADER_FILTER = _QuietHeaderDefects()
logging.getLogger("urllib3.connection").addFilter(_HEADER_FILTER)


class _GuardedConnectionMixin:
    """Replaces urllib3's ``_new_conn`` (which resolves and connects in one step, to
    whatever the name resolves to) with :func:`open_connection`."""

    _after_connect = WAITING

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _quiet.active = True
        try:
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]
        finally:
            _quiet.active = False

    def __init__(self, *args: Any, guard: Guard, **kwargs: Any) -> None:
        self._guard = guard
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        deadline = self._guard.deadline
        try:
            sock = open_connection(conn._dns_host, conn.port, self._guard,
                                   conn.socket_options, conn.source_address)
        except socket.gaierror as exc:
            raise NameResolutionError(conn.host, conn, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out ({deadline.phase})") from exc
        except OSError as exc:
            raise NewConnectionError(conn, f"Failed to establish a new connection: {exc}") \
                from exc
        sys.audit("http.client.connect", conn, conn.host, conn.port)
        deadline.phase = self._after_connect
        return sock


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    _after_connect = TLS

    def connect(self) -> None:
        super().connect()  # TLS verifies the certificate against the host name
        self._guard.deadline.phase = WAITING


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class _GuardedPoolManager(PoolManager):
    def __init__(self, guard: Guard, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._guard = guard
        self.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}

    def _new_pool(self, scheme: str, host: str, port: int,
                  request_context: dict[str, Any] | None = None) -> HTTPConnectionPool:
        context = dict(self.connection_pool_kw if request_context is None else request_context)
        context["guard"] = self._guard  # handed by the pool to every connection it makes
        return super()._new_pool(scheme, host, port, context)


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose every connection goes through :func:`open_connection`."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard  # before super().__init__, which builds the pool manager
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = _GuardedPoolManager(
            self._guard, num_pools=connections, maxsize=maxsize, block=block, **pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise ProxyRefusedError(
            "Outgoing fetches do not go through a proxy: it would connect on tui-oauth's "
            "behalf, where the address checks cannot follow.")


def guarded_session(policy: AddressPolicy, deadline: Deadline) -> requests.Session:
    """A requests session that connects only where ``policy`` allows, within ``deadline``.

    Environment proxies and ~/.netrc are not used (``trust_env`` off); a CA bundle named
    by REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE is.  Pass ``timeout=deadline.remaining()``
    (or less) to each request as well, so that no single wait outlasts the deadline.
    """
    session = requests.Session()
    session.trust_env = False
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    adapter = GuardedAdapter(Guard(policy, deadline))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
