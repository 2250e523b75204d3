"""The change hub: commit order, gap filling, exactly-once, filters, slow consumers, no per-event tasks.

GARM gives none of these (docs/garm-protocol.md#garms-delivery: goroutine per consumer per event, 1 s drop);
pygarm's guarantees are in ``docs/events.md``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pygarm.events import hub as hub_module
from pygarm.events.change import EntityType, Operation
from pygarm.events.filters import EVERYTHING, NOTHING
from pygarm.events.hub import Hub, Subscription
from pygarm.events.mailbox import CloseCause
from tests.events.helpers import FakeLog, make_change, seqs_of
from tests.waiting import until


def received(subscription: Subscription) -> list[int]:
    return [delivery.change.seq for delivery in subscription.items]


def make_hub(log: FakeLog, last_seq: int = 0, **kwargs: Any) -> Hub:
    kwargs.setdefault("poll_interval", None)
    return Hub(log.read_changes_after, last_seq, **kwargs)


# --- the fast path --------------------------------------------------------------------------------------


async def test_contiguous_changes_are_dispatched_at_once_in_order() -> None:
    log = FakeLog()
    hub = make_hub(log, last_seq=10)
    sub = hub.subscribe("a")
    sub.set_filter(EVERYTHING)
    hub.publish([make_change(11), make_change(12)])
    hub.publish([make_change(13)])
    assert received(sub) == [11, 12, 13]
    assert hub.last_seq == 13
    assert log.calls == []  # no gap, no read


async def test_delivery_carries_the_frame_as_text() -> None:
    """docs/garm-protocol.md#event-frame: the frame bytes built once by the store, decoded once for the ASGI
    text frame."""
    hub = make_hub(FakeLog())
    sub = hub.subscribe()
    sub.set_filter(EVERYTHING)
    change = make_change(1, EntityType.REPOSITORY, Operation.CREATE)
    hub.publish([change])
    delivery = sub.pop()
    assert delivery is not None
    assert delivery.change is change
    assert delivery.text == change.frame.decode()
    assert delivery.text.startswith('{"entity-type":"repository","operation":"create","payload":{')
    assert delivery.seq_text == delivery.text[:-1] + ',"seq":1}'  # ?seq=true: seq as the last key


async def test_nothing_is_delivered_before_a_filter() -> None:
    """docs/garm-protocol.md#filter-rules: a subscription starts with the filter that matches nothing."""
    hub = make_hub(FakeLog())
    sub = hub.subscribe()
    assert sub.match is NOTHING
    hub.publish([make_change(1), make_change(2)])
    assert received(sub) == []
    sub.set_filter(EVERYTHING)
    hub.publish([make_change(3)])
    assert received(sub) == [3]  # never the changes from before the filter


async def test_subscribers_only_get_changes_after_subscribing() -> None:
    hub = make_hub(FakeLog())
    early = hub.subscribe()
    early.set_filter(EVERYTHING)
    hub.publish([make_change(1)])
    late = hub.subscribe()
    late.set_filter(EVERYTHING)
    assert late.start_seq == 1
    hub.publish([make_change(2)])
    assert received(early) == [1, 2]
    assert received(late) == [2]


async def test_filters_select_and_can_be_replaced_at_any_time() -> None:
    """docs/garm-protocol.md#filter-rules: only matching pairs; a new filter replaces (not merges with) the
    old."""
    hub = make_hub(FakeLog())
    sub = hub.subscribe()
    sub.set_filter(frozenset({(EntityType.REPOSITORY, Operation.CREATE)}))
    hub.publish(
        [
            make_change(1, EntityType.REPOSITORY, Operation.CREATE),
            make_change(2, EntityType.REPOSITORY, Operation.UPDATE),
            make_change(3, EntityType.POOL, Operation.CREATE),
        ]
    )
    sub.set_filter(frozenset({(EntityType.POOL, Operation.CREATE)}))
    hub.publish(
        [
            make_change(4, EntityType.REPOSITORY, Operation.CREATE),
            make_change(5, EntityType.POOL, Operation.CREATE),
        ]
    )
    assert received(sub) == [1, 5]


