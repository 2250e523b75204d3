"""The pool-manager registry: one :class:`PoolManager` per repository, organization and enterprise,
kept in step with the database by listening to the events hub (docs/garm-protocol.md#pool-managers).

GARM creates managers from the REST handlers and gives each one a DB-watcher consumer. pygarm has one
hub subscription for all managers, filtered to the few changes that matter to them:

==========================================  ===================================================
change                                       effect
==========================================  ===================================================
``repository|organization|enterprise``       ``create``: start a manager; ``update``: the manager
                                             re-reads its entity (and rebuilds its client if the
                                             credentials changed); ``delete``: stop it
``github_credentials/update``                managers using them rebuild their client and tools
``github_endpoint/update``                   the same for managers on that endpoint (GARM only
                                             notices at restart)
``controller/update``                        the shared controller info (URLs, job-age backoff)
``pool/create``, ``pool/delete``             the pool → entity map behind :meth:`manager_for_pool`
==========================================  ===================================================

The subscription starts before the entities are listed, so no creation falls between the two. If the
hub ever closes it as a slow consumer, the registry subscribes again and re-lists everything.

Replicas on one PostgreSQL (:meth:`PoolManagerRegistry.use_leases`): every replica knows every entity,
but runs a manager only for the entities whose lease it holds (``runner/leases.py`` decides and calls
:meth:`~PoolManagerRegistry.apply_leases`). The holder publishes each manager's status in its lease row,
so ``pool_manager_status`` reads the same on every replica, and ``DELETE /instances`` on a replica that
does not run the entity's manager unregisters the runner with a client built for that request (the
holder's delete-pending loop then removes the machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any, Final, Protocol

import orjson

from pygarm.config import Settings
from pygarm.errors import ConflictError, GarmError, NotFoundError
from pygarm.events.change import Change, EntityType, Operation
from pygarm.events.filters import CompiledFilter
from pygarm.events.hub import Hub, Subscription
from pygarm.events.mailbox import CloseCause
from pygarm.params.models import Pool, PoolManagerStatus
from pygarm.runner.instance_token import InstanceTokenService
from pygarm.runner.metrics import GarmCounters
from pygarm.runner.pool import deletion
from pygarm.runner.pool.core import ManagerCore, PoolManagerTimings, Shared
from pygarm.runner.pool.manager import PoolManager
from pygarm.runner.pool.scaling import STATUS_PENDING_DELETE, STATUS_PENDING_FORCE_DELETE
from pygarm.runner.pool.setup import build_providers
from pygarm.runner.providers import Provider
from pygarm.runner.providers.counting import count_operations
from pygarm.store.entity_kinds import KINDS, EntityKind
from pygarm.store.instances import UpdateInstanceParams
from pygarm.store.store import Store

log = logging.getLogger(__name__)

LEASE_PREFIX: Final = "pool-manager:"
"""Lease key of an entity's pool manager: the prefix and the entity ID."""


class LeaseView(Protocol):
    """What the registry asks the lease driver (``runner/leases.py``)."""

    def poke(self) -> None: ...

    def published_status(self, key: str) -> str | None: ...


POOL_MANAGERS_SERVICE: Final = "pool_managers"
"""Key of the registry in ``AppContext.services``."""
SUBSCRIPTION_NAME: Final = "pool-managers"

_KIND_BY_EVENT: Final = {spec.event_type: kind for kind, spec in KINDS.items()}
WATCHED_CHANGES: Final[CompiledFilter] = frozenset(
    {(event_type, op) for event_type in _KIND_BY_EVENT for op in Operation}
    | {
        (EntityType.GITHUB_CREDENTIALS, Operation.UPDATE),
        (EntityType.GITHUB_ENDPOINT, Operation.UPDATE),
        (EntityType.CONTROLLER, Operation.UPDATE),
        (EntityType.POOL, Operation.CREATE),
        (EntityType.POOL, Operation.DELETE),
    }
)
"""The hub changes the registry reacts to (everything else never reaches it)."""


def _pool_owner(pool: Mapping[str, Any] | Pool) -> str:
    if isinstance(pool, Pool):
        return pool.repo_id or pool.org_id or pool.enterprise_id
    return str(pool.get("repo_id") or pool.get("org_id") or pool.get("enterprise_id") or "")


