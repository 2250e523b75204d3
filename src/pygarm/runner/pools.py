"""Business rules for pools, between the routes and the store (``garm@v0.1.5 runner/pools.go`` and the pool
parts of ``garm@v0.1.5 runner/repositories.go`` & co., written once for every entity kind).

Differences from GARM v0.1.5, on purpose (``docs/compatibility.md``):

* every validation failure is 400 with GARM's message, where GARM answers 500 on the repository and
  enterprise routes (and for org pools too, docs/garm-protocol.md#error-mapping), because it wraps them with
  ``fmt.Errorf``;
* the default ``runner_bootstrap_timeout`` (20) is stored for every kind; GARM's organization and
  enterprise handlers assign it to the wrong variable, so their pools keep 0
  (docs/garm-protocol.md#route-rules, docs/garm-protocol.md#pool);
* an unknown pool under an entity is 404 (GARM: 500).
"""

from __future__ import annotations

from collections.abc import Collection

from pygarm.errors import BadRequestError
from pygarm.params.entity_requests import DEFAULT_RUNNER_BOOTSTRAP_TIMEOUT, CreatePoolParams, UpdatePoolParams
from pygarm.params.models import Pool
from pygarm.store.entity_kinds import EntityKind
from pygarm.store.pools import EntityRef, PoolStore


async def create_pool(
    store: PoolStore, providers: Collection[str], kind: EntityKind, entity_id: str, params: CreatePoolParams
) -> Pool:
    """``CreatePoolParams.Validate``, the OS checks, the provider check (``no such provider <name>``,
    against the configured ``[[provider]]`` names), then create with the effective bootstrap timeout."""
    params.validate_params()
    if params.provider_name not in providers:
        raise BadRequestError(f"no such provider {params.provider_name}")
    timeout = params.runner_bootstrap_timeout or DEFAULT_RUNNER_BOOTSTRAP_TIMEOUT
    return await store.create_pool(
        kind, entity_id, params.model_copy(update={"runner_bootstrap_timeout": timeout})
    )


async def update_pool(
    store: PoolStore, pool_id: str, params: UpdatePoolParams, entity: EntityRef | None = None
) -> Pool:
    """``PUT /pools/{id}`` (``entity=None``) and ``PUT /<entity>/{id}/pools/{poolID}``.

    Only ``/pools/{id}`` rejects ``runner_bootstrap_timeout: 0`` (GARM's ``UpdatePoolByID``); the entity
    routes let the store ignore it. The pool is looked up first so that an unknown pool stays a 404.
    """
    params.validate_params()
    if entity is None and params.runner_bootstrap_timeout == 0:
        await store.get_pool(pool_id)
        raise BadRequestError("runner_bootstrap_timeout cannot be 0")
    return await store.update_pool(pool_id, params, entity)


async def delete_pool(store: PoolStore, pool_id: str, entity: EntityRef | None = None) -> None:
    """``pool/delete`` if the pool existed and has no runners (see :meth:`PoolStore.delete_pool`)."""
    await store.delete_pool(pool_id, entity)
