"""``?snapshot=true``: the current state of what the filter selects, then the live stream
(docs/events.md#snapshot-snapshot).

When the first filter arrives, a :class:`Snapshot` is queued ahead of any live delivery. When the writer
reaches it, it opens one consistent read of the database at log position ``S`` (the store implements
:data:`OpenSnapshot`), sends one frame per selected entity::

    {"entity-type":"pool","operation":"snapshot","payload":{…as its events carry it…},"seq":S}

then ``{"control":"snapshot-end","seq":S}``. Live deliveries queued meanwhile with ``seq <= S`` are already
in the snapshot and are skipped by the writer (:attr:`Backlog.skips_live`); those after ``S`` follow with no
gap. Entity types for which the filter lists only ``delete`` get no snapshot frames.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from pygarm.events.change import EntityType, Operation
from pygarm.events.extensions import SNAPSHOT_END, Backlog, control_text
from pygarm.events.filters import CompiledFilter
from pygarm.events.matching import StreamFilter

SNAPSHOT_OPERATION = "snapshot"


class SnapshotCursor(Protocol):
    """An open consistent read: its log position and the selected entities' payloads, in batches."""

    seq: int

    def batches(self) -> AsyncIterator[list[tuple[EntityType, bytes]]]: ...


OpenSnapshot = Callable[[Sequence[EntityType]], AbstractAsyncContextManager[SnapshotCursor]]
"""``open_snapshot(entity_types)``: the store's consistent read (``pygarm.store.snapshot``)."""


def snapshot_types(match: CompiledFilter) -> list[EntityType]:
    """The entity types with a ``create`` or ``update`` in the filter: a snapshot entry stands for both."""
    return [
        entity_type
        for entity_type in EntityType
        if (entity_type, Operation.CREATE) in match or (entity_type, Operation.UPDATE) in match
    ]


class Snapshot(Backlog):
    """A queue item: "send the snapshot of what ``match`` selects, then ``snapshot-end``"."""

    skips_live = True

    def __init__(self, match: CompiledFilter, open_snapshot: OpenSnapshot, start: int) -> None:
        self.match = match
        self._open = open_snapshot
        self.position = start
        """The hub's position when the filter arrived; the snapshot's own ``S`` once it was read."""

    async def frames(self) -> AsyncIterator[str]:
        async with self._open(snapshot_types(self.match)) as cursor:
            seq = max(cursor.seq, self.position)
            self.position = seq
            tail = f',"seq":{seq}}}'
            conditional = self.match if isinstance(self.match, StreamFilter) else None
            async for batch in cursor.batches():
                for entity_type, payload in batch:
                    if conditional is not None and not conditional.snapshot_matches(entity_type, payload):
                        continue
                    yield (
                        f'{{"entity-type":"{entity_type.value}","operation":"{SNAPSHOT_OPERATION}",'
                        f'"payload":{payload.decode()}{tail}'
                    )
        yield control_text(SNAPSHOT_END, seq)
