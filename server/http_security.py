"""Who may talk to the HTTP face: trusted proxies, the Host and Origin allow-lists, and CORS.

`HttpGuard` runs before anything else reads a request (only the query-token refusal is outside it):

    1. proxy   X-Forwarded-For / -Proto / -Host are applied only when the peer is one of
               `[server] trusted_proxies`; from anyone else they are ignored
    2. host    the Host header must be a loopback name (any port), the public URL's host, the bound
               address or an `allowed_hosts` entry                                         else 421
    3. origin  a request without Origin passes; one with Origin must come from the request's own
               origin or an `allowed_origins` entry                                        else 403
    4. CORS    (only when `allowed_origins` is set) a preflight from an allowed origin is answered
               here, before authentication; answers to it carry Access-Control-Allow-Origin

Loopback names are always accepted: a DNS-rebinding page cannot make a browser send them, since
the browser's Host is the attacker's own name. Matching is exact on scheme, host and port: an entry
is parsed once when the server starts (a bad one stops it) and a header per request, and both are
compared as values. `*` stands for a whole port, never for a prefix: `localhost:*` does not admit
`localhost:8791.evil.example`, which is not a host and port at all. (The MCP SDK's own check
matches `:*` entries as string prefixes, so it is switched off and this one runs instead.)
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HostPattern", "HttpGuard", "OriginPattern", "Proxies", "Reception", "cors", "origin_of",
           "parse_authority", "parse_origin"]

logger = logging.getLogger("deskgate.http")

Port = int | Literal["*"] | None  # None: no port written (the scheme's default)

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_AUTHORITY = re.compile(rf"^(\[[0-9a-f:.]+\]|{_LABEL}(?:\.{_LABEL})*)(?::([0-9]{{1,5}}|\*))?$")
_ORIGIN = re.compile(r"^(https?)://([^/?#@]+)$")
_DEFAULT_PORT = {"http": 80, "https": 443}
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")  # noqa: S104 - names of the wildcard bind, compared, not bound
EXEMPT_PATHS = frozenset({"/healthz"})  # load balancers probe by instance address


def parse_authority(text: str, *, wildcard: bool = False) -> tuple[str, Port]:
    """`host[:port]` -> (lower-case host, port); IPv6 in brackets. ValueError if it is anything else."""
    match = _AUTHORITY.match(text.strip().lower())
    if not match or (match.group(2) == "*" and not wildcard):
        raise ValueError(f"not a host[:port]{' or host:*' if wildcard else ''}: {text!r}")
    host, written = match.group(1), match.group(2)
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"not an IPv6 address: {text!r}") from None
    if written is None or written == "*":
        return host, "*" if written else None
    if not 0 < int(written) < 65536:
        raise ValueError(f"port out of range: {text!r}")
    return host, int(written)


def parse_origin(text: str, *, wildcard: bool = False) -> tuple[str, str, Port]:
    """`scheme://host[:port]` -> (scheme, host, port with the scheme's default filled in)."""
    match = _ORIGIN.match(text.strip().lower())
    if not match:
        raise ValueError(f"not an origin like https://app.example or http://localhost:*: {text!r}")
    host, port = parse_authority(match.group(2), wildcard=wildcard)
    scheme = match.group(1)
    return scheme, host, _DEFAULT_PORT[scheme] if port is None else port


def origin_of(url: str) -> tuple[str, str, Port]:
    """The origin of an http(s) URL without a path (the public URL)."""
    return parse_origin(url.rstrip("/"))


@dataclass(frozen=True, slots=True)
class HostPattern:
    """One accepted Host: `name` (no port), `name:port`, or `name:*` (any port, or none)."""

    host: str
    port: Port

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        return cls(*parse_authority(text, wildcard=True))

    def matches(self, host: str, port: Port) -> bool:
        return host == self.host and (self.port == "*" or port == self.port)


@dataclass(frozen=True, slots=True)
class OriginPattern:
    """One accepted browser origin: `scheme://host[:port]`, or `scheme://host:*` for any port."""

    scheme: str
    host: str
    port: Port

    @classmethod
    def parse(cls, text: str) -> OriginPattern:
        return cls(*parse_origin(text, wildcard=True))

    def matches(self, origin: tuple[str, str, Port]) -> bool:
        scheme, host, port = origin
        return scheme == self.scheme and host == self.host and (self.port == "*" or port == self.port)


class Proxies:
    """The peers whose X-Forwarded-* headers are believed: addresses or networks (CIDR)."""

    def __init__(self, entries: Iterable[str]) -> None:
        self._networks = [ipaddress.ip_network(e.strip(), strict=False) for e in entries]

    def trusts(self, peer: str | None) -> bool:
        if not peer or not self._networks:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self._networks)


