"""PostgreSQL: ``seq`` follows commit order across writers (docs/events.md). A second writer, here a plain
test connection standing for another replica, takes its ``seq`` and holds its transaction open; the app's
write must wait for it, so that a reader never sees ``seq`` N+1 committed while N is still to come."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI

from pygarm.store.db import CHANGE_NOTIFY_CHANNEL, CHANGELOG_ADVISORY_LOCK

DEADLINE_S = 10.0


@pytest.fixture
def backend() -> str:
    return "postgresql"


def _waiting_on_advisory_lock(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s",
            (CHANGELOG_ADVISORY_LOCK,),
        ).fetchone()
    return bool(row and row[0])


async def test_a_write_waits_for_an_open_transaction_that_took_an_earlier_seq(
    app: FastAPI, settings: Any
) -> None:
    dsn = settings.database.postgresql.dsn
    db = app.state.ctx.store.db
    other = psycopg.connect(dsn)
    try:
        other.execute(
            f"SELECT pg_advisory_xact_lock({CHANGELOG_ADVISORY_LOCK}); NOTIFY {CHANGE_NOTIFY_CHANNEL}"
        )
        row = other.execute(
            "INSERT INTO change_events (entity_type, operation, payload, created_at)"
            " VALUES ('controller', 'update', '{}', now()) RETURNING seq"
        ).fetchone()
        assert row is not None
        early_seq = int(row[0])
        store = app.state.ctx.store
        write = asyncio.create_task(store.update_controller(minimum_job_age_backoff=7))
        deadline = time.monotonic() + DEADLINE_S
        while not await asyncio.to_thread(_waiting_on_advisory_lock, dsn):
            assert not write.done(), "the write committed while an earlier seq was still open"
            assert time.monotonic() < deadline, "the write neither waited nor finished"
            await asyncio.sleep(0.01)
        other.commit()
        await asyncio.wait_for(write, DEADLINE_S)
    finally:
        other.close()
    changes = await db.read_changes_after(early_seq - 1, 10)
    assert [change.seq for change in changes][:1] == [early_seq]
    assert len(changes) == 2 and changes[1].seq > early_seq
    assert (changes[1].entity_type, changes[1].operation) == ("controller", "update")
    assert b'"minimum_job_age_backoff":7' in changes[1].payload
