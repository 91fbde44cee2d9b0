"""deskgate as a small OAuth 2.0 authorization server for its own session tokens.

    POST /oauth/token                            client-credentials grant (RFC 6749 §4.4) for registered
                                                 platform clients (`scopes/clients.py`)
    GET  /.well-known/oauth-authorization-server RFC 8414 metadata; the RFC 9728 protected-resource
                                                 metadata of /mcp names this issuer
    GET|POST /oauth/authorize                    refuses every request (no client has a redirect URI):
                                                 it exists because MCP SDK clients require an
                                                 `authorization_endpoint` in the metadata

Token request protocol. Each step refuses with `TokenRequestRefused` (an RFC 6749 §5.2 error, HTTP 400,
or 401 with `WWW-Authenticate` for `invalid_client`); nothing after a refusal runs and nothing is issued:

    1. body     POST, `application/x-www-form-urlencoded` (UTF-8), at most MAX_BODY_BYTES,     invalid_request
                well-formed, no parameter twice but `resource`; an empty value counts as absent
    2. client   exactly one method: `client_secret_basic`, `client_secret_post` or          invalid_request,
                `private_key_jwt`; then `ClientRegistry` (lockout, client, credential)     invalid_client (401),
                                                                                           429 when locked out
    3. grant    grant_type is client_credentials                                          unsupported_grant_type
    4. session  resource, scope and authorization_details (`scopes/grants.py`); the       invalid_target,
                client's role must still exist                                            invalid_scope,
                                                                                          invalid_authorization_details
    5. issue    the deployment's `TokenIssuer` (sub = the client's name, client_id = its
                id, ttl = its max_ttl), so the token is in the inventory before it exists;
                then a durable `token.issued` admin record - if that cannot be written
                the token is revoked and the request fails (server_error)

Every refusal is audited as `oauth.token_refused` with the error and the precise cause, never a secret,
an assertion or a credential-like value (an unregistered client id appears only as a fingerprint).
Every answer carries `Cache-Control: no-store`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from deskgate.scopes.clients import ASSERTION_ALGORITHMS, CLIENT_ID, Client, ClientRegistry, claimed_client
from deskgate.scopes.grants import SESSION_TYPE, SessionGrant, grant
from deskgate.scopes.tokens import token_fingerprint
from deskgate.server.errors import (
    AuthenticationError,
    DeskgateError,
    InvalidArguments,
    TokenRequestRefused,
)
from deskgate.server.runtime import Runtime
from deskgate.server.store.state import IssuedToken

__all__ = ["MAX_BODY_BYTES", "mount_oauth"]

log = logging.getLogger("deskgate.oauth")

MAX_BODY_BYTES = 16 * 1024
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a URL path, not a secret
AUTHORIZE_PATH = "/oauth/authorize"
METADATA_PATH = "/.well-known/oauth-authorization-server"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_FORM = "application/x-www-form-urlencoded"
_MAX_FIELDS = 16
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_CHALLENGE = 'Basic realm="deskgate", charset="UTF-8"'


def _invalid_request(reason: str, code: str) -> TokenRequestRefused:
    return TokenRequestRefused("invalid_request", reason, code=code)


class TokenEndpoint:
    """`POST /oauth/token`; see the module docstring for the protocol."""

    def __init__(self, runtime: Runtime, issuer: str) -> None:
        self._runtime = runtime
        self._clients = ClientRegistry(runtime.state_db)
        self.issuer = issuer
        self.token_endpoint = issuer + TOKEN_PATH
        self.mcp_url = issuer + "/mcp"
        self._audiences = frozenset({self.token_endpoint, issuer})

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 authorization server metadata (with RFC 9396's `authorization_details_types_supported`).

        No `scopes_supported`: MCP clients ask for every advertised scope, which a client whose role
        grants fewer would be refused (`invalid_scope`); omitting `scope` gets the role's scopes.
        """
        return {
            "issuer": self.issuer,
            "token_endpoint": self.token_endpoint,
            "authorization_endpoint": self.issuer + AUTHORIZE_PATH,
            "response_types_supported": [],
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "authorization_details_types_supported": [SESSION_TYPE],
            "jwks_uri": self.issuer + "/.well-known/jwks.json",
        }

    async def handle(self, request: Request) -> Response:
        presented: dict[str, Any] = {}
        try:
            form, resource = await _form(request)                          # 1. body
            client, method = await self._authenticate(request, form, presented)  # 2. client
            presented["auth_method"] = method
            if form.get("grant_type") is None:                             # 3. grant
                raise _invalid_request("grant_type is required", "missing_grant_type")
            if form["grant_type"] != "client_credentials":
                raise TokenRequestRefused("unsupported_grant_type", "the only grant here is client_credentials")
            session = self._session(client, form, resource)                # 4. session
            return await self._issue(client, method, session)              # 5. issue
        except TokenRequestRefused as refusal:
            return await self._refused(refusal, presented)
        except DeskgateError as exc:  # the store or the audit log failed: nothing was issued (fail closed)
            failed = TokenRequestRefused("server_error", "the request could not be completed; retry later",
                                         code=exc.code)
            return await self._refused(failed, presented)

    async def _authenticate(self, request: Request, form: dict[str, str],
                            presented: dict[str, Any]) -> tuple[Client, str]:
        header = request.headers.get("authorization")
        methods = [name for name, used in (("client_secret_basic", header is not None),
                                           ("client_secret_post", "client_secret" in form),
                                           ("private_key_jwt", "client_assertion" in form
                                            or "client_assertion_type" in form)) if used]
        if len(methods) > 1:
            raise _invalid_request("use exactly one client authentication method", "several_auth_methods")
        if not methods:
            raise TokenRequestRefused("invalid_client", "client authentication is required", code="no_credentials")
        method = methods[0]
        try:
            if method == "private_key_jwt":
                if form.get("client_assertion_type") != JWT_BEARER or "client_assertion" not in form:
                    raise TokenRequestRefused("invalid_client", f"private_key_jwt needs client_assertion_type "
                                              f"{JWT_BEARER} and a client_assertion", code="bad_assertion_type")
                presented["client"] = form.get("client_id") or claimed_client(form["client_assertion"])
                client = await self._clients.authenticate_assertion(
                    form["client_assertion"], audiences=self._audiences, client_id=form.get("client_id"))
                return client, method
            client_id, secret = _basic(header) if header is not None else _posted(form)
            presented["client"] = client_id
            if header is not None and form.get("client_id", client_id) != client_id:
                raise _invalid_request("client_id differs from the Authorization header", "client_id_mismatch")
            return await self._clients.authenticate_secret(client_id, secret), method
        except AuthenticationError as exc:
            raise TokenRequestRefused("invalid_client", "client authentication failed", code=exc.code) from None

    def _session(self, client: Client, form: dict[str, str], resource: list[str]) -> SessionGrant:
        try:
            role_scopes = self._runtime.roles.scopes_of(client.role)
        except InvalidArguments:
            raise TokenRequestRefused("unauthorized_client", "this client's role no longer exists",
                                      code="unknown_role") from None
        return grant(client, role_scopes, scope=form.get("scope"),
                     authorization_details=form.get("authorization_details"), resource=resource,
                     mcp_url=self.mcp_url)

    async def _issue(self, client: Client, method: str, session: SessionGrant) -> Response:
        runtime = self._runtime
        bound = runtime.manifest["manifest_hash"] if runtime.settings.tokens.bind_manifest else None

        def issue() -> tuple[str, IssuedToken]:
            return runtime.issuer.issue(client.name, session.scopes, client.max_ttl, customer=session.customer,
                                        ticket=session.ticket, max_refund=session.max_refund,
                                        client_id=client.client_id, manifest_hash=bound)

        token, record = await anyio.to_thread.run_sync(issue)
        event = {"kind": "admin", "action": "token.issued", "actor": f"oauth-client:{client.client_id}",
                 "via": "oauth", "client_id": client.client_id, "auth_method": method, "role": client.role,
                 "jti": record.jti, "sub": record.sub, "sid": record.sid, "scopes": record.scopes, "kid": record.kid,
                 "expires_at": record.expires_at, "customer": record.customer, "ticket": record.ticket,
                 "max_refund": record.max_refund}
        try:
            await runtime.audit.append(event)
        except DeskgateError:
            # Unaudited, it must not work: revoke it before saying the request failed.
            now = int(time.time())
            await anyio.to_thread.run_sync(runtime.state.tokens.revoke_sync, "jti", record.jti,
                                           "issuance could not be audited", now)
            raise
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer",
                                "expires_in": record.expires_at - record.issued_at, "scope": record.scopes}
        if details := session.authorization_details():
            body["authorization_details"] = details
        return JSONResponse(body, headers=_NO_STORE)

    async def _refused(self, refusal: TokenRequestRefused, presented: dict[str, Any]) -> Response:
        event: dict[str, Any] = {"kind": "admin", "action": "oauth.token_refused", "actor": "oauth",
                                 "error": refusal.error, "code": refusal.code}
        if "auth_method" in presented:
            event["auth_method"] = presented["auth_method"]
        claimed = presented.get("client")
        if isinstance(claimed, str):
            # A registered-looking id is public; anything else might be a pasted secret: only a fingerprint.
            event.update({"client_id": claimed} if CLIENT_ID.match(claimed) else
                         {"client_id_fingerprint": token_fingerprint(claimed)})
        try:
            await self._runtime.audit.append(event)
        except DeskgateError:
            # The caller is refused either way; nothing was issued, so there is nothing to fail closed on.
            log.warning("could not audit a refused token request (%s)", refusal.code)
        headers = dict(_NO_STORE)
        status = 500 if refusal.error == "server_error" else 400
        if refusal.error == "invalid_client":
            status = 401
            headers["WWW-Authenticate"] = _CHALLENGE
            if refusal.code == "locked_out":
                status = 429
                headers["Retry-After"] = str(self._clients.retry_after())
        return JSONResponse({"error": refusal.error, "error_description": refusal.reason}, status_code=status,
                            headers=headers)


