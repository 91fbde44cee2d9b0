"""The console's browser-facing defences, each in one place.

    headers   every answer: a strict Content-Security-Policy (no inline script, `default-src 'self'`),
              X-Frame-Options DENY, nosniff, no referrer beyond the console's own origin, no caching of
              pages
    cookies   the session cookie is HttpOnly, SameSite=Strict, Path=/, and Secure (with the `__Host-`
              prefix) whenever the request or the configured public URL is https, or
              `console.secure_cookies` says so
    csrf      every POST carries a form token compared in constant time: the session's own token, or
              before login a double-submit token (cookie + form field)
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    # same-origin, not no-referrer: under no-referrer a browser sends `Origin: null` with every form POST,
    # which the HTTP face's Origin check (server/http_security.py) rightly refuses.
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]
LOGIN_COOKIE = "dg_login"


class SecurityHeaders:
    """Adds the headers above to every HTTP answer of the wrapped app (replacing any it set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in _HEADERS}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + _HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Cookies:
    def __init__(self, *, public_url: str, force_secure: bool) -> None:
        self._secure_default = force_secure or public_url.startswith("https://")

    def secure(self, request: Request) -> bool:
        return self._secure_default or request.url.scheme == "https"

    def session_name(self, request: Request) -> str:
        # `__Host-`: the browser takes it only when Secure, Path=/ and without Domain (no subdomain can set it).
        return "__Host-dg_console" if self.secure(request) else "dg_console"

    def session_of(self, request: Request) -> str | None:
        return request.cookies.get(self.session_name(request)) or None

    def set(self, response: Response, request: Request, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", secure=self.secure(request), httponly=True,
                            samesite="strict")

    def clear(self, response: Response, request: Request, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure(request), httponly=True, samesite="strict")


def same_token(expected: str | None, given: object) -> bool:
    """Constant-time comparison of a CSRF token; anything missing or not text is a mismatch."""
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
