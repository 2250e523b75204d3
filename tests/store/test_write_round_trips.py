"""PostgreSQL: how many round trips one pool update costs the writer (issue 11 item 4).

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

from pygarm.config import Settings
from pygarm.store import writer
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
MAX_ROUND_TRIPS = 6
"""BEGIN, the pool's limits, the UPDATE, the pool and its tags as the event renders them, and the
change-log append (lock, NOTIFY and insert in one statement) with the COMMIT pipelined behind it."""


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
