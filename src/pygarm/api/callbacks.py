"""``/api/v1/callbacks``: what an installing runner reports (docs/garm-protocol.md#callbacks).

Both routes answer 200 with ``Content-Type: application/json`` and an empty body, accept a trailing
slash (the bootstrap script posts to ``…/system-info/``), and are guarded only by the instance token
(``api/instance_auth.py``). A body Go's decoder would reject is 400 ``invalid request``.
"""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from pygarm.api.deps import ContextDep
from pygarm.api.instance_auth import AuthenticatedInstance
from pygarm.api.responses import empty_json_response
from pygarm.api.routing import GarmRouter, body_schema, decode_body
from pygarm.params.github_webhook import InstanceUpdateMessage, UpdateSystemInfoParams
from pygarm.runner import metadata as service

router = GarmRouter(tags=["callbacks"])


@router.post("/callbacks/status", openapi_extra=body_schema(InstanceUpdateMessage))
async def instance_status(request: Request, instance: AuthenticatedInstance, ctx: ContextDep) -> Response:
    """Appends a status message and sets ``runner_status``/``agent_id``: one ``instance/update``."""
    message = await decode_body(request, InstanceUpdateMessage)
    await service.record_status(ctx.store, instance.record, message)
    return empty_json_response()


@router.post("/callbacks/system-info", openapi_extra=body_schema(UpdateSystemInfoParams))
async def instance_system_info(
    request: Request, instance: AuthenticatedInstance, ctx: ContextDep
) -> Response:
    """Sets ``os_name``/``os_version``/``agent_id``; no event when the body carries none of them."""
    info = await decode_body(request, UpdateSystemInfoParams)
    await service.record_system_info(ctx.store, instance.record, info)
    return empty_json_response()
