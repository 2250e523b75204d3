"""``/api/v1/metadata``: what an installing runner downloads (docs/garm-protocol.md#metadata).

Content types are GARM's, byte for byte: the registration token is the raw token with
``Content-Type: application/json`` (it is not JSON-encoded), JIT files are ``octet-stream`` attachments
named ``.<file>``, the service name and the systemd unit are ``text/plain`` (no charset), and the CA
bundle is JSON. Every route is ``GET`` with and without a trailing slash, behind the instance token.
"""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from pygarm.api.deps import ContextDep
from pygarm.api.instance_auth import AuthenticatedInstance
from pygarm.api.responses import GoJSONResponse
from pygarm.api.routing import GarmRouter
from pygarm.runner import metadata as service
from pygarm.runner.metrics import garm_counters

router = GarmRouter(tags=["metadata"])


def _text(body: str) -> Response:
    """``text/plain`` exactly; Starlette would append ``; charset=utf-8`` to a media type."""
    return Response(body.encode(), headers={"Content-Type": "text/plain"})


@router.get("/metadata/runner-registration-token")
async def runner_registration_token(instance: AuthenticatedInstance, ctx: ContextDep) -> Response:
    token = await service.registration_token(ctx.store, instance.record, garm_counters(ctx.services))
    return Response(token.encode(), headers={"Content-Type": "application/json"})


@router.get("/metadata/credentials/{file_name}")
async def jit_credentials_file(file_name: str, instance: AuthenticatedInstance) -> Response:
    data = service.jit_file(instance.record, file_name)
    return Response(
        data,
        headers={
            "Content-Type": "octet-stream",
            "Content-Disposition": f"attachment; filename=.{file_name}",
            "Content-Length": str(len(data)),
        },
    )


@router.get("/metadata/system/service-name")
async def runner_service_name(instance: AuthenticatedInstance, ctx: ContextDep) -> Response:
    return _text(await service.service_name(ctx.store, instance.record))


@router.get("/metadata/systemd/unit-file")
async def systemd_unit_file(request: Request, instance: AuthenticatedInstance, ctx: ContextDep) -> Response:
    values = request.query_params.getlist("runAsUser")  # Go's Query().Get: the first value
    run_as_user = values[0] if values else ""
    return _text(await service.systemd_unit(ctx.store, instance.record, run_as_user))


@router.get("/metadata/system/cert-bundle")
async def root_certificate_bundle(instance: AuthenticatedInstance, ctx: ContextDep) -> Response:
    return GoJSONResponse(await service.root_certificate_bundle(ctx.store, instance.record))