async def test_changes_at_or_below_the_last_seq_are_skipped() -> None:
    hub = make_hub(FakeLog(), last_seq=5)
    sub = hub.subscribe()
    sub.set_filter(EVERYTHING)
    hub.publish([make_change(4), make_change(5), make_change(6), make_change(6)])
    assert received(sub) == [6]


# --- gaps: rollback holes and changes from elsewhere ----------------------------------------------------


async def test_rollback_hole_is_confirmed_by_a_log_read() -> None:
    """Seq 11 rolled back: the log has nothing between 10 and 12, so 12 is delivered after one read."""
    log = FakeLog()
    hub = make_hub(log, last_seq=10)
    sub = hub.subscribe()
    sub.set_filter(EVERYTHING)
    twelve = make_change(12)
    log.commit(twelve)
    hub.publish([twelve])
    assert received(sub) == []  # parked until the gap is explained
    await hub.catch_up()
    assert received(sub) == [12]
    assert log.calls[0][0] == 10


async def test_missing_range_is_filled_from_the_log_in_order_exactly_once() -> None:
    """Another process committed 11 and 12; our 13 arrives first and must wait for them."""
    log = FakeLog()
    hub = make_hub(log, last_seq=10)
    sub = hub.subscribe()
    sub.set_filter(EVERYTHING)
    log.commit(make_change(11), make_change(12), make_change(13))
    hub.publish([make_change(13)])
    await hub.catch_up()
    hub.publish([make_change(13)])  # a late duplicate from the store is ignored too
    assert received(sub) == [11, 12, 13]


async def test_large_gap_is_read_in_batches() -> None:
    log = FakeLog()
    hub = make_hub(log, read_batch=3)
    sub = hub.subscribe()
    sub.set_filter(EVERYTHING)
    log.commit(*(make_change(seq) for seq in range(1, 11)))
    hub.publish([make_change(10)])
    await hub.catch_up()
    assert received(sub) == list(range(1, 11))
    assert [after for after, _ in log.calls] == [0, 3, 6, 9]


async def test_change_published_during_a_read_is_not_taken_as_proof_of_a_hole() -> None:
    """14 is published while a read that started before 13 committed is in flight: that read cannot
    prove 13 a hole, so the hub reads again instead of skipping 13."""
    log = FakeLog()
    hub = make_hub(log, last_seq=10)
    sub = hub.subscribe()
    sub.set_filter(EVERYTHING)
    log.commit(make_change(12))
    hub.publish([make_change(12)])  # 11 is a rollback hole
    log.gate = asyncio.Event()
    reader = asyncio.create_task(hub.catch_up())
    await log.reads_started.wait()  # the read's snapshot holds only 12
    log.commit(make_change(13), make_change(14))  # 13 from another process, 14 ours
    hub.publish([make_change(14)])
    log.gate.set()
    await asyncio.wait_for(reader, 1)
    assert received(sub) == [12, 13, 14]


async def test_contiguous_publish_during_a_read_is_delivered_once() -> None:
    log = FakeLog()
    hub = make_hub(log)
    sub = hub.subscribe()
    sub.set_filter(EVERYTHING)
    log.commit(make_change(1), make_change(2))
    log.gate = asyncio.Event()
    reader = asyncio.create_task(hub.catch_up())
    await log.reads_started.wait()
    hub.publish([make_change(1), make_change(2)])  # fast path while the read is in flight
    assert received(sub) == [1, 2]
    log.gate.set()
    await asyncio.wait_for(reader, 1)
    assert received(sub) == [1, 2]


async def test_out_of_order_publish_still_waits_for_a_read() -> None:
    """Robustness: if 13 is published before 11 (it should not be), the gap 12 is still read first."""
    log = FakeLog()
    hub = make_hub(log, last_seq=10)
    sub = hub.subscribe()
    sub.set_filter(EVERYTHING)
    log.commit(make_change(11), make_change(12), make_change(13))
    hub.publish([make_change(13)])
    hub.publish([make_change(11)])
    assert received(sub) == [11]
    await hub.catch_up()
    assert received(sub) == [11, 12, 13]


