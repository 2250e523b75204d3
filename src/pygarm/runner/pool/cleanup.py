"""The timeout reaper: reconcile instances with the runners GitHub knows (docs/garm-protocol.md#cleanup).

One pass lists the entity's GitHub runners once, keeps the ones this controller manages (by their
``runner-controller-id:`` label) and then, in GARM's order:

a. removes instances past their bootstrap timeout whose runner is missing or offline (``DeleteRunner``);
b. marks ``pending_delete`` the instances GitHub does not know, once their grace periods are over;
c. for offline managed runners: unregisters runners without an instance, and for instances the
   provider no longer lists, unregisters the runner and deletes the row outright; an instance the
   provider lists as not running is started again.
"""

from __future__ import annotations

import contextlib
import logging

from pygarm.params.provider import ProviderInstance
from pygarm.runner.github import GithubNotFoundError, GithubRunner
from pygarm.runner.pool.core import ManagerCore, utcnow
from pygarm.runner.pool.deletion import delete_runner
from pygarm.runner.pool.scaling import (
    GITHUB_RUNNER_OFFLINE,
    STATUS_PENDING_DELETE,
    STATUS_RUNNING,
    OrphanAction,
    bootstrap_timeout,
    is_managed_runner,
    is_orphaned_instance,
    offline_runner_action,
    should_reap_timed_out,
)
from pygarm.store.instances import InstanceRecord, UpdateInstanceParams

log = logging.getLogger(__name__)


async def runner_cleanup(core: ManagerCore) -> None:
    """One pass of the ``timeout_reaper`` loop; any error aborts the pass (and is logged by the loop)."""
    runners = await core.github().list_runners()
    controller_id = core.controller.controller_id
    managed = {r.name: r for r in runners if r.name and is_managed_runner(r.label_names, controller_id)}
    await _reap_timed_out(core, managed)
    await _mark_orphaned_instances(core, managed)
    await _clean_offline_runners(core, managed)


async def _records(core: ManagerCore) -> list[InstanceRecord]:
    return await core.store.list_instance_records(entity=core.ref)


async def _reap_timed_out(core: ManagerCore, managed: dict[str, GithubRunner]) -> None:
    now = utcnow()
    for record in await _records(core):
        instance = record.instance
        runner = managed.get(instance.name)
        if not should_reap_timed_out(
            updated_at=instance.updated_at,
            now=now,
            timeout=bootstrap_timeout(record.runner_bootstrap_timeout),
            github_status=None if runner is None else (runner.status or ""),
        ):
            continue
        with core.locked(instance.name) as acquired:
            if acquired:
                log.info("reaping %s: not registered on github within its bootstrap timeout", instance.name)
                await delete_runner(core, instance, force=False, bypass_gh_unauthorized=False)


async def _mark_orphaned_instances(core: ManagerCore, managed: dict[str, GithubRunner]) -> None:
    now = utcnow()
    for record in await _records(core):
        instance = record.instance
        if not is_orphaned_instance(
            status=instance.status,
            runner_status=instance.runner_status,
            updated_at=instance.updated_at,
            now=now,
            timeout=bootstrap_timeout(record.runner_bootstrap_timeout),
            orphan_age=core.timings.orphan_runner_age,
            on_github=instance.name in managed,
        ):
            continue
        with core.locked(instance.name) as acquired:
            if acquired:
                log.info("%s is unknown to github; marking it for deletion", instance.name)
                await core.store.update_instance(
                    instance.name, UpdateInstanceParams(status=STATUS_PENDING_DELETE)
                )


async def _clean_offline_runners(core: ManagerCore, managed: dict[str, GithubRunner]) -> None:
    by_name = {record.instance.name: record for record in await _records(core)}
    listed: dict[str, list[ProviderInstance]] = {}
    now = utcnow()
    for name, runner in managed.items():
        if runner.status != GITHUB_RUNNER_OFFLINE or runner.id is None:
            continue
        record = by_name.get(name)
        action = offline_runner_action(
            None if record is None else record.instance.status,
            updated_at=None if record is None else record.instance.updated_at,
            now=now,
            orphan_age=core.timings.orphan_runner_age,
        )
        if action is OrphanAction.REMOVE_FROM_GITHUB:
            log.info("unregistering offline runner %s: no such instance", name)
            await _remove_github_runner(core, runner.id)
        elif action is OrphanAction.ASK_PROVIDER and record is not None:
            with core.locked(name) as acquired:
                if acquired:
                    await _reconcile_with_provider(core, record, runner.id, listed)


async def _reconcile_with_provider(
    core: ManagerCore, record: InstanceRecord, runner_id: int, listed: dict[str, list[ProviderInstance]]
) -> None:
    instance = record.instance
    provider = core.provider(record.provider_name, instance.pool_id)
    if instance.pool_id not in listed:
        listed[instance.pool_id] = await provider.list_instances(instance.pool_id)
    found = next((item for item in listed[instance.pool_id] if item.name == instance.name), None)
    if found is None:
        log.info("%s is gone from the provider; removing its runner and row", instance.name)
        await _remove_github_runner(core, runner_id)
        await core.store.delete_instance(instance.name, pool_id=instance.pool_id)
    elif found.status == STATUS_RUNNING:
        log.info("%s runs in the provider but its runner is offline", instance.name)
    else:
        log.info("starting %s (provider status %s)", instance.name, found.status)
        await provider.start_instance(instance.provider_id or instance.name)


async def _remove_github_runner(core: ManagerCore, runner_id: int) -> None:
    with contextlib.suppress(GithubNotFoundError):  # already gone is what we wanted
        await core.github().remove_runner(runner_id)
