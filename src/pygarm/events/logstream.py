"""Log streaming: a ``logging.Handler`` that fans formatted records out to websocket subscribers.

GARM broadcasts every log line its handler writes to each client of ``/api/v1/ws/logs`` and ``/api/v1/ws``
as one text frame (docs/garm-protocol.md#log-stream); slog writes a line at a time, so each frame ends with a
newline, and pygarm keeps that. Like the change hub, each subscriber has a bounded
:class:`~pygarm.events.mailbox.Mailbox` drained by its own writer; a subscriber that falls behind is closed as
a slow consumer rather than silently losing lines (GARM drops its client after a 5 s enqueue timeout).

``emit`` never blocks the code that logs. Records logged on the event loop thread are fanned out on the
spot; records from other threads (the store's writer thread, ``asyncio.to_thread`` work) go into a bounded
inbox that the loop drains in one callback per burst. If the loop falls so far behind that the inbox
fills up, every subscriber is closed as a slow consumer: they have missed lines.

The stream never streams itself: a record logged while a log stream is being served (the websocket server's
own DEBUG line for every frame it sends, the stream task's own messages) would otherwise be sent as a frame,
which logs another line, forever. :func:`serving_log_stream` marks the serving task's context (tasks it starts
inherit the mark) and :meth:`LogBroadcaster.emit` drops every record logged under that mark.

A line is formatted only when someone is listening, so an idle log stream costs one length check per
record.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final, NamedTuple

from pygarm.events.mailbox import CloseCause, Mailbox

log = logging.getLogger(__name__)

LOG_QUEUE_LIMIT: Final = 1024
"""Lines buffered per log subscriber before it is closed as a slow consumer."""
INBOX_LIMIT: Final = 4096
"""Lines from other threads waiting for the event loop before all subscribers are closed as behind."""


_SERVING_LOG_STREAM: ContextVar[bool] = ContextVar("pygarm_serving_log_stream", default=False)


@contextmanager
def serving_log_stream() -> Iterator[None]:
    """Records logged in this block (and in tasks started from it) are caused by the stream: not streamed."""
    token = _SERVING_LOG_STREAM.set(True)
    try:
        yield
    finally:
        _SERVING_LOG_STREAM.reset(token)


class LogLine(NamedTuple):
    """One formatted record, shared by every subscriber (the websocket writer sends ``text``)."""

    text: str


class LogBroadcaster(logging.Handler):
    """Fan-out of formatted log records; attach it to the root logger and :meth:`bind` it to the loop."""

    def __init__(
        self,
        level: int = logging.NOTSET,
        *,
        queue_limit: int = LOG_QUEUE_LIMIT,
        inbox_limit: int = INBOX_LIMIT,
    ) -> None:
        super().__init__(level)
        self.queue_limit = queue_limit
        self._inbox_limit = inbox_limit
        self._subscribers: dict[Mailbox[LogLine], None] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._inbox: deque[LogLine] = deque()
        self._flush_scheduled = False
        self._inbox_overflowed = False

    # --- lifecycle (event loop thread) ----------------------------------------------------------------

    def bind(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Deliver to subscribers on ``loop`` (the running loop by default). Call from that loop."""
        self._loop = loop or asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def close_all(self, cause: CloseCause = CloseCause.SHUTDOWN) -> None:
        """Close every current subscriber (new ones may still subscribe)."""
        subscribers = list(self._subscribers)
        self._subscribers.clear()
        for subscriber in subscribers:
            subscriber.close(cause)

    def stop(self) -> None:
        """Close every subscriber with :attr:`CloseCause.SHUTDOWN` and stop delivering."""
        self.close_all(CloseCause.SHUTDOWN)
        self._loop = None
        self._loop_thread = None
        self._inbox.clear()

    def subscribe(self) -> Mailbox[LogLine]:
        """A new subscriber that receives the lines logged from now on."""
        subscriber: Mailbox[LogLine] = Mailbox(self.queue_limit)
        self._subscribers[subscriber] = None
        return subscriber

    def unsubscribe(self, subscriber: Mailbox[LogLine]) -> None:
        self._subscribers.pop(subscriber, None)
        subscriber.close(CloseCause.CLOSED)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    # --- logging.Handler --------------------------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        """Called by ``Handler.handle`` under the handler lock, from any thread."""
        if not self._subscribers or self._loop is None or _SERVING_LOG_STREAM.get():
            return
        try:
            line = LogLine(self.format(record) + "\n")
        except Exception:
            self.handleError(record)
            return
        if threading.get_ident() == self._loop_thread:
            self._fan_out(line)
            return
        if len(self._inbox) >= self._inbox_limit:
            self._inbox_overflowed = True
            return
        self._inbox.append(line)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._flush)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                self._flush_scheduled = False

    # --- delivery (event loop thread) ----------------------------------------------------------------

    def _flush(self) -> None:
        # Clear the flag before draining: a line appended after this point schedules another flush.
        self._flush_scheduled = False
        inbox = self._inbox
        while inbox:
            self._fan_out(inbox.popleft())
        if self._inbox_overflowed:
            self._inbox_overflowed = False
            self._close_all_behind()

    def _fan_out(self, line: LogLine) -> None:
        refused: list[Mailbox[LogLine]] = []
        for subscriber in self._subscribers:
            if not subscriber.offer(line):  # full (now closed as slow) or closed by its owner
                refused.append(subscriber)
        if refused:
            for subscriber in refused:
                self._subscribers.pop(subscriber, None)
            slow = sum(1 for subscriber in refused if subscriber.cause is CloseCause.SLOW_CONSUMER)
            # Logged later, not from inside emit(), so this handler is not re-entered mid-fan-out.
            if slow and self._loop is not None:
                self._loop.call_soon(log.warning, "closed %d slow log stream subscriber(s)", slow)

    def _close_all_behind(self) -> None:
        count = len(self._subscribers)
        self.close_all(CloseCause.SLOW_CONSUMER)
        if count and self._loop is not None:
            self._loop.call_soon(log.warning, "log stream inbox overflowed; closed %d subscriber(s)", count)
