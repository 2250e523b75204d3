"""Reading GARM's events websocket: three thin faces over :class:`~pygarm.client._protocol.StreamState`.

* :class:`AsyncEventStream`: ``async for event in client.events(filters=...)`` (asyncio).
* :class:`EventStream`: the same as a plain iterator, for scripts and the CLI (``websockets.sync``).
* :class:`EventReader`: GARM's own reader (``garm-provider-common/util/websocket``) in Python: a
  handler called with ``(message_type, bytes)`` from a background thread, ``start()``,
  ``write_message()``, ``stop()`` and ``done``; the caller sends the filter itself.

Each face opens a socket, sends what the state says, passes frames through it and sleeps the delays it
returns; the decisions (what a close means, whether to reconnect, how long to wait, when to report a
gap) are all in the core, so the three cannot drift apart. Compression is off: event frames are small
and deflate costs memory on both ends (docs/design.md#memory-per-connection). Server pings are answered by
``websockets``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Final

from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException
from websockets.sync.client import ClientConnection as SyncConnection
from websockets.sync.client import connect as sync_connect

from pygarm.client._core import api_error, auth_header
from pygarm.client._protocol import (
    CLOSE_TIMEOUT_S,
    EVENTS_PATH,
    MAX_FRAME_BYTES,
    OPEN_TIMEOUT_S,
    PING_INTERVAL_S,
    PING_TIMEOUT_S,
    Event,
    Gap,
    StreamState,
    backoff,
    decode_event,
    events_url,
)
from pygarm.client._resume import Control, StreamOptions, decode_control
from pygarm.client.errors import ConnectError, GarmClientError, HandshakeError

__all__ = [
    "BINARY_MESSAGE",
    "OPENED",
    "TEXT_MESSAGE",
    "AsyncEventStream",
    "EventReader",
    "EventStream",
    "async_frames",
    "sync_frames",
]

log = logging.getLogger("pygarm.client.events")

TEXT_MESSAGE: Final = 1
"""gorilla/websocket's ``TextMessage``: the ``message_type`` the handler receives for text frames."""
BINARY_MESSAGE: Final = 2
"""gorilla/websocket's ``BinaryMessage``."""
OPENED: Final = 0
"""Not a frame: what the frame generators yield when a connection has opened (and sent its filter)."""


_CONNECT_FAILURES: Final = (OSError, TimeoutError, WebSocketException)
"""What a failed connection attempt raises; :func:`connect_error` turns each into a client error."""


def _connect_options(token: str) -> dict[str, Any]:
    """The handshake and keepalive settings of every events connection, sync or async."""
    return {
        "additional_headers": auth_header(token),
        "compression": None,
        "max_size": MAX_FRAME_BYTES,
        "open_timeout": OPEN_TIMEOUT_S,
        "ping_interval": PING_INTERVAL_S,
        "ping_timeout": PING_TIMEOUT_S,
        "close_timeout": CLOSE_TIMEOUT_S,
        "proxy": None,  # direct, like GARM's dialer; no proxy from the environment
    }


def _open_sync(url: str, token: str) -> SyncConnection:
    """A blocking connection, or the client error of the failed attempt."""
    try:
        # legacy: a connection, not websockets' own reconnecting iterator: the core decides that
        return sync_connect(url, legacy=True, **_connect_options(token))
    except _CONNECT_FAILURES as exc:
        raise connect_error(url, exc) from exc


async def _open_async(url: str, token: str) -> AsyncConnection:
    """An asyncio connection, or the client error of the failed attempt."""
    try:
        return await async_connect(url, **_connect_options(token))
    except _CONNECT_FAILURES as exc:
        raise connect_error(url, exc) from exc


