"""Test doubles for the events layer: changes, and a change log with controllable commit visibility."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson

from pygarm.events.change import Change, EntityType, Operation

CREATED_AT = datetime(2024, 7, 1, 10, 11, 12, tzinfo=UTC)


def make_change(
    seq: int, entity_type: EntityType = EntityType.POOL, operation: Operation = Operation.UPDATE
) -> Change:
    payload = orjson.dumps({"id": f"id-{seq}", "seq": seq})
    return Change(seq, entity_type, operation, payload, CREATED_AT)


def seqs_of(frames: list[bytes] | list[str]) -> list[int]:
    return [int(orjson.loads(frame)["payload"]["seq"]) for frame in frames]


class FakeLog:
    """The durable change log as the store exposes it: ``read_changes_after(after_seq, limit)``.

    ``commit`` makes a change visible to later reads. ``gate``, when set, holds every read until the test
    releases it, so a test can publish while a read is in flight. ``calls`` records the arguments.
    """

    def __init__(self) -> None:
        self.committed: dict[int, Change] = {}
        self.calls: list[tuple[int, int]] = []
        self.gate: asyncio.Event | None = None
        self.reads_started = asyncio.Event()
        self.fail_next = 0
        self.yields = 1

    def commit(self, *changes: Change) -> None:
        for change in changes:
            self.committed[change.seq] = change

    async def read_changes_after(self, after_seq: int, limit: int) -> list[Change]:
        self.calls.append((after_seq, limit))
        # The snapshot is taken when the read starts, like a database read transaction.
        snapshot = [self.committed[seq] for seq in sorted(self.committed) if seq > after_seq][:limit]
        self.reads_started.set()
        for _ in range(self.yields):  # a real read awaits I/O: let publishes happen meanwhile
            await asyncio.sleep(0)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("database is unavailable")
        return snapshot
