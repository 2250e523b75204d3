"""The websocket session as a pure state machine: what to do with each inbound message and each close.

No socket here. The route feeds the session what happened (a message arrived, the token expired, the
subscription was closed, the close frame went out, the peer left) and performs the action it returns.
Keeping every decision here lets the tests walk every path of docs/garm-protocol.md#filter-rules without a
server.

::

    AWAITING_FILTER ──valid filter──▶ STREAMING ──valid filter──▶ STREAMING   (replaces the filter)
          │  ▲ ignored message            │  ▲ ignored message
          └──┘                            └──┘
    AWAITING_FILTER / STREAMING ──bad message, too big, token expired, slow, shutdown──▶ CLOSING
    CLOSING ──close frame sent──▶ CLOSED
    any state ──peer gone──▶ CLOSED

Nothing is delivered in AWAITING_FILTER: like GARM, a connection starts with a filter that matches
nothing, so a client never receives events it did not ask for. The log endpoint has no filter and starts
in STREAMING; its inbound messages are ignored (docs/garm-protocol.md#log-stream) except for the size limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Final

from pygarm.events.filters import (
    NOTHING,
    CompiledFilter,
    Decoded,
    FilterMessage,
    Ignore,
    InvalidFilter,
    decode_filter,
)
from pygarm.events.mailbox import CloseCause

CLOSE_NORMAL: Final = 1000
"""Normal closure. GARM closes every connection with 1000 and an empty reason
(docs/garm-protocol.md#websocket-connection): after an error reply, when the token expires, on server
shutdown."""
CLOSE_BAD_FILTER: Final = CLOSE_NORMAL
"""After ``failed to unmarshal filter`` or ``invalid filter`` (docs/garm-protocol.md#filter-rules): 1000, as
in GARM."""
CLOSE_AUTH_EXPIRED: Final = CLOSE_NORMAL
"""The JWT ``exp`` passed (or the token has none): 1000, as in GARM
(docs/garm-protocol.md#websocket-connection)."""
CLOSE_SHUTDOWN: Final = CLOSE_NORMAL
"""The server is stopping: 1000, as in GARM."""
CLOSE_MESSAGE_TOO_BIG: Final = 1009
"""An inbound message over :data:`MAX_MESSAGE_BYTES` (RFC 6455 "message too big", as gorilla sends)."""
CLOSE_SLOW_CONSUMER: Final = 4000
"""pygarm only: the subscriber fell further behind than its queue allows and has missed events. GARM
drops such events silently (docs/garm-protocol.md#garms-delivery); pygarm closes instead, so the client knows
to reload state over REST and subscribe again. In the private-use range 4000-4999 of RFC 6455 §7.4.2."""

CLOSE_RESUME_UNAVAILABLE: Final = 4001
"""pygarm only, for clients that opted in to resume (``?since=N``): the log no longer holds the changes
after ``N`` (retention pruned them), so the client must reload state over REST and subscribe again
without ``since`` (Kubernetes answers a too-old resource version with 410 Gone for the same reason)."""

MAX_MESSAGE_BYTES: Final = 16384
"""GARM's ``SetReadLimit`` (docs/garm-protocol.md#websocket-connection): larger inbound messages close the
connection with 1009."""
MAX_CLOSE_REASON_BYTES: Final = 123
"""RFC 6455 §5.5: a close frame's payload is at most 125 bytes, two of which are the code."""

UNMARSHAL_ERROR_TEXT: Final = "failed to unmarshal filter"
"""Sent, as a text frame, for a message that does not decode into GARM's ``Options``."""
INVALID_FILTER_TEXT: Final = "invalid filter"
"""Sent, as a text frame, for a filter naming an unknown entity type or operation."""


def slow_consumer_reason(limit: int) -> str:
    """The close reason sent with :data:`CLOSE_SLOW_CONSUMER`."""
    return f"slow consumer: more than {limit} events behind, reload and resubscribe"


class SessionState(StrEnum):
    AWAITING_FILTER = "awaiting filter"
    STREAMING = "streaming"
    CLOSING = "closing"
    CLOSED = "closed"


_TRANSITIONS: Final[dict[SessionState, frozenset[SessionState]]] = {
    SessionState.AWAITING_FILTER: frozenset(
        {SessionState.STREAMING, SessionState.CLOSING, SessionState.CLOSED}
    ),
    SessionState.STREAMING: frozenset({SessionState.STREAMING, SessionState.CLOSING, SessionState.CLOSED}),
    SessionState.CLOSING: frozenset({SessionState.CLOSED}),
    SessionState.CLOSED: frozenset(),
}


class SessionStateError(RuntimeError):
    """A caller asked for something the current state does not allow (a bug in the caller)."""


@dataclass(frozen=True, slots=True)
class SetFilter:
    """Replace the subscription's filter with ``filter``."""

    filter: CompiledFilter
    message: FilterMessage


@dataclass(frozen=True, slots=True)
class Close:
    """Send ``text`` (if any) as a text frame, then a close frame with ``code`` and ``reason``.

    ``detail`` is for the server log only.
    """

    code: int
    reason: str = ""
    text: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Keep:
    """Nothing to do: the message was ignored and the current filter stays."""

    detail: str = ""


KEEP: Final = Keep()
Action = SetFilter | Close | Keep


class WebsocketSession:
    """State and close bookkeeping shared by the events and the logs endpoint."""

    __slots__ = ("_pending_close", "_state")

    initial_state: ClassVar[SessionState] = SessionState.STREAMING

    def __init__(self) -> None:
        self._state = self.initial_state
        self._pending_close: Close | None = None

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def is_open(self) -> bool:
        """True while inbound messages are read and events delivered."""
        return self._state in (SessionState.AWAITING_FILTER, SessionState.STREAMING)

    @property
    def pending_close(self) -> Close | None:
        """The close chosen when the session entered CLOSING; None before that and once CLOSED."""
        return self._pending_close if self._state is SessionState.CLOSING else None

    def _move(self, target: SessionState) -> None:
        if target not in _TRANSITIONS[self._state]:
            raise SessionStateError(f"cannot go from {self._state.value!r} to {target.value!r}")
        self._state = target

    def _begin_close(self, close: Close) -> Close | None:
        """Enter CLOSING with ``close``; a session already closing or closed keeps its first close."""
        if not self.is_open:
            return None
        self._move(SessionState.CLOSING)
        self._pending_close = close
        return close

    def receive(self, data: str | bytes) -> Action:
        """One inbound data message (text, or binary read as text). Only valid while :attr:`is_open`."""
        if not self.is_open:
            raise SessionStateError(f"receive() needs an open session, but it is {self._state.value!r}")
        size = len(data) if isinstance(data, bytes) or data.isascii() else len(data.encode())
        if size > MAX_MESSAGE_BYTES:
            close = Close(CLOSE_MESSAGE_TOO_BIG, detail=f"inbound message of {size} bytes")
            self._begin_close(close)
            return close
        return self._handle(data)

    def _handle(self, data: str | bytes) -> Action:
        return Keep(detail="inbound messages are ignored on this endpoint")

    def expire(self) -> Close | None:
        """The token's ``exp`` passed; None when the session is already closing."""
        return self._begin_close(Close(CLOSE_AUTH_EXPIRED, detail="token expired"))

    def close_for(self, cause: CloseCause, limit: int) -> Close | None:
        """The close to send now that the subscription closed for ``cause``; None if the peer is gone.

        A close the session chose itself (bad filter, too big, expiry) wins over the cause.
        """
        if self._state is SessionState.CLOSING:
            return self._pending_close
        if cause is CloseCause.SLOW_CONSUMER:
            close = Close(CLOSE_SLOW_CONSUMER, slow_consumer_reason(limit), detail="queue full")
        elif cause is CloseCause.SHUTDOWN:
            close = Close(CLOSE_SHUTDOWN, detail="server shutting down")
        elif cause is CloseCause.RESUME_UNAVAILABLE:
            close = Close(
                CLOSE_RESUME_UNAVAILABLE,
                "resume point no longer in the change log, reload and resubscribe",
                detail="resume point pruned",
            )
        else:
            close = Close(CLOSE_NORMAL, detail="closed")
        return self._begin_close(close)

    def close_sent(self) -> None:
        """The close frame went out: CLOSING → CLOSED.

        Already CLOSED is accepted: the peer may have left while the close frame was being sent.
        """
        if self._state is SessionState.CLOSED:
            return
        if self._state is not SessionState.CLOSING:
            raise SessionStateError(f"close_sent() needs state 'closing', but it is {self._state.value!r}")
        self._move(SessionState.CLOSED)

    def peer_gone(self) -> None:
        """The peer closed or the connection dropped: nothing more can be sent. Idempotent."""
        if self._state is not SessionState.CLOSED:
            self._move(SessionState.CLOSED)


class EventsSession(WebsocketSession):
    """``/api/v1/ws/events``: filter messages per docs/garm-protocol.md#filter-rules."""

    __slots__ = ("_filter",)

    initial_state: ClassVar[SessionState] = SessionState.AWAITING_FILTER

    def __init__(self) -> None:
        super().__init__()
        self._filter: CompiledFilter = NOTHING

    @property
    def filter(self) -> CompiledFilter:
        """The filter in force (:data:`NOTHING` until a valid filter arrives)."""
        return self._filter

    def _handle(self, data: str | bytes) -> Action:
        result = decode_filter(data)
        if isinstance(result, Decoded):
            self._move(SessionState.STREAMING)
            self._filter = result.filter
            return SetFilter(result.filter, result.message)
        if isinstance(result, Ignore):
            return Keep(detail=result.detail)
        text = INVALID_FILTER_TEXT if isinstance(result, InvalidFilter) else UNMARSHAL_ERROR_TEXT
        close = Close(CLOSE_BAD_FILTER, text=text, detail=result.detail)
        self._begin_close(close)
        return close


class LogsSession(WebsocketSession):
    """``/api/v1/ws/logs`` and ``/api/v1/ws``: streams from the start, ignores what the client sends."""

    __slots__ = ()