def connect_error(url: str, exc: BaseException) -> GarmClientError:
    """A failed connection attempt as a client error: GARM's body for a refused upgrade, else why."""
    if isinstance(exc, InvalidStatus):
        return api_error(exc.response.status_code, bytes(exc.response.body), HandshakeError)
    if isinstance(exc, InvalidURI):
        return ConnectError(f"invalid events URL {url!r}: {exc}")
    if isinstance(exc, _CONNECT_FAILURES):
        return ConnectError(f"cannot connect to {url}: {exc or type(exc).__name__}")
    raise exc


class _SyncSocket:
    """The current connection of a blocking reader and the flag that stops it, shared between the
    reading thread and whichever thread calls ``close()`` / ``stop()``."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.conn: SyncConnection | None = None

    def adopt(self, ws: SyncConnection) -> None:
        """The reading thread opened ``ws``; close it at once if a stop came while it was opening."""
        with self.lock:
            self.conn = ws
        if self.stopping.is_set():
            ws.close()

    def stop(self) -> None:
        """Set the flag and close the current connection (1000); safe from any thread, repeatedly."""
        self.stopping.set()
        with self.lock:
            conn = self.conn
        if conn is not None:
            conn.close()


class _Stream:
    """What the two iterator faces share: where to connect, with which token, and the core's
    :class:`~pygarm.client._protocol.StreamState` that makes every decision."""

    def __init__(
        self,
        url: str,
        token: str,
        filter_message: bytes,
        *,
        reconnect: bool = False,
        on_gap: Callable[[Gap], None] | None = None,
        delays: Callable[[], Iterator[float]] = backoff,
        options: StreamOptions | None = None,
        on_control: Callable[[Control], None] | None = None,
    ) -> None:
        self.url = url
        self._token = token
        self._on_control = on_control
        self.state = StreamState(
            filter_message=filter_message,
            reconnect=reconnect,
            on_gap=on_gap,
            delays=delays,
            options=options,
        )
        self._prepare()

    @property
    def last_seq(self) -> int | None:
        """The resume point: the ``seq`` up to which everything the filter selects was received (with
        ``resume``, ``seq``, ``since`` or ``snapshot``; ``None`` before the first)."""
        return self.state.position.seq

    def _decode(self, frame: bytes) -> Event | None:
        """The event in ``frame``; a control frame goes to ``on_control`` (in stream order) instead."""
        event = decode_event(frame)
        if event is None and self._on_control is not None:
            control = decode_control(frame)
            if control is not None:
                self._on_control(control)
        return event

    def _prepare(self) -> None:
        """What a face keeps besides the state; called last by ``__init__`` (the blocking face adds
        the socket holder its ``close()`` needs)."""


class AsyncEventStream(_Stream):
    """Typed events from ``url`` until the stream ends; iterate with ``async for``.

    Ends quietly when the server closes normally (without ``reconnect``) or when the caller stops
    iterating; raises :class:`~pygarm.client.errors.HandshakeError`, ``ConnectError``,
    ``FilterRejected`` or ``EventsClosedError`` otherwise. With ``reconnect=True`` it reconnects after
    drops and server restarts (the first connection must succeed), re-sends the filter, and reports each
    :class:`~pygarm.client._protocol.Gap` to ``on_gap`` (default: a logged warning). ``delays`` makes the
    iterator of waits between attempts (default: :func:`~pygarm.client.backoff`). ``options`` asks a
    pygarm server for its extensions; with ``resume`` a reconnect continues from :attr:`last_seq`
    (``since=``) with no gap and no duplicate, and a 4001 raises ``ResumeUnavailable``. Control frames
    (``snapshot-end``, ``filter-ack``, ``bookmark``) are not events; ``on_control`` receives them.
    """

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._run()

    async def _run(self) -> AsyncIterator[Event]:
        async for kind, frame in async_frames(self.url, self._token, self.state):
            if kind == TEXT_MESSAGE:
                event = self._decode(frame)
                if event is not None:
                    yield event


async def async_frames(url: str, token: str, state: StreamState) -> AsyncIterator[tuple[int, bytes]]:
    """``(message_type, data)`` for every frame, across reconnects, until the state ends the stream;
    ``(OPENED, b"")`` each time a connection opens (and its filter was sent)."""
    while True:
        try:
            ws = await _open_async(state.url(url), token)
        except GarmClientError as exc:
            await asyncio.sleep(state.failed(exc))
            continue
        opened_at = time.monotonic()
        try:
            message = state.opened()
            if message is not None:
                await ws.send(message, text=True)
            yield OPENED, b""
            async for frame in ws:
                state.received(frame)
                if isinstance(frame, str):
                    yield TEXT_MESSAGE, frame.encode()
                else:
                    yield BINARY_MESSAGE, bytes(frame)
        except ConnectionClosed:
            pass  # read the close code below
        finally:
            await ws.close()
        delay = state.closed(ws.close_code, ws.close_reason or "", time.monotonic() - opened_at)
        if delay is None:
            return
        await asyncio.sleep(delay)


class EventStream(_Stream):
    """The blocking twin of :class:`AsyncEventStream` (same arguments, same endings); iterate with
    ``for``. Ctrl-C raises ``KeyboardInterrupt`` out of the loop and the socket is closed on the way;
    :meth:`close` (from any thread) ends the iteration quietly."""

    def __iter__(self) -> Iterator[Event]:
        for kind, data in sync_frames(self.url, self._token, self.state, self._socket):
            if kind == TEXT_MESSAGE:
                event = self._decode(data)
                if event is not None:
                    yield event

    def _prepare(self) -> None:
        self._socket = _SyncSocket()

    def close(self) -> None:
        """Stop: close the socket (1000) and end the iteration, also while it waits to reconnect."""
        self._socket.stop()


def sync_frames(
    url: str,
    token: str,
    state: StreamState,
    socket: _SyncSocket,
    *,
    first: SyncConnection | None = None,
) -> Iterator[tuple[int, bytes]]:
    """``(message_type, data)`` for every frame, across reconnects, until the state ends the stream or
    ``socket`` is stopped, and ``(OPENED, b"")`` each time a connection opens. Shared by
    :class:`EventStream`, :class:`EventReader` and the state mirror; each connection goes to the URL
    the state names for it (``state.url(url)``). The reader passes the connection
    it opened (and reported to the state) in ``start()`` as ``first``."""
    stopping = socket.stopping
    ws: SyncConnection | None = first
    while not stopping.is_set():
        if ws is None:
            try:
                ws = _open_sync(state.url(url), token)
            except GarmClientError as exc:
                if stopping.wait(state.failed(exc)):
                    return
                continue
            socket.adopt(ws)
            resend = state.opened()
        else:
            resend = None  # the first connection was reported to the state by its opener
        opened_at = time.monotonic()
        try:
            if resend is not None:
                ws.send(resend, text=True)
            yield OPENED, b""
            for frame in ws:
                state.received(frame)
                if isinstance(frame, str):
                    yield TEXT_MESSAGE, frame.encode()
                else:
                    yield BINARY_MESSAGE, bytes(frame)
        except ConnectionClosed:
            pass
        finally:
            ws.close()
        if stopping.is_set():
            return
        delay = state.closed(ws.close_code, ws.close_reason or "", time.monotonic() - opened_at)
        ws = None
        if delay is None or stopping.wait(delay):
            return


class EventReader:
    """GARM's Go events reader, in Python.

    ``handler(message_type, data)`` runs on the reader's thread for every frame, exactly as received
    (``TEXT_MESSAGE`` for GARM's JSON events and error texts). Typical use::

        reader = EventReader(base_url, token=token, handler=handler)
        reader.start()                                   # raises HandshakeError / ConnectError
        reader.write_message(TEXT_MESSAGE, b'{"send-everything":true}')
        reader.wait()                                    # until the server closes, stop(), or Ctrl-C

    As in GARM, only the host of ``base_url`` is used and ``path`` is absolute. With ``reconnect=True``
    the last text message written is re-sent after each reconnect and gaps go to ``on_gap``. With
    ``resume=True`` (pygarm servers) it also asks for ``seq`` and filter acknowledgements, and each
    reconnect continues from the last ``seq`` received (``since=``): no gap, no duplicate; the handler
    then also sees pygarm's control frames. ``since``, ``snapshot``, ``ack`` and ``bookmark`` ask for
    the other extensions (docs/events.md). ``error`` holds what ended the stream, if it did not end
    normally (``ResumeUnavailable`` when the server pruned its log past the resume point).
    """

    def __init__(
        self,
        base_url: str,
        path: str = EVENTS_PATH,
        token: str = "",
        handler: Callable[[int, bytes], object] | None = None,
        *,
        reconnect: bool = False,
        on_gap: Callable[[Gap], None] | None = None,
        delays: Callable[[], Iterator[float]] = backoff,
        resume: bool = False,
        since: int | None = None,
        snapshot: bool = False,
        ack: bool = False,
        bookmark: float | None = None,
    ) -> None:
        self.url = events_url(base_url, path, keep_prefix=False)
        self._token = token
        self._handler = handler
        options = StreamOptions(since=since, snapshot=snapshot, ack=ack, bookmark=bookmark, resume=resume)
        self._state = StreamState(
            filter_message=None, reconnect=reconnect, on_gap=on_gap, delays=delays, options=options
        )
        self._socket = _SyncSocket()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: GarmClientError | None = None

    @property
    def last_seq(self) -> int | None:
        """The resume point (see :attr:`EventStream.last_seq`)."""
        return self._state.position.seq

    @property
    def done(self) -> threading.Event:
        """Set once the reader has stopped for good (GARM's ``Done()`` channel)."""
        return self._done

    def start(self) -> None:
        """Connect and start reading in the background; a second call does nothing."""
        with self._socket.lock:
            if self._thread is not None:
                return
            first = _open_sync(self._state.url(self.url), self._token)
            self._socket.conn = first
            self._state.opened()
            self._thread = threading.Thread(
                target=self._run, args=(first,), name="pygarm-events", daemon=True
            )
            self._thread.start()

    def write_message(self, message_type: int, data: bytes) -> None:
        """Send one frame (GARM clients send the filter this way); raises ``ConnectError`` when the
        reader is not running. While a reconnecting reader is between connections, a text message is
        only remembered: it goes out as soon as the next connection opens."""
        with self._socket.lock:
            conn = self._socket.conn
            if conn is None or self._done.is_set():
                raise ConnectError("events reader is not running")
            if message_type == TEXT_MESSAGE:
                self._state.remember_filter(data)
            try:
                conn.send(data, text=message_type == TEXT_MESSAGE)  # as given, like gorilla
            except ConnectionClosed as exc:
                if not (self._state.reconnect and message_type == TEXT_MESSAGE):
                    raise ConnectError(f"events connection is closed: {exc}") from exc

    def stop(self) -> None:
        """Close with 1000 and wait for the reading thread; safe to call from any thread, repeatedly."""
        self._socket.stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=CLOSE_TIMEOUT_S + 1)
        self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until done; Ctrl-C stops the reader cleanly instead of raising. True when done."""
        try:
            return self._done.wait(timeout)
        except KeyboardInterrupt:
            self.stop()
            return True

    def __enter__(self) -> EventReader:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self, first: SyncConnection) -> None:
        try:
            for kind, data in sync_frames(self.url, self._token, self._state, self._socket, first=first):
                if self._handler is None or kind == OPENED:
                    continue
                try:
                    self._handler(kind, data)
                except Exception:  # GARM logs handler errors and keeps reading
                    log.exception("events handler failed")
        except GarmClientError as exc:
            self.error = exc
            log.error("events reader stopped: %s", exc)
        finally:
            self._done.set()