async def _form(request: Request) -> tuple[dict[str, str], list[str]]:
    """1. The request's form parameters and its `resource` values, or `invalid_request`."""
    media_type, *params = [part.strip().lower() for part in request.headers.get("content-type", "").split(";")]
    if media_type != _FORM or any(p.startswith("charset=") and p not in ("charset=utf-8", 'charset="utf-8"')
                                  for p in params):
        raise _invalid_request(f"the body must be {_FORM} in UTF-8", "wrong_content_type")
    body = await _body(request.stream(), request.headers.get("content-length"))
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body),
                          errors="strict", max_num_fields=_MAX_FIELDS)
    except ValueError:  # UnicodeDecodeError included
        raise _invalid_request("the body is not a well-formed form", "malformed_body") from None
    names = [name for name, _ in pairs if name != "resource"]  # RFC 8707 lets `resource` repeat
    if len(set(names)) != len(names):
        raise _invalid_request("a parameter is repeated", "repeated_parameter")
    form = {name: value for name, value in pairs if value != "" and name != "resource"}
    return form, [value for name, value in pairs if name == "resource" and value != ""]


async def _body(stream: AsyncIterator[bytes], declared: str | None) -> bytes:
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise _invalid_request(f"the body is larger than {MAX_BODY_BYTES} bytes", "body_too_large")
    body = bytearray()
    async for chunk in stream:
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _invalid_request(f"the body is larger than {MAX_BODY_BYTES} bytes", "body_too_large")
    return bytes(body)


