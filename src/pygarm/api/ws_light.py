"""Per-connection wait primitives small enough for tens of thousands of idle websockets (issue 14).

uvicorn's websocket protocol gives every connection an ``asyncio.Queue`` for inbound ASGI events and an
``asyncio.Event`` for write flow control. Each ``collections.deque`` inside them allocates a 64-slot block
at creation (760 bytes on CPython 3.11), and the two hold five of them: about 3.7 KB per connection, an
eighth of what an idle events subscriber costs (docs/performance.md). :class:`InboundQueue` and
:class:`Flag` do the same jobs for the way the protocol uses them, with lists created only while something
waits or is queued.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")


class _Waiters:
    """A lazily created list of parked futures; what both primitives below wait on."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] | None = None

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    async def _park(self) -> None:
        """Wait for the next :meth:`_wake_all` (or cancellation), leaving no list behind."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)
        try:
            await waiter
        finally:
            waiters = self._waiters
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    self._waiters = None


class InboundQueue(_Waiters, Generic[ItemT]):
    """The subset of ``asyncio.Queue`` (unbounded) the protocol uses: ``put_nowait``, ``get``, ``empty``.

    Every ``put_nowait`` wakes every waiting ``get``; each re-checks the queue, so several getters (and a
    cancelled one) never lose an item.
    """

    __slots__ = ("_items",)

    def __init__(self) -> None:
        super().__init__()
        self._items: list[ItemT] | None = None

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def put_nowait(self, item: ItemT) -> None:
        if self._items is None:
            self._items = [item]
        else:
            self._items.append(item)
        self._wake_all()

    async def get(self) -> ItemT:
        while not self._items:
            await self._park()
        items = self._items
        assert items is not None
        item = items.pop(0)
        if not items:
            self._items = None
        return item


class Flag(_Waiters):
    """The subset of ``asyncio.Event`` the protocol uses: ``is_set``, ``set``, ``clear``, ``wait``."""

    __slots__ = ("_value",)

    def __init__(self, value: bool = False) -> None:
        super().__init__()
        self._value = value

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if not self._value:
            self._value = True
            self._wake_all()

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if not self._value:
            await self._park()
        return True
