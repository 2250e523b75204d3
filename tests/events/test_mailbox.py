"""The bounded per-subscriber queue: overflow closes, close empties and wakes, one waiter per wait."""

from __future__ import annotations

import asyncio

import pytest

from pygarm.events.mailbox import CloseCause, Mailbox


async def test_offer_wakes_the_waiting_consumer() -> None:
    mailbox: Mailbox[str] = Mailbox(4)
    waiter = asyncio.create_task(mailbox.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    assert mailbox.offer("a")
    await asyncio.wait_for(waiter, 1)
    assert mailbox.pop() == "a"
    assert mailbox.pop() is None


async def test_overflow_closes_as_slow_consumer_and_drops_the_queue() -> None:
    """Never a silent drop: the item that does not fit closes the mailbox."""
    mailbox: Mailbox[int] = Mailbox(3)
    assert all(mailbox.offer(i) for i in range(3))
    assert not mailbox.offer(3)
    assert mailbox.cause is CloseCause.SLOW_CONSUMER
    assert len(mailbox) == 0
    assert not mailbox.offer(4)


async def test_close_wakes_the_consumer_and_first_cause_wins() -> None:
    mailbox: Mailbox[int] = Mailbox(3)
    waiter = asyncio.create_task(mailbox.wait())
    await asyncio.sleep(0)
    assert mailbox.close(CloseCause.SHUTDOWN)
    await asyncio.wait_for(waiter, 1)
    assert not mailbox.close(CloseCause.SLOW_CONSUMER)
    assert mailbox.cause is CloseCause.SHUTDOWN


async def test_async_iteration_ends_when_closed() -> None:
    mailbox: Mailbox[int] = Mailbox(10)
    received: list[int] = []

    async def consume() -> None:
        async for item in mailbox:
            received.append(item)
            if item == 2:
                mailbox.close()

    task = asyncio.create_task(consume())
    for i in range(3):
        mailbox.offer(i)
        await asyncio.sleep(0)
    await asyncio.wait_for(task, 1)
    assert received == [0, 1, 2]


async def test_cancelled_wait_leaves_no_stale_waiter() -> None:
    mailbox: Mailbox[int] = Mailbox(2)
    task = asyncio.create_task(mailbox.wait())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert mailbox.waiter is None
    assert mailbox.offer(1)


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Mailbox(0)


async def test_park_resolves_at_once_when_there_is_work_and_later_otherwise() -> None:
    mailbox: Mailbox[int] = Mailbox(2)
    parked = mailbox.park()
    assert not parked.done()
    mailbox.offer(1)
    assert parked.done()
    assert mailbox.park().done()  # an item is queued: nothing to wait for
    mailbox.pop()
    closing = mailbox.park()
    mailbox.close()
    assert closing.done()
    assert mailbox.park().done()  # closed: nothing to wait for