@dataclass(frozen=True, slots=True)
class Reception:
    """What the HTTP face accepts, built once at start-up from `[server]` and the bound address."""

    hosts: tuple[HostPattern, ...]
    origins: tuple[OriginPattern, ...]  # cross-origin browser clients (CORS); empty: none
    proxies: Proxies

    @classmethod
    def build(cls, *, public_url: str, bind_host: str, port: int, allowed_hosts: Iterable[str],
              allowed_origins: Iterable[str], trusted_proxies: Iterable[str]) -> Reception:
        _, public_host, public_port = origin_of(public_url)
        explicit_port = public_url.rstrip("/").rsplit(":", 1)[-1].isdigit()
        hosts = [HostPattern(name, "*") for name in LOOPBACK_NAMES]
        hosts.append(HostPattern(public_host, public_port))
        if not explicit_port:
            hosts.append(HostPattern(public_host, None))  # clients leave the default port out
        if bind_host not in WILDCARD_ADDRESSES:
            bound = f"[{bind_host}]" if ":" in bind_host else bind_host
            hosts.append(HostPattern(*parse_authority(f"{bound}:{port}")))
        hosts += [HostPattern.parse(entry) for entry in allowed_hosts]
        return cls(hosts=tuple(dict.fromkeys(hosts)),
                   origins=tuple(OriginPattern.parse(entry) for entry in allowed_origins),
                   proxies=Proxies(trusted_proxies))

    def host_allowed(self, host_header: str | None) -> bool:
        if not host_header:
            return False
        try:
            host, port = parse_authority(host_header)
        except ValueError:
            return False
        return any(p.matches(host, port) for p in self.hosts)

    def cross_origin_allowed(self, origin: str) -> bool:
        try:
            parsed = parse_origin(origin)
        except ValueError:
            return False
        return any(p.matches(parsed) for p in self.origins)

    def origin_allowed(self, origin: str, scheme: str, host_header: str) -> bool:
        """The request's own origin (its scheme and already accepted Host), or a configured one."""
        try:
            own_host, own_port = parse_authority(host_header)
            same = parse_origin(origin) == (scheme, own_host, _DEFAULT_PORT.get(scheme) if own_port is None
                                            else own_port)
        except ValueError:
            return False
        return same or self.cross_origin_allowed(origin)


class HttpGuard:
    """Steps 1-3 of the module docstring, as ASGI middleware around the whole HTTP face."""

    def __init__(self, app: ASGIApp, reception: Reception) -> None:
        self.app = app
        self.reception = reception

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = self._forwarded(scope)
        headers = Headers(scope=scope)
        if scope["path"] not in EXEMPT_PATHS:
            host = headers.get("host")
            if not self.reception.host_allowed(host):
                # The operator's clue to a missing allowed_hosts entry; the value is the caller's text, so it
                # is cut short here and masked by the redacting log filter like every log line.
                logger.warning("Invalid Host header: %s", (host or "")[:200])
                await PlainTextResponse("Invalid Host header", status_code=421)(scope, receive, send)
                return
            origin = headers.get("origin")
            if origin is not None and not self.reception.origin_allowed(origin, scope["scheme"], host or ""):
                logger.warning("Invalid Origin header: %s", origin[:200])
                await PlainTextResponse("Invalid Origin header", status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _forwarded(self, scope: Scope) -> Scope:
        """The request as the trusted proxy received it; untouched when the peer is not trusted."""
        client = scope.get("client")
        if not self.reception.proxies.trusts(client[0] if client else None):
            return scope
        headers = Headers(scope=scope)
        scope = dict(scope)
        proto = _last(headers.get("x-forwarded-proto"))
        if proto in _DEFAULT_PORT:
            scope["scheme"] = proto
        forwarded_host = _last(headers.get("x-forwarded-host"))
        if forwarded_host:
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"host"]
            scope["headers"].append((b"host", forwarded_host.encode("latin-1")))
        hops = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
        while hops and self.reception.proxies.trusts(hops[-1]):
            hops.pop()  # proxies of ours in the chain: the client is the first hop we do not trust
        if hops:
            scope["client"] = (hops[-1], 0)
        return scope


def _last(value: str | None) -> str | None:
    """The value the nearest proxy wrote (the last of a comma-separated list)."""
    if value is None:
        return None
    return value.rsplit(",", 1)[-1].strip().lower() or None


class _CORS(CORSMiddleware):
    """Starlette's CORS, with the origin decided by the same exact matcher as everything else."""

    def __init__(self, app: ASGIApp, reception: Reception) -> None:
        super().__init__(app, allow_methods=("GET", "POST", "DELETE", "OPTIONS"), allow_headers=("*",),
                         expose_headers=("Mcp-Session-Id", "Mcp-Protocol-Version", "WWW-Authenticate"))
        self._reception = reception

    def is_allowed_origin(self, origin: str) -> bool:
        return self._reception.cross_origin_allowed(origin)


def cors(app: ASGIApp, reception: Reception) -> ASGIApp:
    """Step 4: CORS for the configured browser origins, or nothing at all (the default)."""
    return _CORS(app, reception) if reception.origins else app
