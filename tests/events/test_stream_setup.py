"""What an accepted filter sets in motion (``events/stream.py``, ``events/snapshot.py``), as pure
in-process code: the items queued on the subscription, in order, with their exact positions, the snapshot
frames, and the bookmark timer (docs/events.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest

from pygarm.events.change import EntityType, Operation
from pygarm.events.extensions import (
    Control,
    InvalidStreamOptions,
    Replay,
    StreamOptions,
    parse_stream_options,
)
from pygarm.events.filters import Decoded, decode_filter
from pygarm.events.hub import Hub, Subscription
from pygarm.events.mailbox import CloseCause
from pygarm.events.session import SetFilter
from pygarm.events.snapshot import Snapshot, snapshot_types
from pygarm.events.stream import Bookmarks, StreamSetup
from tests.events.helpers import FakeLog, make_change

POOL, INST, REPO = EntityType.POOL, EntityType.INSTANCE, EntityType.REPOSITORY
C, U, D = Operation.CREATE, Operation.UPDATE, Operation.DELETE
POOLS = '{"filters":[{"entity-type":"pool","operations":["create","update"]}]}'
REPOS = '{"filters":[{"entity-type":"repository","operations":["delete"]}]}'


def set_filter(message: str) -> SetFilter:
    result = decode_filter(message)
    assert isinstance(result, Decoded), result
    return SetFilter(result.filter, result.message)


async def pruned_through() -> int:
    return 0


class Cursor:
    def __init__(self, seq: int, batches: list[list[tuple[EntityType, bytes]]]) -> None:
        self.seq = seq
        self._batches = batches

    async def batches(self) -> AsyncIterator[list[tuple[EntityType, bytes]]]:
        for batch in self._batches:
            yield batch


class Store:
    """``open_snapshot`` over fixed batches, recording the entity types asked for."""

    def __init__(self, seq: int, *batches: list[tuple[EntityType, bytes]]) -> None:
        self.cursor = Cursor(seq, list(batches))
        self.asked: list[list[EntityType]] = []

    @asynccontextmanager
    async def open(self, entity_types: Sequence[EntityType]) -> AsyncIterator[Cursor]:
        self.asked.append(list(entity_types))
        yield self.cursor


def hub_at(seq: int) -> Hub:
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None)
    hub.publish([make_change(n) for n in range(1, seq + 1)])
    assert hub.last_seq == seq
    return hub


def queued(sub: Subscription) -> list[Any]:
    return list(sub.items)


def setup_for(options: StreamOptions, hub: Hub, sub: Subscription, **kwargs: Any) -> StreamSetup:
    log = FakeLog()
    return StreamSetup(
        options, hub, sub, read_changes_after=log.read_changes_after, pruned_through=pruned_through, **kwargs
    )


# --- StreamSetup.on_filter ------------------------------------------------------------------------------


async def test_resume_with_ack_queues_the_replay_then_the_ack_at_the_hubs_position() -> None:
    hub = hub_at(7)
    sub = hub.subscribe()
    setup = setup_for(StreamOptions(with_seq=True, since=3, ack=True), hub, sub)
    action = set_filter(POOLS)
    setup.on_filter(action)
    replay, ack = queued(sub)
    assert isinstance(replay, Replay)
    assert (replay.since, replay.upto, replay.match) == (3, 7, action.filter)
    assert isinstance(ack, Control) and ack.text == '{"control":"filter-ack","seq":7}'
    assert sub.match == action.filter
    # The second filter is acknowledged at the new position, and replays nothing again.
    hub.publish([make_change(8, EntityType.USER)])
    second = set_filter(REPOS)
    setup.on_filter(second)
    assert [type(item) for item in queued(sub)] == [Replay, Control, Control]
    assert queued(sub)[-1].text == '{"control":"filter-ack","seq":8}'
    assert sub.match == second.filter


async def test_without_ack_or_resume_a_filter_queues_nothing() -> None:
    hub = hub_at(4)
    sub = hub.subscribe()
    setup = setup_for(StreamOptions(), hub, sub)
    setup.on_filter(set_filter(POOLS))
    assert queued(sub) == []
    assert sub.match == {(POOL, C), (POOL, U)}
    hub.publish([make_change(5, POOL, U)])
    assert [d.change.seq for d in queued(sub)] == [5]


async def test_snapshot_is_queued_once_at_the_hubs_position() -> None:
    hub = hub_at(5)
    sub = hub.subscribe()
    store = Store(5)
    setup = setup_for(StreamOptions(with_seq=True, snapshot=True), hub, sub, open_snapshot=store.open)
    first = set_filter(POOLS)
    setup.on_filter(first)
    setup.on_filter(set_filter(REPOS))
    [snapshot] = queued(sub)
    assert isinstance(snapshot, Snapshot)
    assert (snapshot.match, snapshot.position, snapshot.skips_live) == (first.filter, 5, True)


async def test_the_first_filter_starts_the_bookmarks_and_wakes_a_parked_writer() -> None:
    hub = hub_at(2)
    sub = hub.subscribe()
    bookmarks = Bookmarks(60.0, hub)
    setup = setup_for(StreamOptions(with_seq=True, bookmark=60.0), hub, sub, bookmarks=bookmarks)
    waiter = sub.park()
    assert not bookmarks.active
    setup.on_filter(set_filter(POOLS))
    assert bookmarks.active
    assert waiter.done()
    waiter = sub.park()
    setup.on_filter(set_filter(REPOS))
    assert not waiter.done()  # only the first filter starts the idle timer


# --- Bookmarks -------------------------------------------------------------------------------------------


async def test_an_idle_interval_gives_a_bookmark_at_the_hubs_position() -> None:
    hub = hub_at(9)
    sub = hub.subscribe()
    bookmarks = Bookmarks(0.01, hub)
    assert await bookmarks.idle(sub) == '{"control":"bookmark","seq":9}'
    bookmarks.reached(12)  # a snapshot read past the hub
    assert await bookmarks.idle(sub) == '{"control":"bookmark","seq":12}'
    bookmarks.reached(11)  # never backwards
    assert await bookmarks.idle(sub) == '{"control":"bookmark","seq":12}'
    hub.publish([make_change(n) for n in range(10, 14)])
    assert await bookmarks.idle(sub) == '{"control":"bookmark","seq":13}'


async def test_an_item_or_a_close_ends_the_idle_wait_without_a_bookmark() -> None:
    hub = hub_at(1)
    sub = hub.subscribe()
    sub.set_filter(frozenset({(POOL, U)}))
    hub.publish([make_change(2, POOL, U)])
    bookmarks = Bookmarks(3600.0, hub)
    assert await bookmarks.idle(sub) is None  # an item was already queued: no wait at all
    sub.pop()
    closing = Bookmarks(3600.0, hub)
    sub.close(CloseCause.SLOW_CONSUMER)
    assert await closing.idle(sub) is None


async def test_a_nudge_with_nothing_queued_gives_a_bookmark_before_the_interval() -> None:
    hub = hub_at(3)
    sub = hub.subscribe()
    bookmarks = Bookmarks(3600.0, hub)
    idle = bookmarks.idle(sub)
    waiting = idle.__await__()
    next(waiting)  # parked
    sub.nudge()
    with pytest.raises(StopIteration) as done:
        next(waiting)
    assert done.value.value == '{"control":"bookmark","seq":3}'


# --- Snapshot ----------------------------------------------------------------------------------------------


def test_snapshot_types_are_those_with_a_create_or_an_update() -> None:
    assert snapshot_types(frozenset({(POOL, C), (INST, U), (REPO, D)})) == [POOL, INST]
    assert snapshot_types(frozenset({(REPO, D)})) == []


async def frames_of(snapshot: Snapshot) -> list[str]:
    return [frame async for frame in snapshot.frames()]


async def test_snapshot_frames_then_its_end_at_the_snapshots_seq() -> None:
    pool = orjson.dumps({"id": "p1"})
    store = Store(12, [(POOL, pool)], [(POOL, b'{"id":"p2"}')])
    snapshot = Snapshot(set_filter(POOLS).filter, store.open, 10)
    assert await frames_of(snapshot) == [
        '{"entity-type":"pool","operation":"snapshot","payload":{"id":"p1"},"seq":12}',
        '{"entity-type":"pool","operation":"snapshot","payload":{"id":"p2"},"seq":12}',
        '{"control":"snapshot-end","seq":12}',
    ]
    assert snapshot.position == 12
    assert store.asked == [[POOL]]


async def test_a_snapshot_read_behind_the_hub_stands_at_the_hubs_position() -> None:
    store = Store(4, [(POOL, b'{"id":"p1"}')])
    snapshot = Snapshot(set_filter(POOLS).filter, store.open, 6)
    frames = await frames_of(snapshot)
    assert frames[-1] == '{"control":"snapshot-end","seq":6}'
    assert frames[0].endswith('"payload":{"id":"p1"},"seq":6}')
    assert snapshot.position == 6


async def test_a_field_filter_keeps_only_the_matching_entities() -> None:
    message = '{"filters":[{"entity-type":"instance","operations":["update"],"match":{"pool_id":"p1"}}]}'
    store = Store(3, [(INST, b'{"id":"i1","pool_id":"p1"}'), (INST, b'{"id":"i2","pool_id":"p2"}')])
    snapshot = Snapshot(set_filter(message).filter, store.open, 3)
    assert await frames_of(snapshot) == [
        '{"entity-type":"instance","operation":"snapshot","payload":{"id":"i1","pool_id":"p1"},"seq":3}',
        '{"control":"snapshot-end","seq":3}',
    ]


async def test_a_bookmark_on_an_empty_log_is_at_seq_zero() -> None:
    hub = hub_at(0)
    assert await Bookmarks(0.01, hub).idle(hub.subscribe()) == '{"control":"bookmark","seq":0}'


# --- parse_stream_options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "options"),
    [
        ({}, StreamOptions()),
        ({"seq": "true"}, StreamOptions(with_seq=True)),
        ({"seq": " TRUE "}, StreamOptions(with_seq=True)),
        ({"seq": "0", "ack": "off", "snapshot": "no"}, StreamOptions()),
        ({"ack": "1"}, StreamOptions(with_seq=True, ack=True)),
        ({"snapshot": "yes"}, StreamOptions(with_seq=True, snapshot=True)),
        ({"since": "0"}, StreamOptions(with_seq=True, since=0)),
        ({"since": "42", "ack": "t"}, StreamOptions(with_seq=True, since=42, ack=True)),
        ({"bookmark": "0.05"}, StreamOptions(with_seq=True, bookmark=0.05)),
        ({"bookmark": "86400"}, StreamOptions(with_seq=True, bookmark=86400.0)),
    ],
)
def test_stream_options_from_the_query(query: dict[str, str], options: StreamOptions) -> None:
    assert parse_stream_options(query) == options


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"seq": "maybe"}, "seq must be true or false"),
        ({"ack": "2"}, "ack must be true or false"),
        ({"snapshot": "y"}, "snapshot must be true or false"),
        ({"since": "-1"}, "since must be a non-negative integer"),
        ({"since": "1.5"}, "since must be a non-negative integer"),
        ({"since": ""}, "since must be a non-negative integer"),
        ({"bookmark": "0.04"}, "bookmark must be a number of seconds from 0.05 to 86400"),
        ({"bookmark": "86400.5"}, "bookmark must be a number of seconds from 0.05 to 86400"),
        ({"bookmark": "soon"}, "bookmark must be a number of seconds from 0.05 to 86400"),
        ({"snapshot": "true", "since": "3"}, "snapshot and since exclude each other"),
    ],
)
def test_malformed_stream_options_are_refused_with_their_reason(query: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidStreamOptions) as refused:
        parse_stream_options(query)
    assert str(refused.value) == message
