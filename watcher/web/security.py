"""Headers every answer carries, and the optional password in front of everything.

Every byte of an article is a stranger's: pages are escaped by the templates, and the
headers make sure that even an escaping mistake cannot run script (a Content-Security-Policy
without script sources), be sniffed into another type, or be framed by another site.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from watcher.config.services import WebAuth

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # Links lead to the outlets' sites: they need not learn where this view lives.
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
# A probe (systemd, a load balancer) must reach /healthz without the password.
OPEN_PATHS = frozenset({"/healthz"})


class Guard:
    """ASGI middleware: the security headers on every answer, and ``auth`` when set."""

    def __init__(self, app: ASGIApp, auth: WebAuth | None) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        auth = self.auth if scope["path"] not in OPEN_PATHS else None
        if auth is not None and not authorised(auth, _header(scope, b"authorization")):
            await _refuse(auth, with_headers)
            return
        await self.app(scope, receive, with_headers)


def authorised(auth: WebAuth, header: str) -> bool:
    """Whether an Authorization header carries the token or the user and password."""
    kind, _, value = header.partition(" ")
    if auth.token is not None:
        return kind.lower() == "bearer" and _same(value.strip(), auth.token)
    if kind.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, _, password = decoded.partition(":")
    # Both compared every time: how long a refusal takes says nothing about which was wrong.
    return _same(user, auth.user or "") & _same(password, auth.password or "")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


async def _refuse(auth: WebAuth, send: Send) -> None:
    challenge = b'Bearer realm="watcher"' if auth.token else b'Basic realm="watcher"'
    body = b"watcher: this view needs a password\n"
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
