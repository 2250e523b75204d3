"""``max_runners`` holds on both paths that add runners, with the pool already at its limit
(docs/garm-protocol.md#minimum-idle-runners, docs/garm-protocol.md#adding-a-runner).

The rules forbid ``min_idle_runners > max_runners`` on create, but a pool reaches that state anyway when
its runners are busy: every row counts towards ``max_runners`` while only idle or pending ones count
towards ``min_idle_runners``. The loops are slowed to an hour, so each test runs the pass itself.
"""

from __future__ import annotations

import pytest

from pygarm.params.gojson import ZERO_UUID
from pygarm.runner.pool import PoolManagerRegistry, creation, jobqueue
from pygarm.runner.pool.manager import PoolManager
from pygarm.store.instances import UpdateInstanceParams
from tests.lifecycle.support import Garm, queue_job, setup_running_repo

pytestmark = [pytest.mark.timeout(90), pytest.mark.pool_manager(consolidate_interval="1h")]


async def _manager(registry: PoolManagerRegistry, repo_id: str) -> PoolManager:
    manager = registry.get(repo_id)
    assert manager is not None
    return manager


async def _count(manager: PoolManager, pool_id: str) -> int:
    return await manager.core.store.pool_instance_count(pool_id)


async def _fill(manager: PoolManager, pool_id: str, count: int) -> None:
    """The min-idle pass the loop would run (slowed to an hour here), until ``count`` rows exist."""
    model = await manager.core.store.get_pool(pool_id, manager.core.ref)
    await creation.ensure_min_idle_for_pool(manager.core, model)
    assert await _count(manager, pool_id) == count


async def _all_busy(manager: PoolManager, pool_id: str) -> None:
    for record in await manager.core.store.list_instance_records(pool_id=pool_id):
        await manager.core.store.update_instance(
            record.instance.name, UpdateInstanceParams(runner_status="active")
        )


@pytest.mark.parametrize(("max_runners", "min_idle"), [(1, 1), (3, 2)])
async def test_min_idle_fill_never_exceeds_max_runners_when_runners_are_busy(
    garm: Garm, registry: PoolManagerRegistry, max_runners: int, min_idle: int
) -> None:
    """Busy runners leave the pool short of idle ones; the fill tops it up only to ``max_runners``."""
    repo = await setup_running_repo(garm)
    pool = await garm.create_pool(repo["id"], max_runners=max_runners, min_idle_runners=min_idle)
    manager = await _manager(registry, repo["id"])
    await _fill(manager, pool["id"], min_idle)
    await _all_busy(manager, pool["id"])
    model = await manager.core.store.get_pool(pool["id"], manager.core.ref)
    await creation.ensure_min_idle_for_pool(manager.core, model)
    assert await _count(manager, pool["id"]) == max_runners
    await _all_busy(manager, pool["id"])
    await creation.ensure_min_idle_for_pool(manager.core, model)  # at the limit: nothing more
    assert await _count(manager, pool["id"]) == max_runners


async def test_queued_job_at_a_full_pool_creates_no_runner(garm: Garm, registry: PoolManagerRegistry) -> None:
    """A job whose only matching pool is full gets no runner; it is unlocked for a later pass."""
    repo = await setup_running_repo(garm)
    pool = await garm.create_pool(repo["id"], max_runners=1, min_idle_runners=1, tags=["self-hosted"])
    manager = await _manager(registry, repo["id"])
    await _fill(manager, pool["id"], 1)
    await _all_busy(manager, pool["id"])
    store = manager.core.store
    await queue_job(store, repo["id"], 6001, ["self-hosted"])
    await jobqueue.consume_queued_jobs(manager.core)
    assert await _count(manager, pool["id"]) == 1
    [job] = await store.list_all_jobs()
    assert (job.id, job.status, job.locked_by) == (6001, "queued", ZERO_UUID)
    model = await store.get_pool(pool["id"], manager.core.ref)
    with pytest.raises(Exception, match=rf"max workers \(1\) reached for pool {pool['id']}"):
        await creation.add_runner_to_pool(manager.core, model, [])
    assert await _count(manager, pool["id"]) == 1


async def test_queued_job_at_a_pool_with_room_gets_one_runner(
    garm: Garm, registry: PoolManagerRegistry
) -> None:
    """The control case: the same job, one slot free, gets exactly one runner."""
    repo = await setup_running_repo(garm)
    pool = await garm.create_pool(repo["id"], max_runners=2, min_idle_runners=1, tags=["self-hosted"])
    manager = await _manager(registry, repo["id"])
    await _fill(manager, pool["id"], 1)
    await _all_busy(manager, pool["id"])
    await queue_job(manager.core.store, repo["id"], 6002, ["self-hosted"])
    await jobqueue.consume_queued_jobs(manager.core)
    assert await _count(manager, pool["id"]) == 2
    [job] = await manager.core.store.list_all_jobs()
    assert job.locked_by == repo["id"]


async def test_every_failed_create_of_a_pool_is_retried_in_one_pass(
    garm: Garm, registry: PoolManagerRegistry
) -> None:
    """Two failed creates, one retry pass: each goes back to ``pending_create`` with its next attempt
    (each under the lock of its own name)."""
    repo = await setup_running_repo(garm)
    pool = await garm.create_pool(repo["id"], max_runners=2, min_idle_runners=2)
    manager = await _manager(registry, repo["id"])
    await _fill(manager, pool["id"], 2)
    store = manager.core.store
    for record in await store.list_instance_records(pool_id=pool["id"]):
        await store.update_instance(record.instance.name, UpdateInstanceParams(status="error"))
    await creation.retry_failed_instances(manager.core)
    records = await store.list_instance_records(pool_id=pool["id"])
    assert [(r.instance.status, r.create_attempt) for r in records] == [("pending_create", 1)] * 2
