"""A bounded single-consumer queue: what one subscriber has been handed but not yet written.

Both the change hub and the log broadcaster keep one :class:`Mailbox` per subscriber. The producer side
(``offer``) never blocks and never awaits: it appends a reference to an item that was built once for all
subscribers and wakes the one consumer. The consumer side is one writer task per subscriber, which pops
items and awaits the socket; a slow socket therefore only ever slows its own writer.

The queue is bounded by ``limit``. When it is full the mailbox is closed with
:attr:`CloseCause.SLOW_CONSUMER` and emptied, instead of dropping the item silently (GARM drops events
after a 1 s wait, docs/garm-protocol.md#garms-delivery) or growing without bound: the subscriber learns that
it missed changes and must reload. Closing also empties the queue, so a closed subscriber holds no items.

The waking uses one future per *wait*, created by the consumer only when the queue is empty; the producer
resolves it at most once. No task, timer or callback is created per item.
"""

from __future__ import annotations

import asyncio
from collections import deque
from enum import StrEnum
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")


class CloseCause(StrEnum):
    """Why a mailbox stopped; the websocket session maps each cause to a close code."""

    SLOW_CONSUMER = "slow consumer"
    """Its queue was full when the next item arrived: the consumer has missed items."""
    SHUTDOWN = "shutdown"
    """The producer (hub or log broadcaster) is stopping."""
    CLOSED = "closed"
    """Its owner closed it (peer gone, bad filter, token expired, handler finished)."""
    RESUME_UNAVAILABLE = "resume unavailable"
    """A resuming subscriber asked for changes the log no longer holds (pruned by retention)."""
    ACCESS_REVOKED = "access revoked"
    """The subscriber's user was disabled or changed its password (GARM closes such connections)."""


class Mailbox(Generic[ItemT]):
    """Bounded FIFO of shared items with exactly one consumer.

    The producer calls :meth:`offer`; the consumer loops on :meth:`pop` and, when that returns ``None``,
    checks :attr:`closed` and otherwise awaits :meth:`wait`. ``async for`` does the same loop for consumers
    that do not care about batching.
    """

    __slots__ = ("cause", "items", "limit", "waiter")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"mailbox limit must be at least 1, got {limit}")
        self.items: deque[ItemT] = deque()
        self.limit = limit
        self.waiter: asyncio.Future[None] | None = None
        self.cause: CloseCause | None = None

    @property
    def closed(self) -> bool:
        return self.cause is not None

    def __len__(self) -> int:
        return len(self.items)

    def offer(self, item: ItemT) -> bool:
        """Queue ``item`` and wake the consumer; on overflow close the mailbox and return False.

        Never blocks. The hub's dispatcher inlines this body in its hot loop; keep the two in step.
        """
        if self.cause is not None:
            return False
        if len(self.items) >= self.limit:
            self.close(CloseCause.SLOW_CONSUMER)
            return False
        self.items.append(item)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)
        return True

    def pop(self) -> ItemT | None:
        """The oldest queued item, or None when the queue is empty (check :attr:`closed` then)."""
        items = self.items
        return items.popleft() if items else None

    def park(self) -> asyncio.Future[None]:
        """A future that resolves once an item is queued or the mailbox is closed; await it at once.

        :meth:`wait` without its coroutine frame, for writers that park for hours: an already resolved
        future when there is something to do. Only the single consumer may call this.
        """
        waiter = asyncio.get_running_loop().create_future()
        if self.items or self.cause is not None:
            waiter.set_result(None)
        else:
            self.waiter = waiter
        return waiter

    def nudge(self) -> None:
        """Wake a parked consumer without an item (it finds the queue empty and decides what to do)."""
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        """Return once an item is queued or the mailbox is closed (immediately if either holds).

        Only the single consumer may call this; a second concurrent waiter would steal the wake-up.
        """
        if self.items or self.cause is not None:
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiter = waiter
        try:
            await waiter
        finally:
            if self.waiter is waiter:
                self.waiter = None

    def close(self, cause: CloseCause = CloseCause.CLOSED) -> bool:
        """Stop accepting items, drop queued ones and wake the consumer. The first cause wins.

        Returns True when this call closed the mailbox, False when it was already closed.
        """
        if self.cause is not None:
            return False
        self.cause = cause
        self.items.clear()
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)
        return True

    def __aiter__(self) -> Mailbox[ItemT]:
        return self

    async def __anext__(self) -> ItemT:
        while True:
            item = self.pop()
            if item is not None:
                return item
            if self.cause is not None:
                raise StopAsyncIteration
            await self.wait()
