"""GARM's websocket keepalive on uvicorn's ``websockets-sansio`` protocol (docs/events.md, connection
parameters).

GARM (``garm@v0.1.5 websocket/client.go:24-29,155-162,209``) pings every ``pingPeriod`` (54 s) and gives
every connection a read deadline of ``pongWait`` (60 s) from the moment it opened, pushed back 60 s by
each pong. When the deadline passes, the reader fails, and ``Client.Stop`` sends close 1000 and closes the
connection. uvicorn's own keepalive instead waits ``ping_timeout`` after *each* ping and fails with 1011,
so a client that never answers was closed about 114 s after opening instead of 60 s.

This subclass keeps uvicorn's protocol and replaces only its keepalive: a fixed ping ticker, a deadline
that only pongs move (data messages do not, as in GARM), and close 1000 with an empty reason.
"""

from __future__ import annotations

from asyncio import TimerHandle
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

GARM_CLOSE_NORMAL = 1000


class GarmWebSocketProtocol(WebSocketsSansIOProtocol):
    """``ws_ping_interval`` is GARM's ping period, ``ws_ping_timeout`` its pong wait."""

    pong_deadline: TimerHandle | None = None

    def start_keepalive(self) -> None:
        if self.ping_interval is not None and self.ping_interval > 0:
            self.ping_timer = self.loop.call_later(self.ping_interval, self.send_keepalive_ping)
        self._push_deadline()

    def _push_deadline(self) -> None:
        if self.pong_deadline is not None:
            self.pong_deadline.cancel()
            self.pong_deadline = None
        if self.ping_timeout is not None and self.ping_timeout > 0:
            self.pong_deadline = self.loop.call_later(self.ping_timeout, self.keepalive_timeout)

    def send_keepalive_ping(self) -> None:
        self.ping_timer = None
        if self.close_sent or self.transport.is_closing():
            return
        self.conn.send_ping(b"")  # gorilla's WriteMessage(PingMessage, nil)
        self.transport.write(b"".join(self.conn.data_to_send()))
        assert self.ping_interval is not None
        self.ping_timer = self.loop.call_later(self.ping_interval, self.send_keepalive_ping)

    def handle_pong(self, event: Any) -> None:
        # GARM's pong handler accepts any pong, solicited or not, and pushes the read deadline back.
        if not self.close_sent and not self.transport.is_closing():
            self._push_deadline()

    def keepalive_timeout(self) -> None:
        self.pong_deadline = None
        if self.close_sent or self.transport.is_closing():
            return
        self.conn.send_close(GARM_CLOSE_NORMAL, "")
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()

    def stop_keepalive(self) -> None:
        super().stop_keepalive()
        if self.pong_deadline is not None:
            self.pong_deadline.cancel()
            self.pong_deadline = None
