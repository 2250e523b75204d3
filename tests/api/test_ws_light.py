"""The per-connection queue and flag that stand in for asyncio.Queue and asyncio.Event in pygarm's
websocket protocol (api/ws_light.py): the same behaviour for the way uvicorn's protocol uses them."""

from __future__ import annotations

import asyncio

from pygarm.api.ws_light import Flag, InboundQueue


async def test_queue_hands_out_items_in_order_and_waits_when_empty() -> None:
    queue: InboundQueue[str] = InboundQueue()
    assert queue.empty() and queue.qsize() == 0
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert not queue.empty() and queue.qsize() == 2
    assert await queue.get() == "a"
    assert await queue.get() == "b"
    assert queue.empty()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put_nowait("c")
    assert await asyncio.wait_for(getter, 5) == "c"
    assert queue.empty()


async def test_a_cancelled_getter_loses_no_item() -> None:
    queue: InboundQueue[str] = InboundQueue()
    cancelled = asyncio.create_task(queue.get())
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    queue.put_nowait("only")
    assert await asyncio.wait_for(waiting, 5) == "only"
    assert cancelled.cancelled()
    assert queue.empty()


async def test_flag_wait_returns_once_set_and_clear_blocks_again() -> None:
    flag = Flag(True)
    assert flag.is_set()
    assert await flag.wait() is True
    flag.clear()
    assert not flag.is_set()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(waiter.done() for waiter in waiters)
    flag.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 5) == [True, True]
    assert flag.is_set()


async def test_a_cancelled_flag_waiter_leaves_the_others_waiting() -> None:
    flag = Flag()
    cancelled = asyncio.create_task(flag.wait())
    waiting = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    assert not waiting.done()
    flag.set()
    assert await asyncio.wait_for(waiting, 5) is True
