"""Running the app under uvicorn with the settings measured in docs/design.md#memory-per-connection.

``websockets-sansio`` with per-message deflate off: uvicorn's default deflate doubles the memory of
every idle subscriber and costs ~15 % of fan-out throughput. httptools and uvloop take a third off
the time of a small request here (docs/performance.md); ``PYGARM_HTTP=h11`` / ``PYGARM_LOOP=asyncio``
switch back for comparisons. Pings come from the websocket protocol itself with GARM's timing
(``api/ws_keepalive.py``: 54 s period, close 1000 60 s after opening or the last pong), so there is no
second heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from typing import Any

import uvicorn

from pygarm.api.app import create_app
from pygarm.api.ws_events import close_websockets
from pygarm.api.ws_frames import FramesProtocol
from pygarm.config import Settings, parse_go_duration
from pygarm.http_protocol import BoundedHttpToolsProtocol

log = logging.getLogger(__name__)

WS_MAX_INBOUND_BYTES = 16384
"""GARM's ``SetReadLimit``: a larger inbound message closes the connection with 1009
(docs/garm-protocol.md#websocket-connection)."""


def _http_protocol() -> type[asyncio.Protocol] | str:
    """httptools with a bound on the request head (:mod:`pygarm.http_protocol`), or ``PYGARM_HTTP``."""
    choice = os.environ.get("PYGARM_HTTP", "httptools")
    return BoundedHttpToolsProtocol if choice == "httptools" else choice


def uvicorn_config(settings: Settings, *, host: str | None = None, port: int | None = None) -> uvicorn.Config:
    tls = settings.apiserver.tls if settings.apiserver.use_tls else None
    return uvicorn.Config(
        create_app(settings),
        host=host if host is not None else settings.apiserver.bind,
        port=port if port is not None else settings.apiserver.port,
        ws=FramesProtocol,  # websockets-sansio with GARM's keepalive and ready-made events frames
        http=_http_protocol(),
        loop=os.environ.get("PYGARM_LOOP", "uvloop" if sys.platform != "win32" else "asyncio"),
        ws_per_message_deflate=False,
        ws_max_size=WS_MAX_INBOUND_BYTES,
        ws_ping_interval=parse_go_duration(settings.events.ping_interval),
        ws_ping_timeout=parse_go_duration(settings.events.ping_timeout),
        ssl_certfile=tls.certificate if tls else None,
        ssl_keyfile=tls.key if tls else None,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )


class GarmServer(uvicorn.Server):
    """uvicorn, but open websockets get GARM's close 1000 on shutdown instead of uvicorn's 1012."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Stop accepting first: a client reconnecting during the close handshake would otherwise be
        # let in, only to get uvicorn's 1012 a moment later.
        for server in self.servers:
            server.close()
        app: Any = self.config.app
        await close_websockets(app)
        await super().shutdown(sockets)


def serve(settings: Settings) -> None:
    """Run until interrupted (Ctrl-C or SIGTERM)."""
    GarmServer(uvicorn_config(settings)).run()
