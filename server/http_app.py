"""The HTTP face: Streamable HTTP at /mcp, the JWKS, and the refusals that happen before MCP.

Stateless Streamable HTTP: every request carries its bearer token and needs nothing a previous
request left in this process, so any request can reach any process behind a load balancer.

A request passes, outermost first:

    RefuseQueryTokens   400 for a token in the URL
    HttpGuard           trusted proxies' X-Forwarded-*, then Host (421) and Origin (403): http_security.py
    CORS                only with [server] allowed_origins: preflights answered before authentication
    RefusalReasons      a refused token's 401 says why (expired, revoked, ...): scopes/mcp_auth.py
    the SDK's app       bearer auth (401), /mcp, RFC 9728 metadata, and the routes below
"""

from __future__ import annotations

from typing import Any

from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from deskgate.scopes.mcp_auth import McpTokenVerifier, RefusalReasons
from deskgate.server.console.app import build_console
from deskgate.server.http_security import HttpGuard, Reception, cors
from deskgate.server.mcp_app import build_mcp_server, http_credential
from deskgate.server.notify.sender import start_notifier
from deskgate.server.oauth import mount_oauth
from deskgate.server.runtime import Runtime

# RFC 6750 §2.3 allows tokens in the query string; we do not: URLs end up in logs and histories.
_QUERY_TOKEN_PARAMS = (b"access_token", b"token", b"bearer")


class RefuseQueryTokens:
    """400 for any request that carries a token in its query string, before anything reads it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").lower()
            names = {part.split(b"=", 1)[0] for part in query.split(b"&") if part}
            if names.intersection(_QUERY_TOKEN_PARAMS):
                response = JSONResponse(
                    {"error": "invalid_request", "error_description": "send the token in the Authorization header"},
                    status_code=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_http_app(runtime: Runtime, *, host: str, port: int | None = None,
                   extra_hosts: tuple[str, ...] = ()) -> Any:
    """The whole HTTP face for `deskgate serve` bound to `host:port`; `extra_hosts` from `--allowed-host`."""
    server = runtime.settings.server
    port = port or server.port
    url = server.served_url(host, port)
    reception = Reception.build(public_url=url, bind_host=host, port=port,
                                allowed_hosts=(*server.allowed_hosts, *extra_hosts),
                                allowed_origins=server.allowed_origins, trusted_proxies=server.trusted_proxies)
    mcp = build_mcp_server(runtime.chain, http_credential(runtime.authenticator), name=server.name,
                           token_verifier=McpTokenVerifier(runtime.authenticator), public_url=url)

    @mcp.custom_route("/.well-known/jwks.json", methods=["GET"])
    async def jwks(_: Request) -> Response:
        return JSONResponse(runtime.keys.jwks(), headers={"Cache-Control": "max-age=300"})

    @mcp.custom_route("/healthz", methods=["GET"])
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    mount_oauth(mcp, runtime, url)

    # The SDK's Host/Origin check matches `:*` entries as string prefixes: HttpGuard does it instead.
    unchecked = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app = mcp.streamable_http_app(stateless_http=True, json_response=True, host=host,
                                  max_request_body_size=server.max_request_bytes, transport_security=unchecked)
    app.mount("/console", build_console(runtime, public_url=url))
    start_notifier(runtime.settings, runtime.paths, runtime.state_db, public_url=url)
    metadata = str(build_resource_metadata_url(AnyHttpUrl(f"{url}/mcp")))
    return RefuseQueryTokens(HttpGuard(cors(RefusalReasons(app, metadata), reception), reception))