kinds = st.sampled_from(["ours", "other", "rollback"])
actions = st.sampled_from(["publish", "read", "yield", "nothing"])


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(kinds, actions), min_size=1, max_size=40), batch=st.integers(1, 5))
def test_every_committed_change_arrives_once_in_seq_order(steps: list[tuple[str, str]], batch: int) -> None:
    """Any mix of our commits, other processes' commits and rollbacks, with publishes delayed and reads
    interleaved: the subscriber sees exactly the committed seqs, in order."""

    async def scenario() -> None:
        log = FakeLog()
        hub = make_hub(log, read_batch=batch)
        sub = hub.subscribe(queue_limit=10_000)
        sub.set_filter(EVERYTHING)
        unpublished: list[Any] = []
        reader: asyncio.Task[None] | None = None
        committed: list[int] = []
        for seq, (kind, action) in enumerate(steps, start=1):
            change = make_change(seq)
            if kind != "rollback":
                log.commit(change)
                committed.append(seq)
            if kind == "ours":
                unpublished.append(change)
            if action == "publish":
                hub.publish(unpublished)
                unpublished = []
            elif action == "read" and (reader is None or reader.done()):
                reader = asyncio.create_task(hub.catch_up())
            elif action == "yield":
                await asyncio.sleep(0)
        hub.publish(unpublished)
        if reader is not None:
            await reader
        await hub.catch_up()
        assert received(sub) == committed

    asyncio.run(scenario())


# --- the reader task: poll, wake, failures, stop --------------------------------------------------------


async def test_safety_poll_picks_up_changes_from_another_process() -> None:
    log = FakeLog()
    hub = make_hub(log, poll_interval=0.02)
    sub = hub.subscribe()
    sub.set_filter(EVERYTHING)
    await hub.start()
    try:
        await until(lambda: log.calls, "the hub's first read")  # so only the poll can find these
        log.commit(make_change(1), make_change(2))  # never published here
        await until(lambda: received(sub) == [1, 2], "the poll to deliver both", timeout=2)
    finally:
        await hub.stop()


async def test_wake_reads_the_log_now() -> None:
    """For PostgreSQL LISTEN/NOTIFY: ``wake()`` triggers a read without waiting for the poll."""
    log = FakeLog()
    hub = make_hub(log, poll_interval=None)
    sub = hub.subscribe()
    sub.set_filter(EVERYTHING)
    await hub.start()
    try:
        await until(lambda: log.calls, "the hub's first read")  # so only the wake can find this
        log.commit(make_change(1))
        hub.wake()
        await asyncio.wait_for(sub.wait(), 1)
        assert received(sub) == [1]
    finally:
        await hub.stop()


async def test_read_failures_are_retried_without_losing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "READ_RETRY_DELAY", 0.01)
    log = FakeLog()
    hub = make_hub(log, last_seq=10)
    sub = hub.subscribe()
    sub.set_filter(EVERYTHING)
    await hub.start()
    try:
        await until(lambda: log.calls, "the hub's first read")
        log.fail_next = 2
        log.commit(make_change(11), make_change(12))
        hub.publish([make_change(12)])
        await until(lambda: received(sub) == [11, 12], "both changes after two failed reads", timeout=2)
        assert log.fail_next == 0
    finally:
        await hub.stop()


async def test_stop_closes_every_subscription_as_shutdown() -> None:
    hub = make_hub(FakeLog())
    await hub.start()
    subs = [hub.subscribe(str(i)) for i in range(3)]
    await hub.stop()
    assert all(sub.cause is CloseCause.SHUTDOWN for sub in subs)
    assert hub.subscriber_count == 0


