"""Consistent snapshots for the events stream's ``?snapshot=true`` (docs/events.md#snapshot-snapshot).

One read transaction reads the change log's position ``S`` and then the current state of every entity of
the requested types, in batches, each payload rendered exactly as that entity's create/update event
renders it (the same readers the store's writes call before ``tx.emit``). The transaction gives one
consistent view at ``S``: on SQLite a WAL read transaction sees one snapshot from its first statement;
on PostgreSQL the transaction runs at REPEATABLE READ, and since ``seq`` order is commit order
(store/db.py), every change with ``seq <= S`` is visible in it and none after.

Rows are paged by primary key inside that one transaction, so 10,000 instances are never one list in
memory; between batches the connection is held but no reader thread is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Connection, func, select

from pygarm.events.change import EntityType
from pygarm.params.gojson import dumps
from pygarm.params.models import GithubEndpoint
from pygarm.store.controller import read_controller
from pygarm.store.db import Database
from pygarm.store.entities import _Lookups, _row_to_entity
from pygarm.store.entity_kinds import KINDS, EntityKind
from pygarm.store.github_rows import read_endpoint, row_to_credentials, row_to_endpoint
from pygarm.store.instance_rows import read_instances
from pygarm.store.jobs import read_jobs
from pygarm.store.pools import read_pools
from pygarm.store.tables import (
    change_events,
    change_log_state,
    github_credentials,
    github_endpoints,
    instances,
    pools,
    users,
    workflow_jobs,
)
from pygarm.store.users import row_to_user

SNAPSHOT_BATCH = 500
"""Entities rendered per round trip to a reader thread."""

Batch = list[tuple[EntityType, bytes]]
Page = Callable[[Connection, Any, int], tuple[Batch, Any]]
"""``page(conn, after_key, limit)``: up to ``limit`` rendered entities after ``after_key`` and the key
to continue from (None when done)."""

ORDER: tuple[EntityType, ...] = (
    EntityType.CONTROLLER,
    EntityType.GITHUB_ENDPOINT,
    EntityType.GITHUB_CREDENTIALS,
    EntityType.USER,
    EntityType.REPOSITORY,
    EntityType.ORGANIZATION,
    EntityType.ENTERPRISE,
    EntityType.POOL,
    EntityType.INSTANCE,
    EntityType.JOB,
)
"""Referenced entities before those that reference them."""


def _position(conn: Connection) -> int:
    """The log position the transaction sees: its newest row, or what retention pruned if larger."""
    newest = conn.execute(select(func.coalesce(func.max(change_events.c.seq), 0))).scalar_one()
    pruned = conn.execute(select(change_log_state.c.pruned_through)).scalar_one_or_none()
    return max(int(newest), int(pruned or 0))


def _controller(conn: Connection, _after: Any, _limit: int) -> tuple[Batch, Any]:
    return [(EntityType.CONTROLLER, dumps(read_controller(conn)))], None


def _last(keys: list[Any], limit: int) -> Any:
    return keys[-1] if len(keys) >= limit else None


def _endpoints(conn: Connection, after: Any, limit: int) -> tuple[Batch, Any]:
    query = select(github_endpoints).order_by(github_endpoints.c.name).limit(limit)
    if after is not None:
        query = query.where(github_endpoints.c.name > after)
    rows = list(conn.execute(query))
    batch = [(EntityType.GITHUB_ENDPOINT, dumps(row_to_endpoint(row))) for row in rows]
    return batch, _last([row.name for row in rows], limit)


def _credentials(conn: Connection, after: Any, limit: int) -> tuple[Batch, Any]:
    query = select(github_credentials).order_by(github_credentials.c.id).limit(limit)
    if after is not None:
        query = query.where(github_credentials.c.id > after)
    rows = list(conn.execute(query))
    endpoints: dict[str, GithubEndpoint] = {}
    batch = []
    for row in rows:
        if row.endpoint_name not in endpoints:
            endpoints[row.endpoint_name] = read_endpoint(conn, row.endpoint_name)
        model = row_to_credentials(row, endpoints[row.endpoint_name])
        batch.append((EntityType.GITHUB_CREDENTIALS, dumps(model)))
    return batch, _last([row.id for row in rows], limit)


def _users(conn: Connection, after: Any, limit: int) -> tuple[Batch, Any]:
    query = select(users).order_by(users.c.id).limit(limit)
    if after is not None:
        query = query.where(users.c.id > after)
    rows = list(conn.execute(query))
    return [(EntityType.USER, dumps(row_to_user(row))) for row in rows], _last(
        [row.id for row in rows], limit
    )


def _entities(kind: EntityKind) -> Page:
    spec = KINDS[kind]
    table = spec.table

    def page(conn: Connection, after: Any, limit: int) -> tuple[Batch, Any]:
        query = select(table).order_by(table.c.id).limit(limit)
        if after is not None:
            query = query.where(table.c.id > after)
        rows = list(conn.execute(query))
        lookups = _Lookups(conn)
        batch = [
            (spec.event_type, dumps(_row_to_entity(spec, row, lookups, with_pools=True))) for row in rows
        ]
        return batch, _last([row.id for row in rows], limit)

    return page


def _by_ids(
    entity_type: EntityType, id_column: Any, render: Callable[[Connection, list[Any]], list[Any]]
) -> Page:
    def page(conn: Connection, after: Any, limit: int) -> tuple[Batch, Any]:
        query = select(id_column).order_by(id_column).limit(limit)
        if after is not None:
            query = query.where(id_column > after)
        ids = list(conn.execute(query).scalars())
        if not ids:
            return [], None
        return [(entity_type, dumps(model)) for model in render(conn, ids)], _last(ids, limit)

    return page


PAGES: dict[EntityType, Page] = {
    EntityType.CONTROLLER: _controller,
    EntityType.GITHUB_ENDPOINT: _endpoints,
    EntityType.GITHUB_CREDENTIALS: _credentials,
    EntityType.USER: _users,
    EntityType.REPOSITORY: _entities(EntityKind.REPOSITORY),
    EntityType.ORGANIZATION: _entities(EntityKind.ORGANIZATION),
    EntityType.ENTERPRISE: _entities(EntityKind.ENTERPRISE),
    # The single-pool rendering (instances, extra_specs) that pool events carry.
    EntityType.POOL: _by_ids(
        EntityType.POOL, pools.c.id, lambda conn, ids: read_pools(conn, pools.c.id.in_(ids), detailed=True)
    ),
    # The single-instance rendering (addresses, status messages) that instance events carry.
    EntityType.INSTANCE: _by_ids(
        EntityType.INSTANCE,
        instances.c.id,
        lambda conn, ids: read_instances(conn, instances.c.id.in_(ids), full=True),
    ),
    EntityType.JOB: _by_ids(
        EntityType.JOB, workflow_jobs.c.id, lambda conn, ids: read_jobs(conn, workflow_jobs.c.id.in_(ids))
    ),
}


class SnapshotCursor:
    """An open snapshot: :attr:`seq` and the rendered entities of the requested types, in batches."""

    def __init__(
        self, db: Database, conn: Connection, seq: int, types: Sequence[EntityType], batch: int
    ) -> None:
        self._db = db
        self._conn = conn
        self.seq = seq
        self._types = [t for t in ORDER if t in set(types)]
        self._batch = batch

    async def batches(self) -> AsyncIterator[Batch]:
        for entity_type in self._types:
            page = PAGES[entity_type]
            after: Any = None
            while True:
                batch, after = await self._db.on_reader(page, self._conn, after, self._batch)
                if batch:
                    yield batch
                if after is None:
                    break


def _begin(db: Database) -> tuple[Connection, int]:
    conn = db.read_connection(repeatable=True)
    try:
        return conn, _position(conn)
    except BaseException:
        conn.close()
        raise


class SnapshotReader:
    """``open_snapshot(types)`` for the events routes (``app.state.open_snapshot``)."""

    def __init__(self, db: Database, batch: int = SNAPSHOT_BATCH) -> None:
        self._db = db
        self._batch = batch

    @asynccontextmanager
    async def open(self, types: Sequence[EntityType]) -> AsyncIterator[SnapshotCursor]:
        conn, seq = await self._db.on_reader(_begin, self._db)
        try:
            yield SnapshotCursor(self._db, conn, seq, types, self._batch)
        finally:
            # Off the event loop, and even when the consumer was cancelled: the connection must go back.
            await asyncio.shield(self._db.on_reader(conn.close))
