"""Bound every request body before it is read (issue 8 #2).

Without a bound, ``POST /api/v1/auth/login`` (no token needed) with a 200 MiB password was held in memory
whole: RSS grew by ~600 MB per request. Each route gets a limit that fits what it takes (:func:`limit_for`):
GitHub's 25 MB cap for ``/webhooks``, a little for login and first-run, 1 MiB for every JSON body of the
REST API. A request over its limit is answered ``413`` with GARM's ``{"error","details"}`` body:

* at once, without reading a byte of the body, when ``Content-Length`` says it is too large;
* as soon as the bytes received pass the limit, for a body without a length (chunked): the app's
  ``receive`` raises, the handler is abandoned and nothing more is read. The server then closes the
  connection instead of draining the rest.

GARM reads any size; this is a pygarm addition (docs/compatibility.md).
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pygarm.api.errors import error_response

MiB: Final = 1024 * 1024
DEFAULT_LIMIT: Final = 1 * MiB
"""Any JSON body of the REST API and the instance callbacks (a CA bundle or an App key is a few KiB)."""
LOGIN_LIMIT: Final = 64 * 1024
"""Login and first-run: names, an e-mail address and a password (bcrypt reads 72 bytes of it)."""
WEBHOOK_LIMIT: Final = 25 * MiB
"""GitHub caps webhook payloads at 25 MB."""

_LOGIN_PATHS: Final = frozenset(
    {"/api/v1/auth/login", "/api/v1/auth/login/", "/api/v1/first-run", "/api/v1/first-run/"}
)


def limit_for(path: str) -> int:
    """The largest body accepted on ``path``, in bytes."""
    if path in _LOGIN_PATHS:
        return LOGIN_LIMIT
    if path == "/webhooks" or path.startswith("/webhooks/"):
        return WEBHOOK_LIMIT
    return DEFAULT_LIMIT


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a body passes its limit; :class:`BodyLimit` answers 413."""


def _declared_length(scope: Scope) -> int | None:
    """``Content-Length`` when the request has one that is a number; ``0`` when it has no body at all
    (neither a length nor ``Transfer-Encoding``); None when its length is not known in advance."""
    declared: int | None = 0
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
        if name == b"transfer-encoding":
            declared = None
    return declared


class BodyLimit:
    """Pure ASGI middleware: one header scan per request; only bodies without a declared length
    (chunked) are counted as they arrive, the others pass through unwrapped."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _refuse(limit, scope, receive, send)
            return
        if declared is not None:
            # The HTTP parser hands the app no more than the declared length: nothing to count.
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:  # a handler that answered before reading its whole body; nothing more to say
                return
            await _refuse(limit, scope, receive, send)


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(413, "Request Entity Too Large", f"request body is larger than {limit} bytes")
    # Without it the server keeps the connection and reads (and drops) the rest of the body.
    response.headers["Connection"] = "close"
    await response(scope, receive, send)