async def test_closed_subscription_leaves_the_hub() -> None:
    hub = make_hub(FakeLog())
    sub = hub.subscribe()
    sub.set_filter(EVERYTHING)
    sub.close()
    hub.publish([make_change(1)])
    assert hub.subscriber_count == 0
    assert received(sub) == []


# --- slow consumers -------------------------------------------------------------------------------------


async def test_stalled_subscriber_is_closed_while_a_healthy_one_gets_everything() -> None:
    """A subscriber that stops reading is closed as a slow consumer once its queue is full; writers and
    the other subscriber are never slowed (GARM drops events instead,
    docs/garm-protocol.md#garms-delivery)."""
    hub = make_hub(FakeLog(), queue_limit=16)
    healthy = hub.subscribe("healthy")
    stalled = hub.subscribe("stalled")
    healthy.set_filter(EVERYTHING)
    stalled.set_filter(EVERYTHING)
    got: list[int] = []

    async def drain() -> None:
        async for delivery in healthy:
            got.append(delivery.change.seq)

    consumer = asyncio.create_task(drain())
    total = 2000
    for start in range(1, total + 1, 8):
        hub.publish([make_change(seq) for seq in range(start, min(start + 8, total + 1))])
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert stalled.cause is CloseCause.SLOW_CONSUMER
    assert len(stalled) == 0  # its backlog is released at once
    assert hub.subscriber_count == 1
    healthy.close()
    await asyncio.wait_for(consumer, 1)
    assert got == list(range(1, total + 1))


async def test_publishing_creates_no_tasks() -> None:
    """10,000 changes to 50 subscribers, each drained by its one long-lived consumer: no new task per
    event or per subscriber (docs/design.md#fan-out)."""
    loop = asyncio.get_running_loop()
    created = 0
    original_factory = loop.get_task_factory()

    def counting_factory(
        loop: asyncio.AbstractEventLoop, coro: Generator[Any, None, Any] | Coroutine[Any, Any, Any], **kw: Any
    ) -> asyncio.Future[Any]:
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **kw)

    hub = make_hub(FakeLog(), queue_limit=20_000)
    counts = [0] * 50
    subs = [hub.subscribe(str(i)) for i in range(50)]

    async def drain(index: int, sub: Subscription) -> None:
        async for _ in sub:
            counts[index] += 1

    consumers = [asyncio.create_task(drain(i, sub)) for i, sub in enumerate(subs)]
    for sub in subs:
        sub.set_filter(EVERYTHING)
    await asyncio.sleep(0)
    loop.set_task_factory(counting_factory)
    try:
        for start in range(1, 10_001, 100):
            hub.publish([make_change(seq) for seq in range(start, start + 100)])
            await asyncio.sleep(0)
        await asyncio.sleep(0)
    finally:
        loop.set_task_factory(original_factory)
    assert created == 0
    assert counts == [10_000] * 50
    hub.close_all()
    await asyncio.gather(*consumers)


async def test_frames_are_decoded_once_per_change_not_per_subscriber() -> None:
    hub = make_hub(FakeLog())
    subs = [hub.subscribe(str(i)) for i in range(5)]
    for sub in subs:
        sub.set_filter(EVERYTHING)
    hub.publish([make_change(1)])
    texts = [sub.pop() for sub in subs]
    assert all(t is not None for t in texts)
    assert len({id(t.text) for t in texts if t is not None}) == 1
    assert seqs_of([t.text for t in texts if t is not None]) == [1] * 5


async def test_a_change_published_twice_is_delivered_once() -> None:
    hub = make_hub(FakeLog())
    sub = hub.subscribe()
    sub.set_filter(EVERYTHING)
    hub.publish([make_change(1)])
    hub.publish([make_change(1), make_change(2)])
    assert received(sub) == [1, 2]


def test_read_batch_must_be_at_least_one() -> None:
    make_hub(FakeLog(), read_batch=1)  # reads one change per round: allowed
    with pytest.raises(ValueError, match=r"^read_batch must be at least 1, got 0$"):
        make_hub(FakeLog(), read_batch=0)
