"""Repositories, organizations and enterprises (docs/garm-protocol.md#rest-routes): one set of handlers,
mounted per kind.

``GET /<entity>`` answers ``null`` when there are none (GARM returns a nil slice there,
docs/garm-protocol.md#empty-bodies-and-null-lists); ``DELETE`` answers 200 with an empty body. The
``/<entity>/{id}/webhook`` routes live elsewhere.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from pygarm.api.deps import AdminUser, AppContext, ContextDep
from pygarm.api.responses import GoJSONResponse, empty_json_response
from pygarm.api.routing import GarmRouter, body_schema, decode_body
from pygarm.params.entity_requests import (
    CreateEnterpriseParams,
    CreateEntityParams,
    CreateOrgParams,
    CreateRepoParams,
    UpdateEntityParams,
)
from pygarm.runner import entities as service
from pygarm.store.entity_kinds import KINDS, EntityKind

router = GarmRouter(tags=["entities"])

CREATE_PARAMS: dict[EntityKind, type[CreateEntityParams]] = {
    EntityKind.REPOSITORY: CreateRepoParams,
    EntityKind.ORGANIZATION: CreateOrgParams,
    EntityKind.ENTERPRISE: CreateEnterpriseParams,
}

POOL_MANAGERS_SERVICE = "pool_managers"
"""Key of the pool-manager registry in ``AppContext.services``, once there is one."""


def pool_managers(ctx: AppContext) -> Any:
    """The pool-manager registry, or ``None`` while there is none (every entity reports not running)."""
    return ctx.services.get(POOL_MANAGERS_SERVICE)


def _mount(kind: EntityKind) -> None:
    collection = "/" + KINDS[kind].api_collection
    item = collection + "/{entity_id}"
    create_params = CREATE_PARAMS[kind]

    @router.get(collection, name=f"list_{kind.value}")
    async def list_entities(_auth: AdminUser, ctx: ContextDep) -> Response:
        return GoJSONResponse(await service.list_entities(ctx.store, kind, pool_managers(ctx)) or None)

    @router.post(collection, name=f"create_{kind.value}", openapi_extra=body_schema(create_params))
    async def create_entity(request: Request, _auth: AdminUser, ctx: ContextDep) -> Response:
        params = await decode_body(request, create_params)
        return GoJSONResponse(await service.create_entity(ctx.store, kind, params))

    @router.get(item, name=f"get_{kind.value}")
    async def get_entity(entity_id: str, _auth: AdminUser, ctx: ContextDep) -> Response:
        return GoJSONResponse(await service.get_entity(ctx.store, kind, entity_id, pool_managers(ctx)))

    @router.put(item, name=f"update_{kind.value}", openapi_extra=body_schema(UpdateEntityParams))
    async def update_entity(entity_id: str, request: Request, _auth: AdminUser, ctx: ContextDep) -> Response:
        params = await decode_body(request, UpdateEntityParams)
        entity = await service.update_entity(ctx.store, kind, entity_id, params, pool_managers(ctx))
        return GoJSONResponse(entity)

    @router.delete(item, name=f"delete_{kind.value}")
    async def delete_entity(entity_id: str, _auth: AdminUser, ctx: ContextDep) -> Response:
        """``?keepWebhook=`` only matters with webhook management, which is not handled here."""
        await service.delete_entity(ctx.store, kind, entity_id)
        return empty_json_response()


for _kind in EntityKind:
    _mount(_kind)