def _basic(header: str) -> tuple[str, str]:
    """`client_secret_basic` (RFC 6749 §2.3.1): form-encoded id and secret in HTTP Basic."""
    scheme, _, value = header.partition(" ")
    try:
        if scheme.lower() != "basic":
            raise ValueError("not Basic")
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, binascii.Error):
        raise TokenRequestRefused("invalid_client", "the Authorization header must be HTTP Basic",
                                  code="bad_authorization_header") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise TokenRequestRefused("invalid_client", "the Authorization header must be HTTP Basic",
                                  code="bad_authorization_header")
    return unquote_plus(client_id), unquote_plus(secret)


def _posted(form: dict[str, str]) -> tuple[str, str]:
    """`client_secret_post`: client_id and client_secret in the body."""
    if "client_id" not in form:
        raise _invalid_request("client_secret_post needs client_id", "missing_client_id")
    return form["client_id"], form["client_secret"]


async def _authorize(_: Request) -> Response:
    return JSONResponse({"error": "unsupported_response_type",
                         "error_description": "deskgate issues tokens only to registered platform clients, "
                                              f"by the client_credentials grant at {TOKEN_PATH}"},
                        status_code=400, headers=_NO_STORE)


def mount_oauth(mcp: MCPServer, runtime: Runtime, public_url: str) -> None:
    """Add the authorization server's routes to the HTTP app; `public_url` is its issuer identifier."""
    endpoint = TokenEndpoint(runtime, public_url.rstrip("/"))
    metadata = endpoint.metadata()

    async def authorization_server_metadata(_: Request) -> Response:
        return JSONResponse(metadata, headers={"Cache-Control": "max-age=300"})

    mcp.custom_route(TOKEN_PATH, methods=["POST"])(endpoint.handle)
    mcp.custom_route(METADATA_PATH, methods=["GET"])(authorization_server_metadata)
    mcp.custom_route(AUTHORIZE_PATH, methods=["GET", "POST"])(_authorize)
