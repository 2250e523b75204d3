"""The snapshot queue item (``pygarm.events.snapshot``) with a stand-in for the store: which entity types
it asks for, the exact frames, field filters, and the position it reports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import orjson

from pygarm.events.change import EntityType, Operation
from pygarm.events.filters import Decoded, decode_filter
from pygarm.events.snapshot import Snapshot, snapshot_types


class FakeCursor:
    def __init__(self, seq: int, rows: list[tuple[EntityType, bytes]]) -> None:
        self.seq = seq
        self._rows = rows

    async def batches(self) -> AsyncIterator[list[tuple[EntityType, bytes]]]:
        for start in range(0, len(self._rows), 2):
            yield self._rows[start : start + 2]


def opener(seq: int, rows: list[tuple[EntityType, bytes]], asked: list[Sequence[EntityType]]):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def open_snapshot(types: Sequence[EntityType]) -> AsyncIterator[FakeCursor]:
        asked.append(list(types))
        yield FakeCursor(seq, [row for row in rows if row[0] in types])

    return open_snapshot


def compiled(message: str) -> frozenset[tuple[EntityType, Operation]]:
    result = decode_filter(message)
    assert isinstance(result, Decoded)
    return result.filter


def test_delete_only_types_get_no_snapshot() -> None:
    selected = compiled(
        '{"filters":[{"entity-type":"pool","operations":["delete"]},'
        '{"entity-type":"instance","operations":["update"]},{"entity-type":"job"}]}'
    )
    assert snapshot_types(selected) == [EntityType.INSTANCE, EntityType.JOB]


async def test_frames_are_exact_and_end_with_snapshot_end() -> None:
    rows = [
        (EntityType.INSTANCE, orjson.dumps({"name": f"i{n}", "pool_id": "a" if n % 2 else "b"}))
        for n in range(5)
    ]
    asked: list[Sequence[EntityType]] = []
    item = Snapshot(
        compiled('{"filters":[{"entity-type":"instance","match":{"pool_id":"a"}}]}'),
        opener(42, rows, asked),
        40,
    )
    frames = [frame async for frame in item.frames()]
    assert asked == [[EntityType.INSTANCE]]
    assert frames == [
        '{"entity-type":"instance","operation":"snapshot","payload":{"name":"i1","pool_id":"a"},"seq":42}',
        '{"entity-type":"instance","operation":"snapshot","payload":{"name":"i3","pool_id":"a"},"seq":42}',
        '{"control":"snapshot-end","seq":42}',
    ]
    assert item.position == 42 and item.skips_live


async def test_a_filter_of_deletes_only_still_reports_its_position() -> None:
    asked: list[Sequence[EntityType]] = []
    item = Snapshot(
        compiled('{"filters":[{"entity-type":"pool","operations":["delete"]}]}'), opener(7, [], asked), 9
    )
    assert [frame async for frame in item.frames()] == ['{"control":"snapshot-end","seq":9}']
    assert asked == [[]] and item.position == 9, "never behind the hub's position at the filter"
