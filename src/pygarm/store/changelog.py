"""The change log append: a write transaction's emitted changes become ``change_events`` rows.

:class:`WriteTx` collects what a store function emits; :func:`append_changes` writes the changes of one
or more write functions that share a transaction (the writer's group commit, ``store/writer.py``).

* SQLite: one prepared ``INSERT`` per change; the transaction began with ``BEGIN IMMEDIATE``, so it
  already holds the database's only write lock and ``seq`` follows commit order.
* PostgreSQL: **one statement, one round trip** for everything the transaction appends: it takes the
  transaction-scoped advisory lock, queues the ``NOTIFY`` (delivered at commit to every process that
  ``LISTEN``s, ``store/notify.py``; never on rollback) and inserts every change, returning the ``seq``
  values. The lock is taken before the first ``nextval`` and held until commit, so the order of ``seq``
  values equals commit order across replicas (docs/design.md#sequence-order-equals-commit-order).
  The ``COMMIT`` is pipelined behind it: append and commit cost one round trip together, where they
  cost three before issue 11 (lock and NOTIFY, insert, commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, insert

from pygarm.events.change import Change, EntityType, Operation
from pygarm.params.base import GoModel
from pygarm.params.gojson import dumps_for_reuse
from pygarm.store.fastsql import Prepared, driver_rows_and_commit
from pygarm.store.tables import change_events

CHANGE_NOTIFY_CHANNEL = "pygarm_changes"
"""PostgreSQL channel on which commits with changes are announced to other processes."""
CHANGELOG_ADVISORY_LOCK = 0x6761726D
"""PostgreSQL advisory lock key ("garm") that orders change-log inserts across processes."""

_INSERT_CHANGE = Prepared(
    insert(change_events)
    .values({name: bindparam(name) for name in ("entity_type", "operation", "payload", "created_at")})
    .returning(change_events.c.seq)
)
"""SQLite: one row per change, compiled once (store/fastsql.py)."""

# The lock is taken in a MATERIALIZED CTE that the INSERT joins: no row reaches the INSERT (whose
# ``seq`` default calls nextval) before the CTE has produced its one row, i.e. before the lock is held.
# ORDER BY ord makes the seq values follow the order in which the changes were emitted.
_APPEND_POSTGRES = f"""\
WITH serialized AS MATERIALIZED (
    SELECT pg_advisory_xact_lock({CHANGELOG_ADVISORY_LOCK}), pg_notify('{CHANGE_NOTIFY_CHANNEL}', '')
)
INSERT INTO change_events (entity_type, operation, payload, created_at)
SELECT c.entity_type, c.operation, c.payload, c.created_at
FROM serialized, unnest(
    %(entity_types)s::text[], %(operations)s::text[], %(payloads)s::bytea[], %(created)s::timestamptz[]
) WITH ORDINALITY AS c(entity_type, operation, payload, created_at, ord)
ORDER BY c.ord
RETURNING seq"""


class WriteTx:
    """A write transaction in progress: the connection, and the changes it will append at commit.

    Store functions call :meth:`emit` after they have written the entity; the payload is encoded once,
    here, with the same encoder as the REST responses.
    """

    __slots__ = ("_pending", "conn", "now")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.now = datetime.now(UTC)
        self._pending: list[tuple[EntityType, Operation, bytes]] = []

    def emit(self, entity_type: EntityType, operation: Operation, payload: GoModel) -> None:
        # The REST response of the write usually encodes this same object next: it reuses these bytes.
        self._pending.append((entity_type, operation, dumps_for_reuse(payload)))


def append_changes(conn: Connection, txs: Sequence[WriteTx], *, postgresql: bool) -> list[list[Change]]:
    """Append the changes of ``txs`` (in order) as the last step of ``conn``'s transaction; returns each
    one's :class:`Change` records. Nothing is written when no change was emitted.

    On PostgreSQL the ``COMMIT`` is sent in the same round trip as the append (pipeline mode,
    ``fastsql.driver_rows_and_commit``): the transaction is committed when this returns."""
    pending = [(tx, entry) for tx in txs for entry in tx._pending]
    out: list[list[Change]] = [[] for _ in txs]
    if not pending:
        return out
    if postgresql:
        rows = driver_rows_and_commit(
            conn,
            _APPEND_POSTGRES,
            {
                "entity_types": [entity_type.value for _tx, (entity_type, _o, _p) in pending],
                "operations": [operation.value for _tx, (_e, operation, _p) in pending],
                "payloads": [payload for _tx, (_e, _o, payload) in pending],
                "created": [tx.now for tx, _entry in pending],
            },
        )
        # nextval runs in ORDER BY ord order under the lock: ascending seq is emission order.
        seqs = sorted(int(row[0]) for row in rows)
    else:
        seqs = [
            int(
                _INSERT_CHANGE.scalar(
                    conn,
                    {
                        "entity_type": entity_type.value,
                        "operation": operation.value,
                        "payload": payload,
                        "created_at": tx.now,
                    },
                )
            )
            for tx, (entity_type, operation, payload) in pending
        ]
    if len(seqs) != len(pending):
        raise RuntimeError(f"change log append returned {len(seqs)} seq values for {len(pending)} changes")
    index = {id(tx): position for position, tx in enumerate(txs)}
    for seq, (tx, (entity_type, operation, payload)) in zip(seqs, pending, strict=True):
        out[index[id(tx)]].append(Change(seq, entity_type, operation, payload, tx.now))
    return out
