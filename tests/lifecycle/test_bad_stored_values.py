"""The pool-manager loops survive integers the API no longer accepts but a database may still hold
(issue 8 #4): ``minimum_job_age_backoff`` = 86,400,000,000,000 stored on SQLite overflowed ``timedelta``
and failed every job-queue pass, so queued jobs never got runners. SQLite only: PostgreSQL's ``INTEGER``
columns cannot hold such values at all."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import update

from pygarm.runner.pool import PoolManagerRegistry, jobqueue
from pygarm.runner.pool.scaling import bootstrap_timeout
from pygarm.runner.pool.stored import STORED_INT_MAX, stored_duration
from pygarm.store.cache import CONTROLLER_KEY
from pygarm.store.db import WriteTx
from pygarm.store.tables import controller
from tests.lifecycle.support import Garm, queue_job, setup_running_repo, store_of

pytestmark = [pytest.mark.timeout(90), pytest.mark.pool_manager(consolidate_interval="1h")]

BROKE_THE_QUEUE = 86_400_000_000_000


@pytest.fixture
def backend() -> str:
    return "sqlite"


async def test_job_queue_pass_survives_a_huge_stored_backoff_and_reports_it_once(
    garm: Garm, registry: PoolManagerRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    repo = await setup_running_repo(garm)
    await garm.create_pool(repo["id"], max_runners=2, min_idle_runners=0, tags=["self-hosted"])
    store = store_of(registry)

    def corrupt(tx: WriteTx) -> None:
        tx.conn.execute(update(controller).values(minimum_job_age_backoff=BROKE_THE_QUEUE))

    await store.db.write(corrupt)
    store.cache.drop(CONTROLLER_KEY)
    manager = registry.get(repo["id"])
    assert manager is not None
    manager.core.shared.controller = await store.get_controller_info()
    assert manager.core.controller.minimum_job_age_backoff == BROKE_THE_QUEUE
    await queue_job(store, repo["id"], 7001, ["self-hosted"])
    with caplog.at_level(logging.WARNING, logger="pygarm.runner.pool.stored"):
        for _ in range(3):
            await jobqueue.consume_queued_jobs(manager.core)  # used to raise OverflowError
    reports = [r for r in caplog.records if "minimum_job_age_backoff" in r.getMessage()]
    assert [r.getMessage() for r in reports] == [
        f"stored minimum_job_age_backoff {BROKE_THE_QUEUE} is out of range; using {STORED_INT_MAX}"
    ]
    # The clamped backoff (68 years) still means "not yet": the job waits, unlocked, as stored.
    [job] = await store.list_all_jobs()
    assert (job.id, job.status) == (7001, "queued")


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (0, timedelta(0)),
        (30, timedelta(seconds=30)),
        (-5, timedelta(0)),
        (2**63, timedelta(seconds=STORED_INT_MAX)),
    ],
)
def test_stored_durations_are_clamped_to_the_column_range(amount: int, expected: timedelta) -> None:
    assert stored_duration("test_field", amount, timedelta(seconds=1)) == expected


def test_a_huge_stored_bootstrap_timeout_does_not_overflow() -> None:
    """``timedelta(minutes=2**63)`` raises OverflowError; the reaper computes this for every instance."""
    assert bootstrap_timeout(2**63) == timedelta(minutes=STORED_INT_MAX)
    assert bootstrap_timeout(0) == timedelta(minutes=20)
