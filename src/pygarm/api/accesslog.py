"""The access log: a request id and one INFO line per HTTP request and websocket connection
(docs/observability.md#logs).

GARM logs ``access_log`` with ``method``, ``uri``, ``user_agent``, ``ip``, ``code``, ``bytes`` and
``request_time`` for every request (``garm@v0.1.5 apiserver/routers/routers.go:85-100``). pygarm logs the
same message with these differences, each on purpose:

* ``route`` is the route's template (``/api/v1/pools/{poolID}``), and ``path`` the path **without** the
  query string: GARM's ``uri`` includes the query, and a query can hold a token. No header is logged
  except ``User-Agent``.
* ``request_id``: taken from a well-formed ``X-Request-Id`` header (a proxy's), else a new random one;
  sent back in ``X-Request-Id``, and set in :data:`pygarm.logsetup.REQUEST_ID`, so every line logged while
  serving the request carries it.
* ``duration_ms`` instead of Go's duration. A websocket's line is written when it closes: ``code`` is 101
  once accepted (the HTTP status when the upgrade was refused) and ``duration_ms`` the connection's life.

The same pass counts requests by route template and status for ``/metrics`` (:class:`HTTPStats`).

Pure ASGI middleware: a perf counter, a context variable and one log call per request.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any, Final

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pygarm.logsetup import REQUEST_ID
from pygarm.stats import Timings

log = logging.getLogger("pygarm.access")

REQUEST_ID_HEADER: Final = "x-request-id"
_VALID_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")
"""An incoming id is kept only when it is this safe to log and echo."""
UNMATCHED_ROUTE: Final = "(unmatched)"
"""The ``route`` of a request no route matched: never the raw path, which would be an unbounded label."""
MAX_LOGGED_PATH: Final = 256


class HTTPStats:
    """Requests by method, route template and status, and their durations by route."""

    __slots__ = ("durations", "requests")

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.durations: dict[str, Timings] = {}

    def observe(self, method: str, route: str, code: int, seconds: float) -> None:
        key = (method, route, str(code))
        self.requests[key] = self.requests.get(key, 0) + 1
        timings = self.durations.get(route)
        if timings is None:
            timings = self.durations[route] = Timings()
        timings.observe(seconds)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _VALID_REQUEST_ID.fullmatch(text) else None
    return None


def _user_agent(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"user-agent":
            return str(value.decode("latin-1"))[:MAX_LOGGED_PATH]
    return ""


def route_template(scope: Scope) -> str:
    """The matched route's path template (set in the scope by the router for HTTP routes; websocket
    routes are matched again here, once per connection)."""
    route = scope.get("route")
    if route is None and scope["type"] == "websocket":
        app = scope.get("app")
        for candidate in getattr(getattr(app, "router", None), "routes", ()):
            if candidate.matches(scope)[0] is Match.FULL:
                route = candidate
                break
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class AccessLog:
    """See the module docstring. ``stats`` receives every request's route, status and duration."""

    def __init__(self, app: ASGIApp, stats: HTTPStats | None = None) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or secrets.token_hex(8)
        id_header = (REQUEST_ID_HEADER.encode(), request_id.encode())
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        state = {"code": 0, "bytes": 0}

        async def send_wrapper(message: Message) -> None:
            message_type = message["type"]
            if message_type == "http.response.start" or message_type == "websocket.http.response.start":
                state["code"] = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            elif message_type == "http.response.body" or message_type == "websocket.http.response.body":
                state["bytes"] += len(message.get("body", b""))
            elif message_type == "websocket.accept":
                state["code"] = 101
                message["headers"] = [*message.get("headers", ()), id_header]
            elif message_type == "websocket.close" and not state["code"]:
                state["code"] = 403  # closed before the upgrade: the server answers 403
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            if not state["code"]:
                state["code"] = 500
            raise
        finally:
            self._finish(scope, request_id, state, time.perf_counter() - started)
            REQUEST_ID.reset(token)

    def _finish(self, scope: Scope, request_id: str, state: dict[str, int], seconds: float) -> None:
        method = scope.get("method", "GET")  # a websocket scope has none: the upgrade is a GET
        route = route_template(scope)
        code = state["code"]
        if self.stats is not None:
            self.stats.observe(method, route, code, seconds)
        if log.isEnabledFor(logging.INFO):
            client = scope.get("client")
            attrs: dict[str, Any] = {
                "method": method,
                "route": route,
                "path": scope.get("path", "")[:MAX_LOGGED_PATH],
                "code": code,
                "bytes": state["bytes"],
                "duration_ms": round(seconds * 1000, 3),
                "user_agent": _user_agent(scope),
                "ip": client[0] if client else "",
                "request_id": request_id,
            }
            log.info("access_log", extra={"attrs": attrs})
