"""``store/db.py`` on its own, on both backends: the change rows a write appends and hands to the commit
listener (in commit order, never for a rolled-back write), the log reads the hub and a resume rely on, and
retention's pruning mark (docs/events.md, docs/design.md#sequence-order-equals-commit-order)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from pygarm.config import Settings
from pygarm.events.change import Change, EntityType, Operation
from pygarm.params.models import Tag
from pygarm.store.db import Database, WriteTx
from pygarm.store.tables import change_events
from tests.waiting import until


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database.url)
    yield database
    database.close()


def emit(*operations: Operation, fail: bool = False) -> Callable[[WriteTx], str]:
    def write(tx: WriteTx) -> str:
        for n, operation in enumerate(operations):
            tx.emit(EntityType.POOL, operation, Tag(id=f"t{n}", name=f"n{n}"))
        if fail:
            raise ValueError("rolled back")
        return "done"

    return write


class Heard:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()

    def __call__(self, changes: Sequence[Change]) -> None:
        self.batches.append([c.seq for c in changes])
        self.threads.add(threading.current_thread().name)


def keys(changes: Sequence[Change]) -> list[tuple[int, str, str, bytes]]:
    return [(c.seq, c.entity_type.value, c.operation.value, c.payload) for c in changes]


async def test_a_write_appends_its_changes_and_hands_them_over_after_the_commit(db: Database) -> None:
    heard = Heard()
    db.set_commit_listener(heard)
    start = await db.last_seq()
    assert await db.write(emit(Operation.CREATE, Operation.UPDATE)) == "done"
    assert await db.write(lambda tx: 7) == 7  # no change: nothing to hand over
    await db.write(emit(Operation.DELETE))
    assert heard.batches == [[start + 1, start + 2], [start + 3]]
    assert heard.threads == {threading.current_thread().name}  # on the event loop
    assert await db.last_seq() == start + 3
    logged = await db.read_changes_after(start, 10)
    assert keys(logged) == [
        (start + 1, "pool", "create", b'{"id":"t0","name":"n0"}'),
        (start + 2, "pool", "update", b'{"id":"t1","name":"n1"}'),
        (start + 3, "pool", "delete", b'{"id":"t0","name":"n0"}'),
    ]
    assert all(c.created_at.tzinfo is not None for c in logged)
    assert keys(await db.read_changes_after(start + 1, 1)) == keys(logged[1:2])
    assert await db.read_changes_after(start + 3, 10) == []
    assert db.stats.appended == {("pool", "create"): 1, ("pool", "update"): 1, ("pool", "delete"): 1}
    assert db.stats.queued == 0


async def test_a_failed_write_appends_and_hands_over_nothing(db: Database) -> None:
    heard = Heard()
    db.set_commit_listener(heard)
    start = await db.last_seq()
    with pytest.raises(ValueError, match="rolled back"):
        await db.write(emit(Operation.CREATE, fail=True))
    assert heard.batches == []
    assert await db.last_seq() == start
    assert db.stats.queued == 0


async def test_write_sync_from_another_thread_hands_its_changes_to_the_loop(db: Database) -> None:
    heard = Heard()
    db.set_commit_listener(heard)
    start = await db.last_seq()
    result = await asyncio.to_thread(db.write_sync, emit(Operation.CREATE))
    assert result == "done"
    await until(lambda: heard.batches, "the listener to hear the write")
    assert heard.batches == [[start + 1]]
    assert heard.threads == {threading.current_thread().name}
    assert await asyncio.to_thread(db.write_sync, lambda tx: 3) == 3
    db.set_commit_listener(None)
    await asyncio.to_thread(db.write_sync, emit(Operation.UPDATE))
    assert await db.last_seq() == start + 2
    assert heard.batches == [[start + 1]]


async def test_pruning_deletes_older_rows_and_remembers_the_highest(db: Database) -> None:
    assert await db.pruned_through() == 0
    start = await db.last_seq()
    for _ in range(3):
        await db.write(emit(Operation.UPDATE))
    assert await db.oldest_seq() == start + 1
    now = datetime.now(UTC)
    old = now - timedelta(days=2)

    def age(tx: WriteTx) -> None:
        tx.conn.execute(update(change_events).where(change_events.c.seq <= start + 2).values(created_at=old))

    await db.write(age)
    assert await db.prune_changes(now - timedelta(days=3)) == 0  # nothing that old
    assert await db.pruned_through() == 0
    assert await db.prune_changes(now - timedelta(days=1)) == 2
    assert await db.pruned_through() == start + 2
    assert await db.oldest_seq() == start + 3
    assert [c.seq for c in await db.read_changes_after(0, 10)] == [start + 3]
    await db.write(lambda tx: tx.conn.execute(update(change_events).values(created_at=old)))
    assert await db.prune_changes(now - timedelta(days=1)) == 1
    assert await db.pruned_through() == start + 3
    assert await db.oldest_seq() == 0
