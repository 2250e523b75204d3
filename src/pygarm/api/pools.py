"""Pools (docs/garm-protocol.md#rest-routes): ``/pools…`` and ``/<entity>/{id}/pools…`` for every entity kind.

Lists answer ``[]`` when empty and leave out ``extra_specs`` (docs/garm-protocol.md#pool); deletes answer 200
with an empty body, also for an unknown pool on ``DELETE /pools/{id}`` (as GARM does).
"""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from pygarm.api.deps import AdminUser, AppContext, ContextDep
from pygarm.api.responses import GoJSONResponse, empty_json_response
from pygarm.api.routing import GarmRouter, body_schema, decode_body
from pygarm.params.entity_requests import CreatePoolParams, UpdatePoolParams
from pygarm.runner import pools as service
from pygarm.store.entity_kinds import KINDS, EntityKind

router = GarmRouter(tags=["pools"])


def provider_names(ctx: AppContext) -> set[str]:
    """The ``[[provider]]`` names of the configuration: the providers a pool may use."""
    return {provider.name for provider in ctx.settings.provider}


@router.get("/pools")
async def list_all_pools(_auth: AdminUser, ctx: ContextDep) -> Response:
    return GoJSONResponse(await ctx.store.list_all_pools())


@router.get("/pools/{pool_id}")
async def get_pool(pool_id: str, _auth: AdminUser, ctx: ContextDep) -> Response:
    return GoJSONResponse(await ctx.store.get_pool(pool_id))


@router.put("/pools/{pool_id}", openapi_extra=body_schema(UpdatePoolParams))
async def update_pool(pool_id: str, request: Request, _auth: AdminUser, ctx: ContextDep) -> Response:
    params = await decode_body(request, UpdatePoolParams)
    return GoJSONResponse(await service.update_pool(ctx.store, pool_id, params))


@router.delete("/pools/{pool_id}")
async def delete_pool(pool_id: str, _auth: AdminUser, ctx: ContextDep) -> Response:
    await service.delete_pool(ctx.store, pool_id)
    return empty_json_response()


def _mount(kind: EntityKind) -> None:
    collection = "/" + KINDS[kind].api_collection + "/{entity_id}/pools"
    item = collection + "/{pool_id}"

    @router.get(collection, name=f"list_{kind.value}_pools")
    async def list_entity_pools(entity_id: str, _auth: AdminUser, ctx: ContextDep) -> Response:
        return GoJSONResponse(await ctx.store.list_entity_pools(kind, entity_id))

    @router.post(collection, name=f"create_{kind.value}_pool", openapi_extra=body_schema(CreatePoolParams))
    async def create_entity_pool(
        entity_id: str, request: Request, _auth: AdminUser, ctx: ContextDep
    ) -> Response:
        params = await decode_body(request, CreatePoolParams)
        pool = await service.create_pool(ctx.store, provider_names(ctx), kind, entity_id, params)
        return GoJSONResponse(pool)

    @router.get(item, name=f"get_{kind.value}_pool")
    async def get_entity_pool(entity_id: str, pool_id: str, _auth: AdminUser, ctx: ContextDep) -> Response:
        return GoJSONResponse(await ctx.store.get_pool(pool_id, (kind, entity_id)))

    @router.put(item, name=f"update_{kind.value}_pool", openapi_extra=body_schema(UpdatePoolParams))
    async def update_entity_pool(
        entity_id: str, pool_id: str, request: Request, _auth: AdminUser, ctx: ContextDep
    ) -> Response:
        params = await decode_body(request, UpdatePoolParams)
        return GoJSONResponse(await service.update_pool(ctx.store, pool_id, params, (kind, entity_id)))

    @router.delete(item, name=f"delete_{kind.value}_pool")
    async def delete_entity_pool(entity_id: str, pool_id: str, _auth: AdminUser, ctx: ContextDep) -> Response:
        await service.delete_pool(ctx.store, pool_id, (kind, entity_id))
        return empty_json_response()


for _kind in EntityKind:
    _mount(_kind)
