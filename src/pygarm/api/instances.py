"""Runner instances (docs/garm-protocol.md#rest-routes): list them per pool, per entity or all, show one, mark
one for deletion.

Lists answer ``[]`` when empty and show each instance with its job but without addresses and status
messages; ``GET /instances/{name}`` shows everything (docs/garm-protocol.md#instance).
"""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from pygarm.api.deps import AdminUser, ContextDep
from pygarm.api.entities import pool_managers
from pygarm.api.responses import GoJSONResponse, empty_json_response
from pygarm.api.routing import GarmRouter
from pygarm.runner import instances as service
from pygarm.store.entity_kinds import KINDS, EntityKind

router = GarmRouter(tags=["instances"])


def _query_flag(request: Request, name: str) -> bool:
    """Go's ``r.URL.Query().Get(name)`` (the first value) read by ``strconv.ParseBool``."""
    values = request.query_params.getlist(name)
    return service.parse_go_bool(values[0] if values else None)


@router.get("/pools/{pool_id}/instances")
async def list_pool_instances(pool_id: str, _auth: AdminUser, ctx: ContextDep) -> Response:
    return GoJSONResponse(await ctx.store.list_pool_instances(pool_id))


@router.get("/instances")
async def list_all_instances(_auth: AdminUser, ctx: ContextDep) -> Response:
    return GoJSONResponse(await ctx.store.list_all_instances())


@router.get("/instances/{instance_name}")
async def get_instance(instance_name: str, _auth: AdminUser, ctx: ContextDep) -> Response:
    return GoJSONResponse(await ctx.store.get_instance(instance_name))


@router.delete("/instances/{instance_name}")
async def delete_instance(
    instance_name: str, request: Request, _auth: AdminUser, ctx: ContextDep
) -> Response:
    """Marks the runner ``pending_delete``/``pending_force_delete`` (one ``instance/update``); see
    :mod:`pygarm.runner.instances` for the checks and the 409 without a running pool manager."""
    await service.delete_instance(
        ctx.store,
        instance_name,
        force_remove=_query_flag(request, "forceRemove"),
        bypass_gh_unauthorized=_query_flag(request, "bypassGHUnauthorized"),
        managers=pool_managers(ctx),
    )
    return empty_json_response()


def _mount(kind: EntityKind) -> None:
    path = "/" + KINDS[kind].api_collection + "/{entity_id}/instances"

    @router.get(path, name=f"list_{kind.value}_instances")
    async def list_entity_instances(entity_id: str, _auth: AdminUser, ctx: ContextDep) -> Response:
        return GoJSONResponse(await ctx.store.list_entity_instances(kind, entity_id))


for _kind in EntityKind:
    _mount(_kind)
