"""Deliveries of one ``workflow_job`` landing on two replicas at once (two processes' stores on one
PostgreSQL): each job is created once, never regresses, and no delivery is lost to a primary-key error."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from pygarm.params.models import Job
from pygarm.store.crypto import Sealer
from pygarm.store.db import Database
from pygarm.store.webhook_queries import WebhookQueries
from tests.conftest import TEST_PASSPHRASE

JOBS = 12


@pytest.fixture
def backend() -> str:
    return "postgresql"


async def test_same_job_on_two_replicas_is_created_once_and_ends_at_the_furthest_status(
    database_section: dict[str, Any],
) -> None:
    dsn = str(database_section["postgresql"]["dsn"])
    url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    replicas = [Database(url), Database(url)]
    try:
        queries = [WebhookQueries(db, Sealer(TEST_PASSPHRASE)) for db in replicas]

        def job(job_id: int, status: str) -> Job:
            return Job(id=job_id, run_id=7, action=status, status=status, name="build", labels=["linux"])

        ids = [5_000_000_000 + i for i in range(JOBS)]  # GitHub job IDs exceed 32 bits
        results = await asyncio.gather(
            *(
                q.record_webhook_job(job(job_id, status), create_allowed=True)
                for job_id in ids
                for q, status in zip(queries, ("queued", "in_progress"), strict=True)
            ),
            return_exceptions=True,
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
        # a replayed delivery on either replica changes nothing
        replayed = await asyncio.gather(
            *(q.record_webhook_job(job(ids[0], "in_progress"), create_allowed=True) for q in queries)
        )
        assert replayed == [None, None]
    finally:
        for db in replicas:
            await asyncio.to_thread(db.close)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT id, status FROM workflow_jobs ORDER BY id").fetchall()
        creates = conn.execute(
            "SELECT count(*) FROM change_events WHERE entity_type = 'job' AND operation = 'create'"
        ).fetchone()
    assert rows == [(job_id, "in_progress") for job_id in ids]
    assert creates == (JOBS,)
