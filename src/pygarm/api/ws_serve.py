"""One websocket connection of the events or the log route: the writer loop, the reader task, shutdown.

One connection is two coroutines:

* the **writer** (the ASGI task itself, in :func:`serve`) is the only code that sends on the socket.
  It pops shared deliveries from the subscription and sends each frame; when the subscription closes it
  asks the session which close to send, sends the error text first if there is one, then the close
  frame. Because one coroutine sends both, the error text always reaches the socket before the close.
* the **reader** task feeds inbound messages to the session and applies its answer: a new filter on the
  subscription, or closing the subscription so that the writer sends the close.

Besides deliveries the queue may hold a :class:`~pygarm.events.stream.Backlog` (a resume's replay or a
snapshot, read from the database while it is sent) and :class:`~pygarm.events.extensions.Control` frames;
a :class:`~pygarm.events.stream.Bookmarks` sends a bookmark when the writer was idle for its interval.

The token's ``exp`` is one timer per connection. A writer that cannot get :data:`PROGRESS_FRAMES` frames
out within :data:`WRITE_TIMEOUT` (GARM: 10 s per frame) drops the connection: a peer that stopped reading
cannot be sent a close frame either.

Frames: the hub decodes each change's frame to ``str`` once; the ASGI ``text`` key is what makes the server
send a TEXT frame (uvicorn encodes it back into the frame buffer; ``bytes`` would send BINARY, unlike GARM).
Where the server offers :data:`~pygarm.api.ws_frames.FRAMES_EXTENSION` (pygarm's own uvicorn protocol),
deliveries skip ASGI: each change's text frame is built once for all subscribers and everything queued at
one wake-up is written at once (``api/ws_frames.py``). While the writer is parked on an empty queue (and
no snapshot floor or bookmark timer needs it to see each delivery), it leaves the hub a
:attr:`~pygarm.events.hub.Subscription.direct` write: the hub writes the frame to the transport itself,
without waking this task, unless the transport is paused or closing; then the delivery is queued and the
writer, woken, sends it and everything after it in order, under the write deadline as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from pygarm.api.ws_frames import WriteNow, frame_of, frame_writer, frame_writer_now
from pygarm.events.extensions import Backlog, ResumeUnavailable
from pygarm.events.hub import Delivery, DirectWrite, Hub, Subscription
from pygarm.events.logstream import LogBroadcaster
from pygarm.events.mailbox import CloseCause, Mailbox
from pygarm.events.session import Close, SetFilter, WebsocketSession
from pygarm.events.snapshot import Snapshot
from pygarm.events.stream import Bookmarks

log = logging.getLogger(__name__)

WRITE_TIMEOUT: Final = 10.0
"""Seconds within which a busy writer must send :data:`PROGRESS_FRAMES` frames (GARM's ``writeWait``)."""
PROGRESS_FRAMES: Final = 32
"""Frames per write deadline; re-arming the deadline per batch rather than per frame keeps timers off the
per-frame path."""

BATCH_FRAMES: Final = 64
"""Most frames joined into one transport write (api/ws_frames.py)."""

OnFilter = Callable[[SetFilter], None]


async def serve(
    websocket: WebSocket,
    session: WebsocketSession,
    mailbox: Mailbox[Any],
    expires_at: float | None,
    on_filter: OnFilter | None = None,
    render: Callable[[Any], str] | None = None,
    bookmarks: Bookmarks | None = None,
) -> None:
    """Run an accepted connection until it closes. ``mailbox`` items must have a ``text`` attribute
    (``render`` turns a :class:`Delivery` into the text to send instead), or be a :class:`Backlog`.

    The calling task becomes the connection's writer (one coroutine less per idle connection than a
    separate writer function would cost); the reader is the one task this starts.
    """
    loop = asyncio.get_running_loop()
    open_sockets: OpenSockets | None = getattr(websocket.app.state, "open_sockets", None)
    if open_sockets is not None:
        open_sockets.opened()
    reader = loop.create_task(_read(websocket, session, mailbox, on_filter))
    expiry = loop.call_later(_seconds_until(expires_at), _expire, session, mailbox)
    send = websocket.send
    write = frame_writer(websocket.scope)  # ready-made frame bytes, where the server offers it
    direct = _direct_write(websocket.scope, mailbox, render) if write is not None else None
    floor = 0  # after a snapshot at S: deliveries queued meanwhile with seq <= S are in it already
    carry: Any = None  # an item popped while batching that is not a delivery: it goes next
    try:
        async with asyncio.timeout(None) as deadline:
            budget = PROGRESS_FRAMES
            while True:
                if carry is None:
                    item = mailbox.pop()
                else:
                    item, carry = carry, None
                if item is None:
                    cause = mailbox.cause
                    if cause is not None:
                        break
                    deadline.reschedule(None)
                    if bookmarks is None or not bookmarks.active:
                        if direct is not None and not floor:
                            subscription = direct[0]
                            subscription.direct = direct[1]  # the hub writes while this task sleeps
                            await mailbox.park()
                            subscription.direct = None
                        else:
                            await mailbox.park()
                    else:
                        text = await bookmarks.idle(mailbox)
                        if text is not None:
                            deadline.reschedule(loop.time() + WRITE_TIMEOUT)
                            await send({"type": "websocket.send", "text": text})
                    deadline.reschedule(loop.time() + WRITE_TIMEOUT)
                    budget = PROGRESS_FRAMES
                    continue
                if type(item) is Delivery:
                    if floor:
                        if item.change.seq <= floor:
                            continue
                        floor = 0
                    text = item.text if render is None else render(item)
                    if write is not None:
                        # Everything queued now goes out in one write, each frame built once per change.
                        batch = [frame_of(text)]
                        while len(batch) < BATCH_FRAMES:
                            queued = mailbox.pop()
                            if queued is None:
                                break
                            if type(queued) is not Delivery:
                                carry = queued
                                break
                            if floor:
                                if queued.change.seq <= floor:
                                    continue
                                floor = 0
                            batch.append(frame_of(queued.text if render is None else render(queued)))
                        await write(b"".join(batch))
                        budget -= len(batch)
                        if budget <= 0:
                            deadline.reschedule(loop.time() + WRITE_TIMEOUT)
                            budget = PROGRESS_FRAMES
                        continue
                elif isinstance(item, Backlog):
                    started = loop.time()
                    complete = await _send_backlog(item, send, deadline, loop)
                    _count_backlog(websocket, item, loop.time() - started, complete)
                    if not complete:
                        mailbox.close(CloseCause.RESUME_UNAVAILABLE)
                    floor = item.position if item.skips_live else 0
                    if bookmarks is not None:
                        bookmarks.reached(item.position)
                    continue
                else:
                    text = item.text
                await send({"type": "websocket.send", "text": text})
                budget -= 1
                if not budget:
                    deadline.reschedule(loop.time() + WRITE_TIMEOUT)
                    budget = PROGRESS_FRAMES
            close = session.close_for(cause, mailbox.limit)
            if close is not None:  # None: the peer is gone
                deadline.reschedule(loop.time() + WRITE_TIMEOUT)
                if close.text is not None:  # the error text goes out before the close frame
                    await send({"type": "websocket.send", "text": close.text})
                await send({"type": "websocket.close", "code": close.code, "reason": close.reason})
                session.close_sent()
    except TimeoutError:
        log.warning("websocket peer stopped reading for %.0f s; dropping the connection", WRITE_TIMEOUT)
        session.peer_gone()
    except WebSocketDisconnect:
        session.peer_gone()
    finally:
        expiry.cancel()
        reader.cancel()
        mailbox.close()
        await asyncio.wait([reader])
        if open_sockets is not None:
            open_sockets.closed()


def _direct_write(
    scope: Any, mailbox: Mailbox[Any], render: Callable[[Any], str] | None
) -> tuple[Subscription, DirectWrite] | None:
    """The hub subscription and the write the hub may call while the writer is parked, if the server
    offers writes without waiting (``api/ws_frames.py``)."""
    write_now = frame_writer_now(scope)
    if write_now is None or not isinstance(mailbox, Subscription):
        return None
    return mailbox, _writing_now(write_now, render)


_last_frames: dict[Callable[[Any], str] | None, list[Any]] = {}
"""Per way of rendering: the last delivery the hub handed to a direct write, and its frame. The hub
hands one delivery to every subscriber in turn, so all but the first subscriber of each variant skip
rendering and the frame lookup (the only per-subscriber work left is the write)."""


def _writing_now(write_now: WriteNow, render: Callable[[Any], str] | None) -> DirectWrite:
    last = _last_frames.setdefault(render, [None, b""])

    def direct(delivery: Delivery) -> bool:
        if last[0] is not delivery:
            last[1] = frame_of(delivery.text if render is None else render(delivery))
            last[0] = delivery
        frame: bytes = last[1]
        return write_now(frame)

    return direct


async def _send_backlog(
    backlog: Backlog, send: Callable[[Message], Awaitable[None]], deadline: asyncio.Timeout, loop: Any
) -> bool:
    """Send a replay's or a snapshot's frames; False when the log no longer reaches back to the resume
    point."""
    armed = -WRITE_TIMEOUT
    try:
        async for text in backlog.frames():
            now = loop.time()
            if now - armed > 1.0:  # re-arm at most once a second: a timer per frame halved replay speed
                deadline.reschedule(now + WRITE_TIMEOUT)
                armed = now
            await send({"type": "websocket.send", "text": text})
    except ResumeUnavailable:
        return False
    return True


def _count_backlog(websocket: WebSocket, backlog: Backlog, seconds: float, complete: bool) -> None:
    """``/metrics``: a snapshot's or a replay's duration, and the 4001s (``pygarm/stats.py``)."""
    hub = getattr(websocket.app.state, "hub", None)
    if hub is not None:
        kind = "snapshot" if isinstance(backlog, Snapshot) else "replay"
        hub.stats.backlog_sent(kind, seconds, complete=complete)


def _seconds_until(expires_at: float | None) -> float:
    """A token without ``exp`` expires at once, as in GARM (docs/garm-protocol.md#websocket-connection)."""
    return 0.0 if expires_at is None else max(0.0, expires_at - time.time())


def _expire(session: WebsocketSession, mailbox: Mailbox[Any]) -> None:
    if session.expire() is not None:
        mailbox.close()


async def _read(
    websocket: WebSocket,
    session: WebsocketSession,
    mailbox: Mailbox[Any],
    on_filter: OnFilter | None,
) -> None:
    try:
        # The message is handed straight to a plain function, so nothing from it (the text, the decoded
        # filter message) stays referenced by this frame while it waits for the next one.
        while _on_message(await websocket.receive(), session, mailbox, on_filter):
            pass
    except Exception:
        # The writer must not wait forever on a reader that died: close, and let it send the close frame.
        log.exception("websocket reader failed")
        mailbox.close()


def _on_message(
    message: Message,
    session: WebsocketSession,
    mailbox: Mailbox[Any],
    on_filter: OnFilter | None,
) -> bool:
    """Apply one ASGI receive event; False when the reader should stop."""
    if message["type"] == "websocket.disconnect":
        session.peer_gone()
        mailbox.close()
        return False
    if not session.is_open:  # a close was chosen while this message was on its way
        return False
    data = message.get("text")
    if data is None:
        data = message.get("bytes") or b""
    action = session.receive(data)
    if isinstance(action, SetFilter):
        if on_filter is not None:
            on_filter(action)
    elif isinstance(action, Close):
        log.debug("closing websocket %d: %s", action.code, action.detail)
        mailbox.close()
    return session.is_open


# --- shutdown -----------------------------------------------------------------------------------------


SHUTDOWN_GRACE: Final = 0.1
"""Seconds the writers get to send their close frames before the server closes the sockets."""


class OpenSockets:
    """How many connections :func:`serve` is running, so that shutdown waits for their close frames
    only while there are any (and not a fixed grace period when there are none)."""

    __slots__ = ("_count", "_idle")

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def opened(self) -> None:
        self._count += 1
        self._idle.clear()

    def closed(self) -> None:
        self._count -= 1
        if self._count == 0:
            self._idle.set()

    async def wait_closed(self, timeout: float) -> None:
        """Return when no connection is open, or after ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()


async def close_websockets(app: Any, grace: float = SHUTDOWN_GRACE) -> None:
    """Close every events and log subscriber with 1000, as GARM does when it stops.

    Call this *before* uvicorn's ``Server.shutdown()``: that method sends its own close 1012 to every
    open websocket before the lifespan shutdown runs, so a lifespan hook would be too late. Returns once
    every connection's writer has finished (sent its close frame), or after ``grace`` seconds.
    """
    hub: Hub | None = getattr(app.state, "hub", None)
    if hub is not None:
        hub.close_all(CloseCause.SHUTDOWN)
    broadcaster: LogBroadcaster | None = getattr(app.state, "log_broadcaster", None)
    if broadcaster is not None:
        broadcaster.close_all(CloseCause.SHUTDOWN)
    open_sockets: OpenSockets | None = getattr(app.state, "open_sockets", None)
    if open_sockets is None:
        await asyncio.sleep(grace)
    else:
        await open_sockets.wait_closed(grace)
