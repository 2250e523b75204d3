"""Refuse request paths holding control characters before routing (issue 8 #3, #11).

Starlette matches a route with a regex ending in ``$``, which also matches before a final newline, so
``GET /api/v1/repositories/%0A`` used to reach the list handler and ``POST`` the create handler. A
decoded path with NUL (which PostgreSQL cannot store, so it is refused like a NUL in a body: 400) or any
other control character (which matches no route: GARM's 404) never reaches a handler.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from pygarm.api.errors import NOT_FOUND_ROUTE, error_response
from pygarm.api.responses import GoJSONResponse

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PathGuard:
    """Pure ASGI middleware: no per-request cost beyond one regex search on the path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not _CONTROL.search(scope["path"]):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if "\x00" in scope["path"]:
            response = error_response(400, "Bad Request", "invalid request")
        else:
            response = GoJSONResponse(NOT_FOUND_ROUTE, status_code=404)
        await response(scope, receive, send)
