"""What a subscriber's filter messages set in motion, given the extensions it asked for
(:class:`~pygarm.events.extensions.StreamOptions`), shared by the websocket and the SSE route.

When a filter is accepted, in one tick of the event loop (so no live delivery can slip in between):

1. the first filter of a resuming client queues a :class:`~pygarm.events.extensions.Replay` of
   ``(since, H]``, where ``H`` is the hub's position;
2. with ``ack``, a ``filter-ack`` control frame with ``seq`` ``H`` is queued: everything queued before it
   was matched against the previous filter, everything after it (``seq > H``) against the new one;
3. the first filter of a ``snapshot`` client queues a :class:`~pygarm.events.snapshot.Snapshot`, read when
   the writer reaches it at a position ``S >= H``; live deliveries queued behind it with ``seq <= S`` are
   skipped by the writer, so snapshot and live stream meet with no gap and no duplicate;
4. the filter replaces the subscription's filter.

Frames therefore never go back in ``seq``: replay (``<= H``), ack (``H``), snapshot and its end (``S``),
live (``> S``).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from pygarm.events.extensions import (
    BOOKMARK,
    FILTER_ACK,
    Control,
    PrunedThrough,
    ReadChangesAfter,
    Replay,
    StreamOptions,
    control_text,
)
from pygarm.events.hub import Hub, Subscription
from pygarm.events.mailbox import Mailbox
from pygarm.events.session import SetFilter
from pygarm.events.snapshot import OpenSnapshot, Snapshot


class Bookmarks:
    """``?bookmark=SECONDS``: while the writer has been idle that long, a ``bookmark`` frame with the
    hub's position. The writer calls :meth:`idle` instead of parking once a filter is set."""

    __slots__ = ("_floor", "_hub", "active", "interval")

    def __init__(self, interval: float, hub: Hub) -> None:
        self.interval = interval
        self._hub = hub
        self._floor = 0
        self.active = False
        """Set by the first filter: before it the client has subscribed to nothing."""

    def reached(self, seq: int) -> None:
        """The stream stands at ``seq`` (a snapshot may have been read past the hub's position)."""
        if seq > self._floor:
            self._floor = seq

    async def idle(self, mailbox: Mailbox[Any]) -> str | None:
        """Wait for an item, a close, or the interval; returns the bookmark frame when the interval
        passed with nothing to send. Only the mailbox's single consumer may call this.

        With the queue empty, every change up to the hub's position was either sent or filtered out, so
        that position is a safe resume point.
        """
        waiter = mailbox.park()
        if waiter.done():
            return None
        timer = asyncio.get_running_loop().call_later(self.interval, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
        if mailbox.items or mailbox.cause is not None:
            return None
        return control_text(BOOKMARK, max(self._hub.last_seq, self._floor))


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class StreamSetup:
    """Applies accepted filters to one subscription, with the extensions of :class:`StreamOptions`."""

    __slots__ = ("_bookmarks", "_hub", "_open_snapshot", "_options", "_pruned", "_read", "_started", "_sub")

    def __init__(
        self,
        options: StreamOptions,
        hub: Hub,
        subscription: Subscription,
        *,
        read_changes_after: ReadChangesAfter | None = None,
        pruned_through: PrunedThrough | None = None,
        open_snapshot: OpenSnapshot | None = None,
        bookmarks: Bookmarks | None = None,
    ) -> None:
        self._options = options
        self._hub = hub
        self._sub = subscription
        self._read = read_changes_after
        self._pruned = pruned_through
        self._open_snapshot = open_snapshot
        self._bookmarks = bookmarks
        self._started = False

    def on_filter(self, action: SetFilter) -> None:
        """An accepted filter message (called by the reader, synchronously)."""
        options = self._options
        compiled = action.filter
        queue = cast(Mailbox[object], self._sub)
        position = self._hub.last_seq
        first = not self._started
        self._started = True
        if first and options.since is not None:
            assert self._read is not None and self._pruned is not None
            queue.offer(Replay(options.since, position, compiled, self._read, self._pruned))
        if options.ack:
            queue.offer(Control(FILTER_ACK, position))
        if first and options.snapshot:
            assert self._open_snapshot is not None
            queue.offer(Snapshot(compiled, self._open_snapshot, position))
        self._sub.set_filter(compiled)
        if first and self._bookmarks is not None:
            self._bookmarks.active = True
            self._sub.nudge()  # a parked writer starts counting idle time now
