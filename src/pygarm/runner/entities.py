"""Business rules for repositories, organizations and enterprises, between the routes and the store.

GARM's runner (``garm@v0.1.5 runner/repositories.go`` and its twins ``organizations.go`` and
``enterprises.go``) checks the caller is an admin (a route dependency in pygarm), runs ``Validate()``,
calls the store, and fills in the live ``pool_manager_status`` from the entity's pool manager. One
function per operation serves all three kinds. The store applies the rules that need the database
(credentials, duplicates, pools defined) inside its transaction.

Pool managers do not exist yet: until one is registered (:class:`PoolManagerStatusSource`), every entity
reports ``{"running": false}``, the value GARM's events always carry.
"""

from __future__ import annotations

from typing import Protocol

from pygarm.params.entity_requests import CreateEntityParams, UpdateEntityParams
from pygarm.params.models import PoolManagerStatus
from pygarm.store.entities import EntityStore
from pygarm.store.entity_kinds import Entity, EntityKind


class PoolManagerStatusSource(Protocol):
    """What the pool-manager registry (``runner/pool/registry.py``) offers the REST layer."""

    def status(self, kind: EntityKind, entity_id: str) -> PoolManagerStatus | None:
        """The live status of an entity's pool manager; ``None`` when it has none."""
        ...

    async def delete_runner(self, instance_name: str, *, force: bool, bypass_gh_unauthorized: bool) -> None:
        """GARM's ``DeleteRunner`` (docs/garm-protocol.md#deleterunner): unregister from GitHub, then mark for
        deletion."""
        ...


def with_live_status(entity: Entity, kind: EntityKind, managers: PoolManagerStatusSource | None) -> Entity:
    """REST answers carry the pool manager's live state; store reads and events ``running: false``."""
    status = managers.status(kind, entity.id) if managers is not None else None
    return entity if status is None else entity.model_copy(update={"pool_manager_status": status})


async def create_entity(store: EntityStore, kind: EntityKind, params: CreateEntityParams) -> Entity:
    """``Create<Kind>``: validate, then create (``<kind>/create``). GARM then starts a pool manager and,
    should that fail, deletes the entity again; that step arrives with the pool managers."""
    params.validate_params()
    return await store.create_entity(kind, params)


async def list_entities(
    store: EntityStore, kind: EntityKind, managers: PoolManagerStatusSource | None = None
) -> list[Entity]:
    return [with_live_status(e, kind, managers) for e in await store.list_entities(kind)]


async def get_entity(
    store: EntityStore, kind: EntityKind, entity_id: str, managers: PoolManagerStatusSource | None = None
) -> Entity:
    return with_live_status(await store.get_entity(kind, entity_id), kind, managers)


async def update_entity(
    store: EntityStore,
    kind: EntityKind,
    entity_id: str,
    params: UpdateEntityParams,
    managers: PoolManagerStatusSource | None = None,
) -> Entity:
    """GARM checks the balancer type before it even looks the entity up."""
    params.validate_params()
    return with_live_status(await store.update_entity(kind, entity_id, params), kind, managers)


async def delete_entity(store: EntityStore, kind: EntityKind, entity_id: str) -> Entity:
    """Delete an entity without pools (``<kind>/delete``).

    GARM also uninstalls the entity's webhook here unless ``keepWebhook`` is set (only with
    ``enable_webhook_management``) and stops its pool manager; both belong to those features' owners.
    """
    return await store.delete_entity(kind, entity_id)
