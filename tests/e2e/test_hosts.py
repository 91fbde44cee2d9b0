"""`deskgate serve` bound to every address and to a non-loopback address: who it answers, who it refuses.

Servers here bind 0.0.0.0 and the machine's own non-loopback address (found without sending a packet:
the address a UDP socket would use, or 127.0.0.2 on a machine without one), and are reached only
through addresses of this machine. A client names the host it means by the Host header, as a client
behind DNS or a proxy would.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.conftest import Deployment, call, deployed
from tests.e2e.test_transports import CLI, _wait_until_up, server_env

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("engine", ["sqlite"], indirect=True)]

PUBLIC = "mcp.example.test"          # [server] public_url = https://mcp.example.test
INTERNAL = "mcp-internal.test"       # --allowed-host mcp-internal.test:*
APP = "https://app.example.test"     # [server] allowed_origins: a browser-based client
TOML = f"""[server]
public_url = "https://{PUBLIC}"
allowed_origins = ["{APP}", "http://localhost:*"]
trusted_proxies = ["127.0.0.1"]
"""
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "MCP-Protocol-Version": "2025-11-25"}
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}


def machine_address() -> str:
    """A non-loopback IPv4 address of this machine (no packet is sent), or 127.0.0.2 if it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # picks the source address of a route; sends nothing
            address = str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.2"
    return "127.0.0.2" if address.startswith("127.") else address


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(d: Deployment, bind: str, *extra: str) -> Iterator[int]:
    """`deskgate serve --transport http --host BIND` with `extra` arguments; yields its port once it answers."""
    port = free_port(bind)
    proc = subprocess.Popen([*CLI, "serve", "--transport", "http", "--host", bind, "--port", str(port), "--dev",
                             *extra], env=server_env(d), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    reach = "127.0.0.1" if bind == "0.0.0.0" else bind  # noqa: S104 - the wildcard bind is the point
    try:
        with anyio.from_thread.start_blocking_portal() as portal:
            portal.call(_wait_until_up, f"http://{reach}:{port}", proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@asynccontextmanager
async def mcp_client(url: str, token: str, host: str, mode: str = "auto") -> AsyncIterator[Client]:
    """A real MCP client that connects to `url` and names `host` in every request's Host header."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}", "Host": host}, timeout=30)
    async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http), mode=mode) as client:
        yield client


async def post(url: str, headers: dict[str, str], token: str | None = None) -> httpx2.Response:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.post(f"{url}/mcp", json=LIST, headers={**MCP_HEADERS, **auth, **headers})


@pytest.fixture
async def configured(home: Path, engine: str | None) -> AsyncIterator[Deployment]:
    async with deployed(home, engine, TOML) as deployment:
        yield deployment


async def test_on_every_address_it_answers_loopback_names_and_its_configured_public_names(
        configured: Deployment) -> None:
    """Bound to 0.0.0.0: /mcp is reached as 127.0.0.1, localhost, the public host and an --allowed-host name."""
    token = configured.token("tier1-agent")
    with serving(configured, "0.0.0.0", "--allowed-host", f"{INTERNAL}:*") as port:  # noqa: S104
        url = f"http://127.0.0.1:{port}"
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", PUBLIC, f"{INTERNAL}:{port}"):
            async with mcp_client(url, token, host) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert "get_order" in names, host
                assert (await call(client, "get_policy"))["status"] == "ok"
        async with httpx2.AsyncClient(timeout=30) as http:
            metadata = (await http.get(f"{url}/.well-known/oauth-protected-resource/mcp",
                                       headers={"Host": PUBLIC})).json()
        assert metadata["resource"] == f"https://{PUBLIC}/mcp"  # never http://0.0.0.0:PORT/mcp


async def test_a_forged_host_or_origin_is_refused_however_it_is_spelled(configured: Deployment) -> None:
    """421 for a Host and 403 for an Origin outside the lists, including the prefix attack on `:*` entries."""
    token = configured.token("tier1-agent")
    with serving(configured, "0.0.0.0") as port:  # noqa: S104
        url = f"http://127.0.0.1:{port}"
        for host in ("evil.example", f"evil.example:{port}", f"localhost:{port}.evil.example",
                     f"localhost:{port}@evil.example", f"{PUBLIC}.evil.example", f"{PUBLIC}:8443",
                     f"0.0.0.0:{port}", f"{INTERNAL}:{port}", "localhost:*"):
            assert (await post(url, {"Host": host}, token)).status_code == 421, host
        for origin in ("https://evil.example", f"http://localhost:{port}.evil.example", f"{APP}.evil.example",
                       f"{APP}:8443", "http://app.example.test", "null", f"https://{PUBLIC}:8443"):
            response = await post(url, {"Host": PUBLIC, "Origin": origin}, token)
            assert response.status_code == 403, origin
        for origin in (f"https://{PUBLIC}", APP, "http://localhost:5173"):  # its own, and two configured
            assert (await post(url, {"Host": PUBLIC, "Origin": origin,
                                     "X-Forwarded-Proto": "https"}, token)).status_code == 200, origin


async def test_on_loopback_by_default_the_wildcard_prefix_attack_is_refused(deployment: Deployment) -> None:
    """Issue 14 finding 10, with no configuration at all: the loopback defaults (`localhost`, any port) admit
    neither a Host nor an Origin that merely starts with `localhost:PORT` (the SDK's check let both in)."""
    token = deployment.token("tier1-agent")
    with serving(deployment, "127.0.0.1") as port:
        url = f"http://127.0.0.1:{port}"
        assert (await post(url, {"Host": f"localhost:{port}"}, token)).status_code == 200
        assert (await post(url, {"Host": f"localhost:{port}.evil.example"}, token)).status_code == 421
        assert (await post(url, {"Host": f"127.0.0.1:{port}.evil.example"}, token)).status_code == 421
        for origin in (f"http://localhost:{port}.evil.example", f"http://127.0.0.1:{port}.evil.example",
                       "http://localhost:5173"):  # another local page is not this server's origin either
            assert (await post(url, {"Origin": origin}, token)).status_code == 403, origin
        assert (await post(url, {"Origin": f"http://127.0.0.1:{port}"}, token)).status_code == 200


async def test_forwarded_headers_count_only_from_a_trusted_proxy(configured: Deployment) -> None:
    """From 127.0.0.1 (a trusted proxy here) X-Forwarded-Host/-Proto are applied - and checked like a Host."""
    token = configured.token("tier1-agent")
    with serving(configured, "0.0.0.0") as port:  # noqa: S104
        url = f"http://127.0.0.1:{port}"
        applied = {"Host": f"127.0.0.1:{port}", "X-Forwarded-Host": PUBLIC, "X-Forwarded-Proto": "https",
                   "Origin": f"https://{PUBLIC}", "X-Forwarded-For": "203.0.113.9"}
        assert (await post(url, applied, token)).status_code == 200
        forged = {"Host": f"127.0.0.1:{port}", "X-Forwarded-Host": "evil.example"}
        assert (await post(url, forged, token)).status_code == 421


async def test_cors_preflights_are_answered_before_authentication_only_for_configured_origins(
        configured: Deployment) -> None:
    """A browser client's preflight needs no token; an unlisted origin gets no CORS; answers name the origin."""
    token = configured.token("tier1-agent")
    preflight = {"Host": PUBLIC, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version"}
    with serving(configured, "0.0.0.0") as port:  # noqa: S104
        url = f"http://127.0.0.1:{port}"
        async with httpx2.AsyncClient(timeout=30) as http:
            allowed = await http.options(f"{url}/mcp", headers={**preflight, "Origin": APP})
            assert allowed.status_code == 200
            assert allowed.headers["access-control-allow-origin"] == APP
            assert "POST" in allowed.headers["access-control-allow-methods"]
            assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
            refused = await http.options(f"{url}/mcp", headers={**preflight, "Origin": "https://evil.example"})
            assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
        answered = await post(url, {"Host": PUBLIC, "Origin": APP}, token)
        assert answered.status_code == 200 and answered.headers["access-control-allow-origin"] == APP
        unauthenticated = await post(url, {"Host": PUBLIC, "Origin": APP})
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["access-control-allow-origin"] == APP  # the browser may read why
        assert "www-authenticate" in unauthenticated.headers["access-control-expose-headers"].lower()


async def test_without_allowed_origins_there_is_no_cors(deployment: Deployment) -> None:
    """CORS is off by default: a cross-origin preflight is refused and no answer names another origin."""
    with serving(deployment, "127.0.0.1") as port:
        async with httpx2.AsyncClient(timeout=30) as http:
            response = await http.options(f"http://127.0.0.1:{port}/mcp", headers={
                "Origin": APP, "Access-Control-Request-Method": "POST"})
        assert response.status_code == 403 and "access-control-allow-origin" not in response.headers
        same_origin = await post(f"http://127.0.0.1:{port}", {"Origin": f"http://127.0.0.1:{port}"},
                                 deployment.token("tier1-agent"))
        assert same_origin.status_code == 200 and "access-control-allow-origin" not in same_origin.headers


async def test_on_a_non_loopback_address_it_answers_that_address_and_ignores_untrusted_forwarding(
        deployment: Deployment) -> None:
    """Bound to the machine's own address without configuration: that address and loopback names pass,
    other names do not, X-Forwarded-Host from an untrusted peer changes nothing, and the advertised
    resource is the bound address."""
    address = machine_address()
    token = deployment.token("tier1-agent")
    with serving(deployment, address) as port:
        url = f"http://{address}:{port}"
        for host in (f"{address}:{port}", f"localhost:{port}"):
            async with mcp_client(url, token, host, mode="legacy") as client:
                assert (await call(client, "get_policy"))["status"] == "ok", host
        assert (await post(url, {"Host": f"{PUBLIC}"}, token)).status_code == 421
        ignored = {"Host": "evil.example", "X-Forwarded-Host": f"{address}:{port}"}
        assert (await post(url, ignored, token)).status_code == 421
        async with httpx2.AsyncClient(timeout=30) as http:
            metadata = (await http.get(f"{url}/.well-known/oauth-protected-resource/mcp")).json()
        assert metadata["resource"] == f"http://{address}:{port}/mcp"


async def test_on_every_address_without_a_public_url_it_advertises_loopback_not_the_wildcard(
        deployment: Deployment) -> None:
    """No public_url and a 0.0.0.0 bind: the RFC 9728 resource is http://127.0.0.1:PORT/mcp."""
    with serving(deployment, "0.0.0.0") as port:  # noqa: S104
        async with httpx2.AsyncClient(timeout=30) as http:
            metadata = (await http.get(f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp")).json()
        assert metadata["resource"] == f"http://127.0.0.1:{port}/mcp"
