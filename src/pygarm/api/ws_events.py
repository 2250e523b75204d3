"""``/api/v1/ws/events``: the database events websocket (docs/garm-protocol.md#events-websocket), a thin face
over ``events/``.

Every decision lives in :class:`~pygarm.events.session.EventsSession`, the hub and
:class:`~pygarm.events.stream.StreamSetup` (the opt-in extensions); this module checks the upgrade
(shared with the log route and the SSE route) and hands the connection to
:func:`pygarm.api.ws_serve.serve`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from fastapi import APIRouter
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.websockets import WebSocket

from pygarm.api.errors import error_response
from pygarm.api.ws_serve import OpenSockets, close_websockets, serve
from pygarm.events.extensions import (
    SINCE_BEYOND_HEAD,
    InvalidStreamOptions,
    StreamOptions,
    parse_stream_options,
)
from pygarm.events.guard import AccessGuard
from pygarm.events.hub import Delivery, Hub, Subscription
from pygarm.events.metrics import opt_ins
from pygarm.events.session import EventsSession
from pygarm.events.stream import Bookmarks, StreamSetup

__all__ = ["OpenSockets", "close_websockets", "serve"]  # re-exported for the app, the server, the log route

log = logging.getLogger(__name__)

EVENTS_PATHS: Final = ("/ws/events", "/ws/events/")
"""Relative to ``/api/v1``; GARM registers both spellings (docs/garm-protocol.md#websocket-routes)."""


class WsPrincipal(Protocol):
    """What the routes need from the caller's identity (``pygarm.runner.auth.AuthContext`` fits)."""

    @property
    def user_id(self) -> str: ...
    @property
    def is_admin(self) -> bool: ...
    @property
    def expires_at(self) -> float | None: ...
    @property
    def generation(self) -> int: ...


WsAuthenticator = Callable[[WebSocket], Awaitable[WsPrincipal | Response]]
"""``app.state.authenticate_ws``: GARM's init/URLs/JWT checks before the upgrade, returning the principal
or the 401/409 response to send instead."""

# --- before the upgrade -------------------------------------------------------------------------------


async def authenticate(websocket: WebSocket) -> WsPrincipal | None:
    """Run the app's authenticator and the admin check; on failure send the HTTP answer, return None."""
    authenticator: WsAuthenticator = websocket.app.state.authenticate_ws
    result = await authenticator(websocket)
    if isinstance(result, Response):
        await websocket.send_denial_response(result)
        return None
    if not result.is_admin:
        # GARM's AdminRequiredMiddleware: plain-text 401 (docs/garm-protocol.md#websocket-auth). Normally the
        # authenticator already refused; this keeps the route safe on its own.
        await websocket.send_denial_response(_plain_error("Unauthorized", 401))
        return None
    return result


async def check_origin(websocket: WebSocket) -> bool:
    """gorilla's ``checkSameOrigin`` (docs/garm-protocol.md#websocket-upgrade); on failure send 403 and return
    False."""
    if is_same_origin(websocket.headers):
        return True
    response = _plain_error("Forbidden", 403)
    response.headers["Sec-Websocket-Version"] = "13"
    await websocket.send_denial_response(response)
    return False


def is_same_origin(headers: Headers) -> bool:
    """No ``Origin`` header, or its host (with port) equals ``Host``, ignoring ASCII case."""
    origins = headers.getlist("origin")
    if not origins:
        return True
    origin_host = _url_host(origins[0])
    return origin_host is not None and _ascii_lower(origin_host) == _ascii_lower(headers.get("host", ""))


def _url_host(url: str) -> str | None:
    """The ``Host`` part of a URL as Go's ``url.Parse`` gives it, or None where Go fails to parse."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the port like Go does
    except ValueError:
        return None
    return parts.netloc.rpartition("@")[2]


_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _plain_error(status_text: str, status_code: int) -> Response:
    """Go's ``http.Error``: the text plus a newline, ``text/plain; charset=utf-8``, ``nosniff``."""
    return PlainTextResponse(
        status_text + "\n", status_code=status_code, headers={"X-Content-Type-Options": "nosniff"}
    )


# --- the route ----------------------------------------------------------------------------------------


async def events_websocket(websocket: WebSocket) -> None:
    """GARM's ``EventsHandler``: authenticate, check the origin, upgrade, stream what the filter allows.

    The opt-in extensions (:mod:`pygarm.events.extensions`) change nothing for a client that does not ask
    for them.
    """
    options = parse_options(websocket)
    if isinstance(options, Response):
        await websocket.send_denial_response(options)
        return
    principal = await authenticate(websocket)
    if principal is None or not await check_origin(websocket):
        return
    hub: Hub = websocket.app.state.hub
    refusal = await check_since(websocket, hub, options)
    if refusal is not None:
        await websocket.send_denial_response(refusal)
        return
    guard: AccessGuard | None = getattr(websocket.app.state, "access_guard", None)
    await websocket.accept()
    subscription = hub.subscribe(f"ws-event-watcher-{principal.user_id}-{secrets.token_hex(4)}")
    setup, bookmarks = stream_setup(websocket, hub, subscription, options)
    render = _render_with_seq if options.with_seq else None
    if guard is not None:
        guard.register(principal.user_id, principal.generation, subscription)
    labels = opt_ins(options)
    hub.stats.subscriber_joined(labels)  # /metrics: pygarm_events_subscribers
    if options.since is not None:
        hub.stats.resumes += 1
    try:
        await serve(
            websocket, EventsSession(), subscription, principal.expires_at, setup.on_filter, render, bookmarks
        )
    finally:
        hub.stats.subscriber_left(labels)
        if guard is not None:
            guard.unregister(principal.user_id, subscription)


# --- shared with the SSE route ------------------------------------------------------------------------


def parse_options(conn: HTTPConnection) -> StreamOptions | Response:
    """The extension parameters, or the 400 to answer (before authentication, like any bad request)."""
    try:
        return parse_stream_options(conn.query_params)
    except InvalidStreamOptions as exc:
        return error_response(400, "Bad Request", str(exc))


async def check_since(
    conn: HTTPConnection, hub: Hub, options: StreamOptions, since: int | None = None
) -> Response | None:
    """400 for a resume point beyond the log's head (after authentication: the head is not public)."""
    since = options.since if since is None else since
    if since is None:
        return None
    head = await log_head(conn.app, hub)
    if since <= head:
        return None
    # A resume point the log never reached: the client's state came from another (or a restored)
    # database, so resuming would silently mix two histories (issue 8 #10).
    return error_response(400, "Bad Request", f"{SINCE_BEYOND_HEAD}: since {since} > head {head}")


async def log_head(app: Any, hub: Hub) -> int:
    """The highest ``seq`` the change log ever reached: its newest row, what retention deleted, or what the
    hub has dispatched, whichever is largest (another process may have committed past the hub)."""
    state = app.state
    logged: int = await state.log_last_seq()
    pruned: int = await state.pruned_through()
    return max(hub.last_seq, logged, pruned)


def stream_setup(
    conn: HTTPConnection, hub: Hub, subscription: Subscription, options: StreamOptions
) -> tuple[StreamSetup, Bookmarks | None]:
    state = conn.app.state
    bookmarks = None if options.bookmark is None else Bookmarks(options.bookmark, hub)
    setup = StreamSetup(
        options,
        hub,
        subscription,
        read_changes_after=getattr(state, "read_changes_after", None),
        pruned_through=getattr(state, "pruned_through", None),
        open_snapshot=getattr(state, "open_snapshot", None),
        bookmarks=bookmarks,
    )
    return setup, bookmarks


def _render_with_seq(delivery: Delivery) -> str:
    return delivery.seq_text


async def events_without_upgrade(request: Request) -> Response:
    """A plain ``GET`` (no websocket upgrade) after GARM's auth chain: gorilla's handshake error."""
    refusal = await check_principal(request)
    if isinstance(refusal, Response):
        return refusal
    return handshake_error(request.headers)


async def check_principal(conn: HTTPConnection) -> WsPrincipal | Response:
    """The app's authenticator and the admin check, for routes that answer over HTTP (plain GET, SSE)."""
    authenticator: Callable[[HTTPConnection], Awaitable[WsPrincipal | Response]] = (
        conn.app.state.authenticate_ws
    )
    result = await authenticator(conn)
    if isinstance(result, Response):
        return result
    if not result.is_admin:
        return _plain_error("Unauthorized", 401)
    return result


def handshake_error(headers: Headers) -> Response:
    """gorilla's ``Upgrader.Upgrade`` refusing a request that is not a websocket handshake
    (``garm@v0.1.5 vendor/github.com/gorilla/websocket/server.go:124-134``): ``http.Error`` with the status
    text and ``Sec-Websocket-Version: 13``."""
    if not _has_token(headers, "connection", "upgrade"):
        response = _plain_error("Bad Request", 400)
    else:
        response = _plain_error("Upgrade Required", 426)
    response.headers["Sec-Websocket-Version"] = "13"
    return response


def _has_token(headers: Headers, name: str, token: str) -> bool:
    return any(part.strip().lower() == token for value in headers.getlist(name) for part in value.split(","))


router = APIRouter()
# Plain Starlette websocket routes: FastAPI's dependency-solving wrapper would stay on every connection's
# stack for its whole life (about 6 KB per idle subscriber, measured), and these endpoints use none.
for _path in EVENTS_PATHS:
    router.add_websocket_route(_path, events_websocket)
    router.add_api_route(_path, events_without_upgrade, methods=["GET"], include_in_schema=False)
