"""PostgreSQL: the writer's connection (issue 11 item 4). How many round trips one pool update costs it,
and that its shortcuts keep every write one transaction.

libpq's trace of the writer's connection shows every message, with the statements: a round trip is the
client sending and then waiting for the answers, so a regression names the statement that came back.
Before issue 11 a ``PUT /pools/{id}`` took 9 (pre-ping, BEGIN, 4 store statements, advisory lock +
NOTIFY, the change insert, COMMIT).
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from psycopg import pq
from sqlalchemy import Connection, select, text, update
from sqlalchemy.exc import ProgrammingError

from pygarm.api.app import create_app
from pygarm.config import Settings
from pygarm.store import writer
from pygarm.store.db import WriteTx
from pygarm.store.tables import pools
from tests.api.entity_support import (
    ALL_KINDS,
    PROVIDERS,
    create_credentials,
    create_entity,
    create_pool,
    store_of,
)
from tests.conftest import make_settings

REPO_KIND = ALL_KINDS[0]
MAX_ROUND_TRIPS = 5
"""The pool's limits (with the BEGIN pipelined before it), the UPDATE, the pool and its tags as the event
renders them, and the change-log append (lock, NOTIFY and insert in one statement) with the COMMIT
pipelined behind it."""


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(database_section, provider=PROVIDERS)


async def test_a_pool_update_costs_the_writer_few_round_trips(
    app: FastAPI, admin_client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "IDLE_RECHECK_S", 3600.0)  # no pre-ping between the two updates below
    entity = await create_entity(admin_client, REPO_KIND, await create_credentials(admin_client))
    pool = await create_pool(admin_client, REPO_KIND, entity["id"])
    path = f"/api/v1/pools/{pool['id']}"
    assert (await admin_client.put(path, json={"image": "warm-up"})).status_code == 200
    connection = store_of(app).db.writer_connection
    assert connection is not None
    pgconn = connection.connection.dbapi_connection.pgconn  # type: ignore[union-attr]
    trace = tmp_path / "libpq.trace"
    with trace.open("w") as sink:
        pgconn.trace(sink.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            response = await admin_client.put(path, json={"image": "counted"})
        finally:
            pgconn.untrace()
    assert response.status_code == 200
    lines = trace.read_text().splitlines()
    # A round trip is a run of messages sent followed by the answers: pipelined statements share one.
    directions = [line[0] for line in lines if line[:2] in ("F\t", "B\t")]
    round_trips = sum(1 for sent, answered in pairwise(directions) if (sent, answered) == ("F", "B"))
    sent = "\n".join(line[:160] for line in lines if line.startswith("F\t"))
    assert round_trips <= MAX_ROUND_TRIPS, sent


async def test_a_write_is_one_transaction_even_though_begin_travels_with_its_first_statement(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    """The writer's connection is in psycopg's autocommit mode while it writes (store/deferred_begin.py):
    a write that fails after its first statement must still leave nothing behind, and a write whose
    first statement fails must not disturb the next one."""
    entity = await create_entity(admin_client, REPO_KIND, await create_credentials(admin_client))
    pool = await create_pool(admin_client, REPO_KIND, entity["id"])
    pool_id = pool["id"]
    db = store_of(app).db

    def update_then_fail(tx: WriteTx) -> None:
        tx.conn.execute(update(pools).where(pools.c.id == pool_id).values(image="never-committed"))
        raise RuntimeError("after the first statement")

    def fail_first(tx: WriteTx) -> None:
        tx.conn.execute(text("SELECT * FROM no_such_table"))

    def stream_then_fail(tx: WriteTx) -> None:  # a server-side cursor as the first statement
        query = select(pools.c.image).where(pools.c.id == pool_id).execution_options(stream_results=True)
        assert len(tx.conn.execute(query).all()) == 1
        update_then_fail(tx)

    with pytest.raises(RuntimeError):
        await db.write(update_then_fail)
    with pytest.raises(RuntimeError):
        await db.write(stream_then_fail)
    with pytest.raises(ProgrammingError):
        await db.write(fail_first)

    def image(conn: Connection) -> list[str]:
        return [row.image for row in conn.execute(select(pools.c.image).where(pools.c.id == pool_id))]

    assert await db.read(image) == [pool["image"]]
    response = await admin_client.put(f"/api/v1/pools/{pool_id}", json={"image": "committed"})
    assert response.status_code == 200
    assert await db.read(image) == ["committed"]

    def in_transaction(tx: WriteTx) -> tuple[str, str]:
        row = tx.conn.execute(
            text("SELECT txid_current_if_assigned() IS NULL, current_setting('synchronous_commit')")
        ).one()
        return str(row[0]), str(row[1])

    assert await db.write(in_transaction) == ("True", "on")
    with db.engine.connect() as other:  # another user of the write engine: ordinary transactions
        assert other.connection.dbapi_connection.autocommit is False  # type: ignore[union-attr]


async def test_synchronous_commit_false_applies_to_the_writer(database_section: dict[str, Any]) -> None:
    database_section["postgresql"]["synchronous_commit"] = False
    application = create_app(make_settings(database_section, provider=PROVIDERS))
    async with application.router.lifespan_context(application):
        db = store_of(application).db

        def setting(tx: WriteTx) -> str:
            return str(tx.conn.execute(text("SELECT current_setting('synchronous_commit')")).scalar_one())

        assert await db.write(setting) == "off"
