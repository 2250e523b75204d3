"""``/api/v1/ws/events``: the database events websocket (docs/garm-protocol.md#events-websocket), a thin face
over ``events/``.

Every decision lives in :class:`~pygarm.events.session.EventsSession` and the hub; this module only moves
messages between them and the socket. It also holds the pieces the log route shares: the upgrade checks
and :func:`serve`, which runs one connection.

One connection is two coroutines:

* the **writer** (the ASGI task itself, in :func:`serve`) is the only code that sends on the socket.
  It pops shared deliveries from the subscription and sends each frame; when the subscription closes it
  asks the session which close to send, sends the error text first if there is one, then the close
  frame. Because one coroutine sends both, the error text always reaches the socket before the close.
* the **reader** task feeds inbound messages to the session and applies its answer: a new filter on the
  subscription, or closing the subscription so that the writer sends the close.

The token's ``exp`` is one timer per connection. A writer that cannot get :data:`PROGRESS_FRAMES` frames
out within :data:`WRITE_TIMEOUT` (GARM: 10 s per frame) drops the connection: a peer that stopped reading
cannot be sent a close frame either.

Frames: the hub decodes each change's frame to ``str`` once; the ASGI ``text`` key is what makes the server
send a TEXT frame (uvicorn encodes it back into the frame buffer; ``bytes`` would send BINARY, unlike GARM).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol, cast
from urllib.parse import urlsplit

from fastapi import APIRouter
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from pygarm.api.errors import error_response
from pygarm.events.extensions import (
    SINCE_BEYOND_HEAD,
    InvalidStreamOptions,
    Replay,
    ResumeUnavailable,
    parse_stream_options,
)
from pygarm.events.filters import CompiledFilter
from pygarm.events.guard import AccessGuard
from pygarm.events.hub import Delivery, Hub, Subscription
from pygarm.events.logstream import LogBroadcaster
from pygarm.events.mailbox import CloseCause, Mailbox
from pygarm.events.session import Close, EventsSession, SetFilter, WebsocketSession

log = logging.getLogger(__name__)

WRITE_TIMEOUT: Final = 10.0
"""Seconds within which a busy writer must send :data:`PROGRESS_FRAMES` frames (GARM's ``writeWait``)."""
PROGRESS_FRAMES: Final = 32
"""Frames per write deadline; re-arming the deadline per batch rather than per frame keeps timers off the
per-frame path."""

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


# --- one connection -----------------------------------------------------------------------------------


async def serve(
    websocket: WebSocket,
    session: WebsocketSession,
    mailbox: Mailbox[Any],
    expires_at: float | None,
    on_filter: Callable[[CompiledFilter], None] | None = None,
    render: Callable[[Any], str] | None = None,
) -> None:
    """Run an accepted connection until it closes. ``mailbox`` items must have a ``text`` attribute
    (``render`` turns an item into the text to send instead), or be a :class:`Replay`.

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
    try:
        async with asyncio.timeout(None) as deadline:
            budget = PROGRESS_FRAMES
            while True:
                item = mailbox.pop()
                if item is None:
                    cause = mailbox.cause
                    if cause is not None:
                        break
                    deadline.reschedule(None)
                    await mailbox.park()
                    deadline.reschedule(loop.time() + WRITE_TIMEOUT)
                    budget = PROGRESS_FRAMES
                    continue
                if type(item) is Replay:
                    if not await _send_replay(item, send, deadline, loop):
                        mailbox.close(CloseCause.RESUME_UNAVAILABLE)
                    continue
                await send({"type": "websocket.send", "text": item.text if render is None else render(item)})
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


async def _send_replay(
    replay: Replay, send: Callable[[Message], Awaitable[None]], deadline: asyncio.Timeout, loop: Any
) -> bool:
    """Send a resume's backlog; False when the log no longer reaches back to the resume point."""
    try:
        async for text in replay.frames():
            deadline.reschedule(loop.time() + WRITE_TIMEOUT)
            await send({"type": "websocket.send", "text": text})
    except ResumeUnavailable:
        return False
    return True


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
    on_filter: Callable[[CompiledFilter], None] | None,
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
    on_filter: Callable[[CompiledFilter], None] | None,
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
            on_filter(action.filter)
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


# --- the route ----------------------------------------------------------------------------------------


async def events_websocket(websocket: WebSocket) -> None:
    """GARM's ``EventsHandler``: authenticate, check the origin, upgrade, stream what the filter allows.

    The opt-in extensions (``?seq=``, ``?since=``, see :mod:`pygarm.events.extensions`) change nothing
    for a client that does not ask for them.
    """
    try:
        options = parse_stream_options(websocket.query_params)
    except InvalidStreamOptions as exc:
        await websocket.send_denial_response(error_response(400, "Bad Request", str(exc)))
        return
    principal = await authenticate(websocket)
    if principal is None or not await check_origin(websocket):
        return
    hub: Hub = websocket.app.state.hub
    if options.since is not None:
        head = await log_head(websocket.app, hub)
        if options.since > head:
            # A resume point the log never reached: the client's state came from another (or a restored)
            # database, so resuming would silently mix two histories (issue 8 #10).
            details = f"{SINCE_BEYOND_HEAD}: since {options.since} > head {head}"
            await websocket.send_denial_response(error_response(400, "Bad Request", details))
            return
    guard: AccessGuard | None = getattr(websocket.app.state, "access_guard", None)
    await websocket.accept()
    subscription = hub.subscribe(f"ws-event-watcher-{principal.user_id}-{secrets.token_hex(4)}")
    on_filter: Callable[[CompiledFilter], None] = subscription.set_filter
    if options.since is not None:
        on_filter = _resume_on_first_filter(websocket, hub, subscription, options.since)
    render = _render_with_seq if options.with_seq else None
    if guard is not None:
        guard.register(principal.user_id, principal.generation, subscription)
    try:
        await serve(websocket, EventsSession(), subscription, principal.expires_at, on_filter, render)
    finally:
        if guard is not None:
            guard.unregister(principal.user_id, subscription)


async def log_head(app: Any, hub: Hub) -> int:
    """The highest ``seq`` the change log ever reached: its newest row, what retention deleted, or what the
    hub has dispatched, whichever is largest (another process may have committed past the hub)."""
    state = app.state
    logged: int = await state.log_last_seq()
    pruned: int = await state.pruned_through()
    return max(hub.last_seq, logged, pruned)


def _render_with_seq(delivery: Delivery) -> str:
    return delivery.seq_text


def _resume_on_first_filter(
    websocket: WebSocket, hub: Hub, subscription: Subscription, since: int
) -> Callable[[CompiledFilter], None]:
    """The first filter also queues the replay of ``(since, hub position]``; later ones only replace it."""
    resumed = False

    def on_filter(compiled: CompiledFilter) -> None:
        nonlocal resumed
        if not resumed:
            resumed = True
            # Queued before the filter is set, in the same tick: nothing live can come before it.
            cast(Mailbox[object], subscription).offer(
                Replay(
                    since=since,
                    upto=hub.last_seq,
                    match=compiled,
                    read=websocket.app.state.read_changes_after,
                    pruned_through=websocket.app.state.pruned_through,
                )
            )
        subscription.set_filter(compiled)

    return on_filter


router = APIRouter()
# Plain Starlette websocket routes: FastAPI's dependency-solving wrapper would stay on every connection's
# stack for its whole life (about 6 KB per idle subscriber, measured), and these endpoints use none.
for _path in EVENTS_PATHS:
    router.add_websocket_route(_path, events_websocket)