class PoolManagerRegistry:
    """All pool managers of this process, keyed by entity ID. Built and stopped by the app lifespan.

    ``providers`` and ``timings`` default to what ``settings`` configures (tests may pass their own).
    """

    def __init__(
        self,
        store: Store,
        hub: Hub,
        settings: Settings,
        *,
        providers: Mapping[str, Provider] | None = None,
        timings: PoolManagerTimings | None = None,
        counters: GarmCounters | None = None,
    ) -> None:
        self._store = store
        self._counters = counters
        self._hub = hub
        self._settings = settings
        self._providers_override = providers
        self._timings = timings or PoolManagerTimings.from_section(settings.pool_manager)
        self._managers: dict[str, PoolManager] = {}
        self._entities: dict[str, tuple[EntityKind, Any]] = {}
        """Every entity known, with or without a manager here."""
        self._leases: LeaseView | None = None
        self._pool_owner: dict[str, str] = {}
        self._shared: Shared | None = None
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    # --- lookups ------------------------------------------------------------------------------------

    def get(self, entity_id: str) -> PoolManager | None:
        return self._managers.get(entity_id)

    def __iter__(self) -> Iterator[PoolManager]:
        return iter(list(self._managers.values()))

    def status(self, kind_or_entity_id: EntityKind | str, entity_id: str | None = None) -> PoolManagerStatus:
        """``pool_manager_status`` of an entity: ``status(entity_id)`` or ``status(kind, entity_id)``.

        An entity without a manager (not started yet, or stopped) is ``{"running": false}``.
        """
        key = entity_id if entity_id is not None else str(kind_or_entity_id)
        manager = self._managers.get(key)
        if manager is not None:
            return manager.status()
        published = self._leases.published_status(LEASE_PREFIX + key) if self._leases is not None else None
        if published:
            return PoolManagerStatus.model_validate_json(published)
        return PoolManagerStatus(running=False)

    def manager_for_pool(self, pool_id: str) -> PoolManager | None:
        """The manager of the entity owning ``pool_id`` (GARM's ``getPoolManagerFromInstance``)."""
        owner = self._pool_owner.get(pool_id)
        return self._managers.get(owner) if owner else None

    def is_running(self, pool_id: str) -> bool:
        """Whether the manager of the entity owning ``pool_id`` is running."""
        manager = self.manager_for_pool(pool_id)
        return manager is not None and manager.running

    async def find_manager_for_pool(self, pool_id: str) -> PoolManager | None:
        """:meth:`manager_for_pool`, reading the pool when its ``pool/create`` has not arrived yet.

        Raises :class:`~pygarm.errors.NotFoundError` for an unknown pool.
        """
        manager = self.manager_for_pool(pool_id)
        if manager is None:
            pool = await self._store.get_pool(pool_id)
            self._pool_owner[pool.id] = _pool_owner(pool)
            manager = self._managers.get(self._pool_owner[pool.id])
        return manager

    async def delete_runner(self, instance_name: str, *, force: bool, bypass_gh_unauthorized: bool) -> None:
        """``DELETE /instances/{name}`` once the route has checked the instance's status
        (docs/garm-protocol.md#deleterunner): the owning entity's :meth:`PoolManager.delete_runner`. An entity
        without a manager is 409 ``pool manager is not running for <entity>``, unless bypassed: then the
        instance is only marked for deletion (nothing can reach GitHub for it)."""
        instance = await self._store.get_instance(instance_name)
        manager = await self.find_manager_for_pool(instance.pool_id)
        if manager is not None:
            await manager.delete_runner(
                instance_name, force=force, bypass_gh_unauthorized=bypass_gh_unauthorized
            )
            return
        owner = self._pool_owner.get(instance.pool_id, "")
        if self._leases is not None and owner in self._entities and self.status(owner).running:
            await self._delete_runner_here(owner, instance_name, force, bypass_gh_unauthorized)
            return
        if not bypass_gh_unauthorized:
            pool = await self._store.get_pool(instance.pool_id)
            owner = pool.repo_name or pool.org_name or pool.enterprise_name
            raise ConflictError(f"pool manager is not running for {owner}")
        status = STATUS_PENDING_FORCE_DELETE if force else STATUS_PENDING_DELETE
        await self._store.update_instance(instance_name, UpdateInstanceParams(status=status))

    async def _delete_runner_here(
        self, entity_id: str, instance_name: str, force: bool, bypass_gh_unauthorized: bool
    ) -> None:
        """``DeleteRunner`` on a replica that does not run the entity's manager (another replica does
        and reports it running): unregister with a client built for this call, then mark for deletion."""
        assert self._shared is not None
        kind, entity = self._entities[entity_id]
        core = ManagerCore(self._shared, kind, entity)
        core.running = True
        await core.replace_client()
        try:
            record = await self._store.get_instance_record(instance_name)
            await deletion.delete_runner(
                core, record.instance, force=force, bypass_gh_unauthorized=bypass_gh_unauthorized
            )
        finally:
            if core.client is not None:
                await core.client.aclose()

    # --- leases (replicas on one PostgreSQL) ----------------------------------------------------------

    def use_leases(self, leases: LeaseView) -> None:
        """Run managers only for the entities :meth:`apply_leases` names; call before :meth:`start`."""
        self._leases = leases

    def lease_keys(self) -> list[str]:
        return [LEASE_PREFIX + entity_id for entity_id in self._entities]

    def lease_status(self, key: str) -> str | None:
        manager = self._managers.get(key.removeprefix(LEASE_PREFIX))
        return None if manager is None else manager.status().model_dump_json()

    async def apply_leases(self, acting: frozenset[str]) -> None:
        """Start the managers of the entities this replica leads, stop the others (in parallel)."""
        leading = {key.removeprefix(LEASE_PREFIX) for key in acting if key.startswith(LEASE_PREFIX)}
        stopping = [entity_id for entity_id in self._managers if entity_id not in leading]
        if stopping:
            await asyncio.gather(*(self._stop_manager(entity_id) for entity_id in stopping))
        for entity_id in sorted(leading):
            if entity_id in self._entities and entity_id not in self._managers:
                self._run_manager(*self._entities[entity_id])

    @property
    def providers(self) -> Mapping[str, Provider]:
        return self._shared.providers if self._shared is not None else {}

    @property
    def timings(self) -> PoolManagerTimings:
        return self._timings

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to the hub, start a manager per existing entity, then follow the hub."""
        if self._task is not None:
            return
        controller = await self._store.get_controller_info()
        providers = self._providers_override
        if providers is None:
            providers = build_providers(
                self._settings.provider, controller.controller_id, timeout=self._timings.provider_timeout
            )
        self._shared = Shared(
            store=self._store,
            providers=count_operations(providers, self._counters),
            timings=self._timings,
            tokens=InstanceTokenService(self._settings.jwt_auth.secret),
            controller=controller,
            github_counters=self._counters,
        )
        self._subscribe()
        await self._resync(refresh_existing=False)
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="pygarm-pool-managers")

    async def stop(self) -> None:
        """Stop following the hub and stop every manager (in parallel)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        self._entities = {}
        managers, self._managers = list(self._managers.values()), {}
        if managers:
            await asyncio.gather(*(manager.stop() for manager in managers), return_exceptions=True)

    def _subscribe(self) -> None:
        subscription = self._hub.subscribe(SUBSCRIPTION_NAME)
        subscription.set_filter(WATCHED_CHANGES)
        self._subscription = subscription

    async def _resync(self, *, refresh_existing: bool) -> None:
        """Make the managers match the database: start missing ones, stop orphans, reload the rest."""
        assert self._shared is not None
        self._shared.controller = await self._store.get_controller_info()
        seen: set[str] = set()
        for kind in EntityKind:
            for entity in await self._store.list_entities(kind):
                seen.add(entity.id)
                manager = self._managers.get(entity.id)
                if entity.id not in self._entities:
                    self._start_manager(kind, entity)
                    continue
                self._entities[entity.id] = (kind, entity)
                if manager is not None and refresh_existing:
                    manager.refresh(client=True)
        for entity_id in [key for key in self._entities if key not in seen]:
            await self._forget(entity_id)
        self._pool_owner = {pool.id: _pool_owner(pool) for pool in await self._store.list_all_pools()}

    def _start_manager(self, kind: EntityKind, entity: Any) -> None:
        """A new entity: run its manager here, or (with leases) once this replica wins its lease."""
        self._entities[entity.id] = (kind, entity)
        if self._leases is None:
            self._run_manager(kind, entity)
        else:
            self._leases.poke()

    async def _forget(self, entity_id: str) -> None:
        """An entity is gone: stop its manager if it runs here."""
        self._entities.pop(entity_id, None)
        await self._stop_manager(entity_id)
        if self._leases is not None:
            self._leases.poke()

    def _run_manager(self, kind: EntityKind, entity: Any) -> None:
        assert self._shared is not None
        manager = PoolManager(self._shared, kind, entity)
        self._managers[entity.id] = manager
        manager.start()
        log.info("pool manager started for %s %s", kind.value, manager.core.display_name)

    async def _stop_manager(self, entity_id: str) -> None:
        manager = self._managers.pop(entity_id, None)
        if manager is not None:
            await manager.stop()
            log.info("pool manager stopped for %s %s", manager.kind.value, manager.core.display_name)

    # --- following the hub --------------------------------------------------------------------------

    async def _follow(self) -> None:
        while True:
            subscription = self._subscription
            assert subscription is not None
            delivery = subscription.pop()
            if delivery is None:
                if subscription.cause is None:
                    await subscription.wait()
                    continue
                if subscription.cause is CloseCause.SHUTDOWN:
                    return
                log.warning("pool managers fell behind the hub (%s); resynchronizing", subscription.cause)
                self._subscribe()
                await self._resync(refresh_existing=True)
                continue
            try:
                await self._apply(delivery.change)
            except Exception:
                log.exception(
                    "pool managers: failed to apply %s/%s",
                    delivery.change.entity_type,
                    delivery.change.operation,
                )

    async def _apply(self, change: Change) -> None:
        payload: dict[str, Any] = orjson.loads(change.payload)
        entity_type, operation = change.entity_type, change.operation
        kind = _KIND_BY_EVENT.get(entity_type)
        if kind is not None:
            await self._apply_entity(kind, operation, str(payload.get("id", "")))
        elif entity_type is EntityType.GITHUB_CREDENTIALS:
            for manager in self:
                if manager.entity.credentials_id == payload.get("id"):
                    manager.refresh(client=True)
        elif entity_type is EntityType.GITHUB_ENDPOINT:
            for manager in self:
                if payload.get("name") in (
                    manager.entity.endpoint.name,
                    manager.entity.credentials.endpoint.name,
                ):
                    manager.refresh(client=True)
        elif entity_type is EntityType.CONTROLLER:
            assert self._shared is not None
            self._shared.controller = await self._store.get_controller_info()
        elif entity_type is EntityType.POOL:
            if operation is Operation.CREATE:
                self._pool_owner[str(payload.get("id"))] = _pool_owner(payload)
            else:
                self._pool_owner.pop(str(payload.get("id")), None)

    async def _apply_entity(self, kind: EntityKind, operation: Operation, entity_id: str) -> None:
        if operation is Operation.DELETE:
            await self._forget(entity_id)
            return
        manager = self._managers.get(entity_id)
        if manager is not None and operation is Operation.UPDATE:
            manager.refresh()
        if entity_id in self._entities:
            if operation is Operation.UPDATE:  # keep the copy a later manager starts from current
                with contextlib.suppress(GarmError):
                    self._entities[entity_id] = (kind, await self._store.get_entity(kind, entity_id))
            return
        try:
            entity = await self._store.get_entity(kind, entity_id)
        except NotFoundError:
            return  # deleted again before we got here; its delete event follows
        except GarmError as exc:
            log.error("cannot start pool manager for %s %s: %s", kind.value, entity_id, exc)
            return
        self._start_manager(kind, entity)


__all__ = [
    "LEASE_PREFIX",
    "POOL_MANAGERS_SERVICE",
    "WATCHED_CHANGES",
    "PoolManager",
    "PoolManagerRegistry",
    "build_providers",
]
