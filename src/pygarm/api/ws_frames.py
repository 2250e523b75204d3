"""Writing events frames as bytes built once per change (issue 14; figures in docs/performance.md).

A server-to-client websocket frame is unmasked, and without compression (pygarm turns it off) it is the
same bytes for every subscriber that gets the same text. Through ASGI, each subscriber's
``websocket.send`` runs the middleware chain, Starlette's state checks and the websockets library's frame
builder again. :class:`FramesProtocol` (uvicorn's websockets-sansio protocol with GARM's keepalive)
therefore puts :meth:`FramesProtocol.write_frames` into the connection's ASGI scope under
:data:`FRAMES_EXTENSION`; the events writer (``api/ws_serve.py``) hands it the frames of everything queued
at one wake-up, joined, in one transport write.

Writing without waking the writer: the protocol also puts :meth:`FramesProtocol.write_now` into the scope
under :data:`DIRECT_EXTENSION`. While a connection's writer is parked on an empty queue, it lets the hub
hand each change's frame straight to that method (``Subscription.direct``, ``api/ws_serve.py``): a change
then costs a subscriber one transport write and no task wake-up. ``write_now`` refuses (and the change is
queued for the writer as before) when the transport is paused, closing or past its close frame.

What does not change: one writer per connection sends everything in queue order (data, error text, close),
the write waits while the transport is paused (uvicorn's ``writable`` flow control, so a peer that stops
reading fills its bounded queue and gets the 4000 close as before), and control frames (pings, pongs,
close) still go through the websockets library. Servers without the extension (tests over ASGI, other
servers) take the ASGI path.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.websockets import WebSocketDisconnect

from pygarm.api.ws_keepalive import GarmWebSocketProtocol
from pygarm.api.ws_light import Flag, InboundQueue

FRAMES_EXTENSION: Final = "pygarm.frames"
"""ASGI scope extension: an ``async (bytes) -> None`` that writes ready-made frames to the socket."""

DIRECT_EXTENSION: Final = "pygarm.frames.now"
"""ASGI scope extension: a ``(bytes) -> bool`` that writes ready-made frames at once if the transport takes
them without waiting (not paused, not closing), and otherwise writes nothing and returns False."""

WriteFrames = Callable[[bytes], Awaitable[None]]
WriteNow = Callable[[bytes], bool]

_CACHE_LIMIT: Final = 4096
_frames: dict[str, bytes] = {}


def text_frame(text: str) -> bytes:
    """The final, unmasked text frame carrying ``text`` (RFC 6455 §5.2)."""
    return text_frame_of_utf8(text.encode())


def text_frame_of_utf8(payload: bytes) -> bytes:
    """:func:`text_frame` for text already encoded as UTF-8."""
    length = len(payload)
    if length < 126:
        return struct.pack("!BB", 0x81, length) + payload
    if length < 65536:
        return struct.pack("!BBH", 0x81, 126, length) + payload
    return struct.pack("!BBQ", 0x81, 127, length) + payload


def frame_of(text: str) -> bytes:
    """``text_frame(text)``, built once for the ``str`` every subscriber of one change shares.

    The hub hands all subscribers the same ``str`` object per change and variant, so the lookup costs an
    identity comparison (a ``str`` caches its hash); the cache is emptied when it reaches its bound.
    """
    frame = _frames.get(text)
    if frame is None:
        if len(_frames) >= _CACHE_LIMIT:
            _frames.clear()
        frame = _frames[text] = text_frame(text)
    return frame


def frame_writer(scope: Any) -> WriteFrames | None:
    extensions = scope.get("extensions") or {}
    writer: WriteFrames | None = extensions.get(FRAMES_EXTENSION)
    return writer


def frame_writer_now(scope: Any) -> WriteNow | None:
    extensions = scope.get("extensions") or {}
    writer: WriteNow | None = extensions.get(DIRECT_EXTENSION)
    return writer


class FramesProtocol(GarmWebSocketProtocol):
    """Adds :meth:`write_frames` and :meth:`write_now` to the scope of every accepted connection.

    Per connection it also keeps less: the inbound queue and the flow-control flag are
    ``api/ws_light.py``'s (no deques), and once the handshake is answered the request's and the response's
    header lists are emptied (the websockets parser keeps the request for the connection's life; nothing
    reads them after the 101; the ASGI scope has its own copy).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = InboundQueue()  # type: ignore[assignment]  # the subset of asyncio.Queue used here
        self.writable = Flag(True)  # type: ignore[assignment]  # the subset of asyncio.Event used here

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            self.request.headers.clear()
            self.response.headers.clear()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            extensions = scope["extensions"]
            extensions[FRAMES_EXTENSION] = self.write_frames
            extensions[DIRECT_EXTENSION] = self.write_now

    async def write_frames(self, data: bytes) -> None:
        await self.writable.wait()  # paused while the transport's buffer is above its high-water mark
        if self.disconnected or self.close_sent or self.transport.is_closing():
            raise WebSocketDisconnect(1006)
        self.transport.write(data)

    def write_now(self, data: bytes) -> bool:
        """Write at once when that needs no wait; False (nothing written) when the transport is paused,
        closing, or the connection is past its close frame: the caller then queues for the writer."""
        if (
            self.writable.is_set()
            and not self.close_sent
            and not self.disconnected
            and not self.transport.is_closing()
        ):
            self.transport.write(data)
            return True
        return False
