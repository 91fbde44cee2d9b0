"""The HTTP face: Streamable HTTP at /mcp, the JWKS, and the refusals that happen before MCP.

Stateless Streamable HTTP: every request carries its bearer token and needs nothing a previous
request left in this process, so any request can reach any process behind a load balancer.
"""

from __future__ import annotations

from typing import Any

from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from deskgate.scopes.mcp_auth import McpTokenVerifier
from deskgate.server.console.app import build_console
from deskgate.server.mcp_app import build_mcp_server, http_credential
from deskgate.server.notify.sender import start_notifier
from deskgate.server.runtime import Runtime
from deskgate.server.settings import ServerSection

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


def public_url(runtime: Runtime, host: str, port: int) -> str:
    """The configured public URL; the default one follows the address actually served."""
    configured = runtime.settings.server.public_url
    return f"http://{host}:{port}" if configured == ServerSection().public_url else configured


def build_http_app(runtime: Runtime, *, host: str, port: int | None = None) -> Any:
    server = runtime.settings.server
    url = public_url(runtime, host, port or server.port)
    verifier = McpTokenVerifier(runtime.verifier, runtime.audit)
    mcp = build_mcp_server(runtime.chain, http_credential, name=server.name, token_verifier=verifier,
                           public_url=url)

    @mcp.custom_route("/.well-known/jwks.json", methods=["GET"])
    async def jwks(_: Request) -> Response:
        return JSONResponse(runtime.keys.jwks(), headers={"Cache-Control": "max-age=300"})

    @mcp.custom_route("/healthz", methods=["GET"])
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    security = None
    if host not in ("127.0.0.1", "localhost", "::1"):
        public = url.split("://", 1)[-1].rstrip("/")
        security = TransportSecuritySettings(allowed_hosts=[public, f"{host}:*"], allowed_origins=[url.rstrip("/")])
    app = mcp.streamable_http_app(stateless_http=True, json_response=True, host=host,
                                  max_request_body_size=server.max_request_bytes, transport_security=security)
    app.mount("/console", build_console(runtime, public_url=url))
    start_notifier(runtime.settings, runtime.paths, runtime.state_db, public_url=url)
    return RefuseQueryTokens(app)
