"""The writer's group commit (store/writer.py): writes queued while the writer is busy share one
transaction, yet each keeps its own outcome, its own ``seq`` values in queue order, and its changes are
published before its caller resumes. Runs on both backends.

The writer is held busy by a first write that waits for the test, so the writes queued meanwhile are
certain to run as one batch.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update
from sqlalchemy.exc import OperationalError, ProgrammingError

from pygarm.config import Settings
from pygarm.errors import BadRequestError, NotFoundError
from pygarm.events.change import Change
from pygarm.params.entity_requests import UpdatePoolParams
from pygarm.store.db import WriteTx
from pygarm.store.tables import pools
from tests.api.entity_support import (
    ALL_KINDS,
    PROVIDERS,
    ChangeLog,
    create_credentials,
    create_entity,
    create_pool,
    store_of,
)
from tests.conftest import make_settings
from tests.waiting import until

TIMEOUT_S = 30.0


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(database_section, provider=PROVIDERS)


async def test_writes_queued_together_keep_their_own_outcomes_and_order(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    kind = ALL_KINDS[0]
    entity = await create_entity(admin_client, kind, await create_credentials(admin_client))
    pool_id = (await create_pool(admin_client, kind, entity["id"], max_runners=5))["id"]
    store = store_of(app)
    db = store.db
    log = ChangeLog(app)
    await log.mark()
    published: list[Change] = []
    app.state.hub.add_listener(published.append)

    release = threading.Event()
    started = threading.Event()

    def hold_the_writer(_tx: WriteTx) -> None:
        started.set()
        assert release.wait(TIMEOUT_S)

    def write_then_fail(tx: WriteTx) -> None:
        tx.conn.execute(update(pools).where(pools.c.id == pool_id).values(image="rolled-back"))
        raise NotFoundError()

    def database_error(tx: WriteTx) -> None:
        tx.conn.execute(update(pools).where(pools.c.id == pool_id).values(flavor="rolled-back"))
        tx.conn.execute(text("SELECT * FROM no_such_table"))  # PostgreSQL: this aborts the transaction

    holder = asyncio.create_task(db.write(hold_the_writer))
    assert await asyncio.to_thread(started.wait, TIMEOUT_S)

    seen_on_return: dict[str, int] = {}

    async def update_image(image: str) -> None:
        pool = await store.update_pool(pool_id, UpdatePoolParams(image=image))
        assert pool.image == image
        seen_on_return[image] = len(published)

    queued: list[asyncio.Task[Any]] = [
        asyncio.create_task(update_image("img-1")),
        asyncio.create_task(db.write(write_then_fail)),
        asyncio.create_task(update_image("img-2")),
        asyncio.create_task(store.update_pool(pool_id, UpdatePoolParams(min_idle_runners=9))),
        asyncio.create_task(db.write(database_error)),
        asyncio.create_task(update_image("img-3")),
    ]
    await until(lambda: db.stats.queued == 1 + len(queued), "every write handed to the busy writer")
    release.set()
    outcomes = await asyncio.wait_for(asyncio.gather(holder, *queued, return_exceptions=True), TIMEOUT_S)

    assert outcomes[0] is None
    assert [type(outcome) for outcome in outcomes[1:]] == [
        type(None),
        NotFoundError,
        type(None),
        BadRequestError,
        ProgrammingError if db.url.startswith("postgresql") else OperationalError,
        type(None),
    ]
    assert "no_such_table" in str(outcomes[5])
    changes = await log.new()
    assert [change.payload.count(b'"image":"img-') for change in changes] == [1, 1, 1]
    assert [b'"image":"img-%d"' % n in change.payload for n, change in enumerate(changes, 1)] == [True] * 3
    assert [change.seq for change in changes] == sorted(change.seq for change in changes)
    assert [change.seq for change in published] == [change.seq for change in changes]
    # Each caller resumed after its own change (and those before it) had been published.
    assert seen_on_return["img-1"] >= 1 and seen_on_return["img-2"] >= 2 and seen_on_return["img-3"] == 3

    row = await db.read(lambda conn: conn.execute(select(pools).where(pools.c.id == pool_id)).one())
    assert (row.image, row.flavor, row.min_idle_runners) == ("img-3", "default", 1)
