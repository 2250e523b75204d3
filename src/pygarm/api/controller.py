"""Controller info, the metrics token and the provider list (docs/garm-protocol.md#rest-routes)."""

from __future__ import annotations

import socket

from fastapi import Request
from starlette.responses import Response

from pygarm.api.deps import AdminUser, ContextDep, ControllerAdmin
from pygarm.api.responses import GoJSONResponse
from pygarm.api.routing import GarmRouter, body_schema, decode_body
from pygarm.params.models import JWTResponse, Provider
from pygarm.params.requests import UpdateControllerParams

router = GarmRouter(tags=["controller"])


@router.get("/controller")
async def get_controller(_auth: ControllerAdmin, ctx: ContextDep) -> Response:
    """Only the GET routes fill in the host name (docs/garm-protocol.md#controller-info)."""
    info = await ctx.store.get_controller_info()
    return GoJSONResponse(info.model_copy(update={"hostname": socket.gethostname()}))


@router.put("/controller", openapi_extra=body_schema(UpdateControllerParams))
async def update_controller(request: Request, _auth: ControllerAdmin, ctx: ContextDep) -> Response:
    params = await decode_body(request, UpdateControllerParams)
    params.validate_urls()
    info = await ctx.store.update_controller(
        metadata_url=params.metadata_url,
        callback_url=params.callback_url,
        webhook_url=params.webhook_url,
        minimum_job_age_backoff=params.minimum_job_age_backoff,
    )
    return GoJSONResponse(info)


@router.get("/controller-info")
async def get_controller_info_legacy(_auth: AdminUser, ctx: ContextDep) -> Response:
    """The legacy path lives on GARM's ``apiRouter``, so it does need the URLs set."""
    info = await ctx.store.get_controller_info()
    return GoJSONResponse(info.model_copy(update={"hostname": socket.gethostname()}))


@router.get("/metrics-token")
async def metrics_token(_auth: AdminUser, ctx: ContextDep) -> Response:
    return GoJSONResponse(JWTResponse(token=ctx.auth.tokens.issue_metrics_token()))


@router.get("/providers")
async def list_providers(_auth: AdminUser, ctx: ContextDep) -> Response:
    providers = [
        Provider(name=p.name, type=p.provider_type, description=p.description) for p in ctx.settings.provider
    ]
    return GoJSONResponse(providers)
