"""Runner creation: ``AddRunner``, the add-pending loop, ensure-min-idle and create retries
(docs/garm-protocol.md#pool-managers, docs/garm-protocol.md#bootstrapinstance).

A runner comes to exist in two steps, as in GARM. :func:`add_runner` registers it with GitHub (a JIT
config when the provider allows, else nothing: the runner will fetch a registration token) and writes
the ``pending_create`` row (``instance/create``). :func:`add_pending_instances` later marks the row
``creating`` and, in a background task, asks the provider to build the machine (``instance/update``
with the provider's answer, or ``error`` with the fault). :func:`retry_failed_instances` turns
``error`` rows back into ``pending_create`` until ``create_attempt`` reaches 5.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Sequence

from pygarm.errors import GarmError
from pygarm.params.models import Address, Instance, Pool
from pygarm.params.provider import BootstrapInstance
from pygarm.runner.github import GithubError, jit_config_or_none
from pygarm.runner.naming import new_runner_name
from pygarm.runner.pool.core import ManagerCore
from pygarm.runner.pool.scaling import (
    RUNNER_PENDING,
    STATUS_CREATING,
    STATUS_ERROR,
    STATUS_PENDING_CREATE,
    add_runner_refusal,
    counts_as_idle_or_pending,
    min_idle_shortfall,
    retry_eligible,
    runner_labels,
)
from pygarm.runner.providers import ProviderError
from pygarm.store.instances import CreateInstanceParams, InstanceRecord, UpdateInstanceParams

log = logging.getLogger(__name__)


async def gather_or_raise(operations: Iterable[Awaitable[object]]) -> None:
    """Run operations in parallel, let all finish, then raise the first failure (GARM's errgroup)."""
    results = await asyncio.gather(*operations, return_exceptions=True)
    errors = [result for result in results if isinstance(result, BaseException)]
    for error in errors[1:]:
        log.error("pool operation failed: %s", error)
    if errors:
        raise errors[0]


def _tag_names(pool: Pool) -> list[str]:
    return [tag.name for tag in pool.tags or []]


# --- AddRunner (docs/garm-protocol.md#adding-a-runner) ------------------------------------------------------


async def add_runner(core: ManagerCore, pool_id: str, extra_labels: Sequence[str] = ()) -> Instance:
    """Create a ``pending_create`` instance in one of this entity's pools (``instance/create``).

    A JIT config is requested unless the provider disables it; any JIT failure falls back to the
    registration-token flow (``agent_id`` 0). Unlike GARM, whose cleanup for this case is dead code, a
    runner registered on GitHub is unregistered again when the row cannot be written.
    """
    pool = await core.store.get_pool(pool_id, core.ref)
    provider = core.provider(pool.provider_name, pool.id)
    name = new_runner_name(pool.runner_prefix)
    labels = runner_labels(_tag_names(pool), core.controller.controller_id, pool.id)
    jit = None
    if not provider.disable_jit_config:
        if core.client is None:
            log.warning(
                "pool manager %s: no github client, %s uses a registration token", core.display_name, name
            )
        else:
            jit = await jit_config_or_none(
                core.client, instance_name=name, labels=labels, runner_group=pool.github_runner_group
            )
    params = CreateInstanceParams(
        name=name,
        os_type=pool.os_type,
        os_arch=pool.os_arch,
        status=STATUS_PENDING_CREATE,
        runner_status=RUNNER_PENDING,
        callback_url=core.controller.callback_url,
        metadata_url=core.controller.metadata_url,
        github_runner_group=pool.github_runner_group,
        create_attempt=0,
        agent_id=jit.runner_id if jit is not None else 0,
        aditional_labels=tuple(extra_labels),
        jit_configuration=dict(jit.files) if jit is not None else None,
    )
    try:
        return await core.store.create_instance(pool.id, params)
    except Exception:
        if jit is not None and core.client is not None:
            try:
                await core.client.remove_runner(jit.runner_id)
            except GithubError as exc:
                log.error("failed to unregister runner %s after a failed create: %s", name, exc)
        raise


async def add_runner_to_pool(core: ManagerCore, pool: Pool, extra_labels: Sequence[str]) -> Instance:
    """The job path's ``addRunnerToPool``: refuse a disabled or full pool (every row counts), else add."""
    async with core.pool_lock(pool.id):
        existing = await core.store.pool_instance_count(pool.id)
        refusal = add_runner_refusal(
            pool_id=pool.id, enabled=pool.enabled, existing=existing, max_runners=pool.max_runners
        )
        if refusal is not None:
            raise GarmError(refusal)
        return await add_runner(core, pool.id, extra_labels)


# --- ensureMinIdleRunners (docs/garm-protocol.md#minimum-idle-runners) --------------------------------------


async def ensure_min_idle_for_pool(core: ManagerCore, pool: Pool) -> None:
    """Top an enabled pool up to ``min_idle_runners`` not-busy runners, within ``max_runners``."""
    if not pool.enabled or pool.min_idle_runners <= 0:
        return
    async with core.pool_lock(pool.id):
        records = await core.store.list_instance_records(pool_id=pool.id)
        required = min_idle_shortfall(
            existing=len(records),
            idle_or_pending=sum(counts_as_idle_or_pending(r.instance.runner_status) for r in records),
            min_idle=pool.min_idle_runners,
            max_runners=pool.max_runners,
        )
        for _ in range(required):
            await add_runner(core, pool.id)


async def ensure_min_idle_runners(core: ManagerCore) -> None:
    """The ``consolidate[ensure_min_idle]`` loop: every pool of the entity, in parallel."""
    pools = await core.store.list_entity_pools(*core.ref)
    await gather_or_raise(ensure_min_idle_for_pool(core, pool) for pool in pools)


# --- addPendingInstances (docs/garm-protocol.md#provider-create) --------------------------------------------


async def add_pending_instances(core: ManagerCore) -> None:
    """Mark each lockable ``pending_create`` instance ``creating`` and create it in a background task."""
    records = await core.store.list_instance_records(entity=core.ref, statuses=[STATUS_PENDING_CREATE])
    await core.claim_and_spawn(
        records, STATUS_CREATING, lambda record: _create_locked(core, record), "create"
    )


async def _create_locked(core: ManagerCore, record: InstanceRecord) -> None:
    name = record.instance.name
    try:
        await add_instance_to_provider(core, record)
    except Exception as exc:
        log.error("pool manager %s: failed to create instance %s: %s", core.display_name, name, exc)
        try:
            await core.store.update_instance(
                name, UpdateInstanceParams(status=STATUS_ERROR, provider_fault=str(exc).encode())
            )
        except GarmError as update_error:
            log.error("failed to mark %s as error: %s", name, update_error)
    finally:
        core.unlock(name)


def build_bootstrap(core: ManagerCore, record: InstanceRecord, pool: Pool, token: str) -> BootstrapInstance:
    """The ``CreateInstance`` stdin (docs/garm-protocol.md#bootstrapinstance): labels only without JIT, tools
    as cached (``null`` if never fetched), URLs as captured on the instance at creation."""
    instance = record.instance
    jit_enabled = bool(record.jit_configuration)
    credentials = core.entity.credentials
    endpoint = credentials.endpoint if credentials.endpoint.base_url else core.entity.endpoint
    labels = None if jit_enabled else runner_labels(_tag_names(pool), core.controller.controller_id, pool.id)
    return BootstrapInstance(
        name=instance.name,
        tools=core.tools,
        repo_url=core.github_entity.html_url(endpoint.base_url),
        callback_url=record.callback_url,
        metadata_url=record.metadata_url,
        instance_token=token,
        ssh_keys=None,
        extra_specs=pool.extra_specs,
        github_runner_group=instance.github_runner_group,
        ca_cert_bundle=credentials.ca_bundle or endpoint.ca_cert_bundle,
        arch=pool.os_arch,
        os_type=pool.os_type,
        flavor=pool.flavor,
        image=pool.image,
        labels=labels,
        pool_id=pool.id,
        jit_config_enabled=jit_enabled,
    )


async def add_instance_to_provider(core: ManagerCore, record: InstanceRecord) -> None:
    """GARM's ``addInstanceToProvider``: mint the token, run ``CreateInstance``, store the answer.

    Raises on failure; the caller records ``error`` with the text as ``provider_fault``. A provider
    failure first deletes whatever the provider may have left (by instance name); a ``status: "error"``
    answer is stored and then deleted by the provider ID the row had before this attempt (or the name).
    """
    instance = record.instance
    pool = await core.store.get_pool(instance.pool_id, core.ref)
    provider = core.provider(pool.provider_name, pool.id)
    token = core.shared.tokens.mint(
        instance_id=instance.id,
        instance_name=instance.name,
        pool_id=pool.id,
        scope=core.kind.value,
        entity=core.display_name,
        create_attempt=record.create_attempt,
        bootstrap_timeout_minutes=pool.runner_bootstrap_timeout,
    )
    bootstrap = build_bootstrap(core, record, pool, token)
    cleanup_id = ""
    try:
        try:
            result = await provider.create_instance(bootstrap)
        except ProviderError as exc:
            cleanup_id = instance.name
            raise GarmError(f"creating instance: {exc}") from exc
        if result.status == STATUS_ERROR:
            cleanup_id = instance.provider_id or instance.name
        update = UpdateInstanceParams(
            provider_id=result.provider_id,
            os_name=result.os_name,
            os_version=result.os_version,
            addresses=[Address(address=a.address, type=a.type) for a in result.addresses or []],
            status=result.status,
            provider_fault=bytes(result.provider_fault or b""),
        )
        try:
            await core.store.update_instance(instance.name, update)
        except GarmError as exc:
            raise GarmError(f"updating instance: {exc}") from exc
    finally:
        if cleanup_id:
            try:
                await provider.delete_instance(cleanup_id)
            except ProviderError as exc:
                log.error("failed to clean up %s in the provider: %s", cleanup_id, exc)


# --- retryFailedInstances (docs/garm-protocol.md#retrying-failed-creates) -----------------------------------


async def retry_failed_instances(core: ManagerCore) -> None:
    """Every enabled pool, in parallel: failed creates go back to ``pending_create``."""
    pools = await core.store.list_entity_pools(*core.ref)
    await gather_or_raise(_retry_pool(core, pool) for pool in pools if pool.enabled)


async def _retry_pool(core: ManagerCore, pool: Pool) -> None:
    records = await core.store.list_instance_records(pool_id=pool.id, statuses=[STATUS_ERROR])
    eligible = [r for r in records if retry_eligible(r.instance.status, r.create_attempt)]
    await gather_or_raise(_retry_one(core, record) for record in eligible)


async def _retry_one(core: ManagerCore, record: InstanceRecord) -> None:
    """Delete what the provider may have, then ``pending_create`` with the next attempt number; the JIT
    config is reused, and a registration token may be fetched again (``token_fetched`` reset)."""
    instance = record.instance
    with core.locked(instance.name) as acquired:
        if not acquired:
            return
        provider = core.provider(record.provider_name, instance.pool_id)
        await provider.delete_instance(instance.provider_id or instance.name)
        await core.store.update_instance(
            instance.name,
            UpdateInstanceParams(
                create_attempt=record.create_attempt + 1,
                token_fetched=bool(record.jit_configuration),
                status=STATUS_PENDING_CREATE,
                runner_status=RUNNER_PENDING,
            ),
        )
