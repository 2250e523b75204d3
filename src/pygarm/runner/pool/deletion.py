"""Runner removal: ``DeleteRunner``, the delete-pending loop and idle scale-down
(docs/garm-protocol.md#pool-managers).

Removal is two-phase, as in GARM. Something decides a runner must go and marks it ``pending_delete``
(or ``pending_force_delete``): :func:`delete_runner` (REST, scale-down, the reaper) after unregistering
it from GitHub, or a ``completed`` webhook. The always-on :func:`delete_pending_instances` loop then marks
it ``deleting``, asks the provider to destroy the machine and removes the row (``instance/delete``).
"""

from __future__ import annotations

import logging

from pygarm.errors import BadRequestError, ConflictError, GarmError
from pygarm.params.models import Instance, Pool
from pygarm.runner.github import GithubError, GithubNotFoundError, GithubUnauthorizedError
from pygarm.runner.pool.core import ManagerCore, utcnow
from pygarm.runner.pool.creation import gather_or_raise
from pygarm.runner.pool.scaling import (
    DELETE_PENDING_STATUSES,
    JOB_QUEUED,
    STATUS_DELETING,
    STATUS_PENDING_DELETE,
    STATUS_PENDING_FORCE_DELETE,
    is_reapable_idle,
    is_stale_queued_job,
    scale_down_count,
)
from pygarm.store.instances import InstanceRecord, UpdateInstanceParams

log = logging.getLogger(__name__)

HTTP_UNPROCESSABLE_ENTITY = 422
"""GitHub's answer when removing a runner that is running a job: reported to the caller as 400."""


def check_running(core: ManagerCore, bypass_gh_unauthorized: bool) -> None:
    """409 ``pool manager is not running for <entity>``, unless the caller bypasses it."""
    if not core.running and not bypass_gh_unauthorized:
        raise ConflictError(f"pool manager is not running for {core.display_name}")


async def delete_runner(
    core: ManagerCore, instance: Instance, *, force: bool, bypass_gh_unauthorized: bool
) -> None:
    """GARM's ``DeleteRunner``: unregister from GitHub (when it has an agent ID), then mark for deletion.

    409 ``pool manager is not running for <entity>`` unless ``bypass_gh_unauthorized``; GitHub's 404 is
    fine (already gone), 422 is 400 (busy), 401 stops the manager and fails unless bypassed.
    """
    check_running(core, bypass_gh_unauthorized)
    if instance.agent_id:
        try:
            await core.github().remove_runner(instance.agent_id)
        except GithubNotFoundError:
            log.debug("runner %d of %s was already gone from github", instance.agent_id, instance.name)
        except GithubUnauthorizedError as exc:
            core.set_running(False, f'failed to remove runner: "{exc}"')
            if not bypass_gh_unauthorized:
                raise GarmError(f"removing runner: {exc}") from exc
            log.info("github unauthorized bypassed; marking %s for deletion", instance.name)
        except GithubError as exc:
            if exc.status == HTTP_UNPROCESSABLE_ENTITY:
                raise BadRequestError(f'removing runner: "{exc}"') from exc
            raise GarmError(f"removing runner: {exc}") from exc
    status = STATUS_PENDING_FORCE_DELETE if force else STATUS_PENDING_DELETE
    await core.store.update_instance(instance.name, UpdateInstanceParams(status=status))


# --- deletePendingInstances (docs/garm-protocol.md#delete-pending) ------------------------------------------


async def delete_pending_instances(core: ManagerCore) -> None:
    """Mark each lockable ``pending_(force_)delete`` instance ``deleting`` and remove it in the background.

    Runs even while the manager is not running, so runners can always be cleaned up.
    """
    records = await core.store.list_instance_records(
        entity=core.ref, statuses=sorted(DELETE_PENDING_STATUSES)
    )
    await core.claim_and_spawn(
        records, STATUS_DELETING, lambda record: _remove_locked(core, record), "delete"
    )


async def _remove_locked(core: ManagerCore, record: InstanceRecord) -> None:
    """Provider ``DeleteInstance`` (by provider ID, else name), then the row. A failed provider delete of
    a ``pending_delete`` instance puts it back (with the fault) for the next pass; a forced one goes on."""
    instance = record.instance
    previous = instance.status
    try:
        try:
            provider = core.provider(record.provider_name, instance.pool_id)
            await provider.delete_instance(instance.provider_id or instance.name)
        except Exception as exc:
            if previous != STATUS_PENDING_FORCE_DELETE:
                log.error("failed to remove %s from the provider: %s", instance.name, exc)
                await core.store.update_instance(
                    instance.name,
                    UpdateInstanceParams(
                        status=previous, provider_fault=f"removing instance: {exc}".encode()
                    ),
                )
                return
            log.warning("forced removal of %s goes on despite: %s", instance.name, exc)
        await core.store.delete_instance(instance.name, pool_id=instance.pool_id)
    finally:
        core.unlock(instance.name)


# --- scaleDown (docs/garm-protocol.md#scale-down) -----------------------------------------------------------


async def scale_down(core: ManagerCore) -> None:
    """Every enabled pool, in parallel: remove half the surplus of long-idle runners."""
    pools = await core.store.list_entity_pools(*core.ref)
    await gather_or_raise(_scale_down_pool(core, pool) for pool in pools if pool.enabled)


async def _scale_down_pool(core: ManagerCore, pool: Pool) -> None:
    """Whenever runners are to go, stale queued jobs this pool could have served go too (``job/delete``):
    the only place GARM deletes a job it never ran (docs/garm-protocol.md#producing-a-jobdelete)."""
    timings = core.timings
    records = await core.store.list_instance_records(pool_id=pool.id)
    now = utcnow()
    idle = [r.instance for r in records if is_reapable_idle(r.instance, now, timings.idle_runner_age)]
    count = scale_down_count(len(idle), pool.min_idle_runners)
    if count == 0:
        return
    deletions = [_delete_idle(core, instance) for instance in idle[:count] if core.try_lock(instance.name)]
    await gather_or_raise([*deletions, _delete_stale_jobs(core, pool)])


async def _delete_idle(core: ManagerCore, instance: Instance) -> None:
    try:
        await delete_runner(core, instance, force=False, bypass_gh_unauthorized=False)
    finally:
        core.unlock(instance.name)


async def _delete_stale_jobs(core: ManagerCore, pool: Pool) -> None:
    tag_names = [tag.name for tag in pool.tags or []]
    now = utcnow()
    for job in await core.store.list_entity_jobs_by_status(*core.ref, JOB_QUEUED):
        if is_stale_queued_job(
            status=job.status,
            created_at=job.created_at,
            labels=job.labels or [],
            tag_names=tag_names,
            now=now,
            stale_age=core.timings.stale_job_age,
        ):
            log.info("deleting stale queued job %d (pool %s)", job.id, pool.id)
            await core.store.delete_job(job.id)
