"""``/api/v1/ws/logs`` and the legacy ``/api/v1/ws``: the server's log lines as text frames
(docs/garm-protocol.md#log-stream).

The same connection machinery as the events route (:func:`pygarm.api.ws_serve.serve`), fed by the
:class:`~pygarm.events.logstream.LogBroadcaster` in ``app.state.log_broadcaster`` instead of the hub. It is
``None`` when ``[logging] enable_log_streamer`` is off, and the route then answers GARM's 400 before
upgrading. Inbound messages are ignored, apart from the 16 KiB limit.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter
from starlette.websockets import WebSocket

from pygarm.api.errors import error_response
from pygarm.api.ws_events import WsPrincipal, authenticate, check_origin
from pygarm.api.ws_serve import serve
from pygarm.events.guard import AccessGuard
from pygarm.events.logstream import LogBroadcaster, serving_log_stream
from pygarm.events.session import LogsSession

LOGS_PATHS: Final = ("/ws/logs", "/ws/logs/", "/ws", "/ws/")
"""Relative to ``/api/v1``; GARM registers both spellings of both paths
(docs/garm-protocol.md#websocket-routes)."""
LOG_STREAMER_DISABLED: Final = "log streamer is disabled"


async def logs_websocket(websocket: WebSocket) -> None:
    """GARM's ``WSHandler``: authenticate, 400 when disabled, check the origin, upgrade, stream lines."""
    principal = await authenticate(websocket)
    if principal is None:
        return
    broadcaster: LogBroadcaster | None = getattr(websocket.app.state, "log_broadcaster", None)
    if broadcaster is None:
        await websocket.send_denial_response(error_response(400, "Bad Request", LOG_STREAMER_DISABLED))
        return
    if not await check_origin(websocket):
        return
    guard: AccessGuard | None = getattr(websocket.app.state, "access_guard", None)
    with serving_log_stream():  # what accepting and sending log (frames at DEBUG) must not be streamed back
        await _stream(websocket, broadcaster, guard, principal)


async def _stream(
    websocket: WebSocket, broadcaster: LogBroadcaster, guard: AccessGuard | None, principal: WsPrincipal
) -> None:
    await websocket.accept()
    subscriber = broadcaster.subscribe()
    if guard is not None:
        guard.register(principal.user_id, principal.generation, subscriber)
    try:
        await serve(websocket, LogsSession(), subscriber, principal.expires_at)
    finally:
        if guard is not None:
            guard.unregister(principal.user_id, subscriber)
        broadcaster.unsubscribe(subscriber)


router = APIRouter()
for _path in LOGS_PATHS:  # plain Starlette routes, as in ws_events
    router.add_websocket_route(_path, logs_websocket)
