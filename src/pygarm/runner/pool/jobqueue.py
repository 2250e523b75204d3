"""The job queue consumer: a runner for every queued job a pool can serve (docs/garm-protocol.md#job-queue).

Each pass reads the entity's queued jobs (in creation order) and, for each one :func:`queued_job_decision`
lets through, locks the job for this entity (``job/update``), asks the pool balancer for candidate pools
and adds a runner labelled ``in_response_to_job:<id>`` to the first pool that accepts it
(``instance/create``). If no pool accepts, the lock is released again (``job/update``). The pass ends by
purging completed jobs; in pygarm each purged job is a ``job/delete`` (GARM purges silently).

Nothing guarantees the new runner picks up *this* job; the label lets the ``in_progress`` webhook release
the lock of the job that asked for a runner another job took (docs/garm-protocol.md#handling-a-job step 4).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from pygarm.errors import GarmError
from pygarm.params.models import Job, Pool
from pygarm.runner.pool.core import ManagerCore, utcnow
from pygarm.runner.pool.creation import add_runner_to_pool
from pygarm.runner.pool.scaling import (
    JOB_QUEUED,
    PoolBalancer,
    balancer_key,
    job_label,
    queued_job_decision,
)
from pygarm.runner.pool.stored import stored_duration

log = logging.getLogger(__name__)

SECOND = timedelta(seconds=1)


async def consume_queued_jobs(core: ManagerCore) -> None:
    """One pass of the ``job_queue_consumer`` loop."""
    store = core.store
    entity_id = core.entity_id
    jobs = await store.list_entity_jobs_by_status(*core.ref, JOB_QUEUED)
    backoff = stored_duration("minimum_job_age_backoff", core.controller.minimum_job_age_backoff, SECOND)
    balancers: dict[tuple[str, ...], PoolBalancer[Pool]] = {}
    now = utcnow()
    for job in jobs:
        decision = queued_job_decision(
            locked_by=job.locked_by,
            entity_id=entity_id,
            updated_at=job.updated_at,
            now=now,
            backoff=backoff,
            lock_timeout=core.timings.job_lock_timeout,
        )
        if decision.unlock:
            log.info("job %d still queued after its runner was requested; unlocking it", job.id)
            try:
                await store.unlock_job(job.id, entity_id)
            except GarmError as exc:
                log.error("failed to unlock job %d: %s", job.id, exc)
        if not decision.schedule:
            continue
        key = balancer_key(job.labels or [])
        balancer = balancers.get(key)
        if balancer is None:
            pools = await store.find_pools_matching_all_tags(*core.ref, job.labels or [])
            balancer = balancers[key] = PoolBalancer(pools, core.entity.pool_balancing_type)
        if len(balancer) == 0:
            log.debug("no pool of %s matches the labels of job %d", core.display_name, job.id)
            continue
        await _serve_job(core, job, balancer)
    await store.delete_completed_jobs()


async def _serve_job(core: ManagerCore, job: Job, balancer: PoolBalancer[Pool]) -> None:
    try:
        await core.store.lock_job(job.id, core.entity_id)
    except GarmError as exc:
        log.info("could not lock job %d: %s", job.id, exc)
        return
    balancer.begin_job()
    for _ in range(len(balancer)):
        pool = balancer.next()
        try:
            instance = await add_runner_to_pool(core, pool, [job_label(job.id)])
        except Exception as exc:
            log.info("pool %s cannot take job %d: %s", pool.id, job.id, exc)
            continue
        log.info("runner %s created in pool %s for job %d", instance.name, pool.id, job.id)
        return
    log.info("no pool could take job %d; unlocking it", job.id)
    await core.store.unlock_job(job.id, core.entity_id)
