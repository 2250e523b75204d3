"""``POST/DELETE/GET /api/v1/{repositories|organizations}/{id}/webhook`` (docs/garm-protocol.md#rest-routes):
manage the controller's ``workflow_job`` hook on GitHub.

GARM registers these routes only with ``[default] enable_webhook_management = true``. pygarm registers
them always and, when management is off, answers exactly as an unregistered route would: the admin auth
chain first, then the catch-all 404 ``{"error":"Not found","details":"Resource not found"}``. No events:
nothing in pygarm's database changes.
"""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from pygarm.api.deps import AdminUser, AppContext, ContextDep
from pygarm.api.errors import NOT_FOUND_ROUTE
from pygarm.api.responses import GoJSONResponse, empty_json_response
from pygarm.api.routing import GarmRouter, body_schema, decode_body
from pygarm.params.github_webhook import InstallWebhookParams
from pygarm.runner import webhook_management as service
from pygarm.runner.metrics import garm_counters
from pygarm.store.entity_kinds import KINDS, EntityKind

router = GarmRouter(tags=["webhooks"])


def _disabled(ctx: AppContext) -> Response | None:
    if ctx.settings.default.enable_webhook_management:
        return None
    return GoJSONResponse(NOT_FOUND_ROUTE, status_code=404)


def _mount(kind: EntityKind) -> None:
    path = "/" + KINDS[kind].api_collection + "/{entity_id}/webhook"

    @router.post(path, name=f"install_{kind.value}_webhook", openapi_extra=body_schema(InstallWebhookParams))
    async def install_webhook(
        entity_id: str, request: Request, _auth: AdminUser, ctx: ContextDep
    ) -> Response:
        """Creates the hook on ``<webhook_url>/<controller_id>`` and pings it; 409 if one exists."""
        if (disabled := _disabled(ctx)) is not None:
            return disabled
        params = await decode_body(request, InstallWebhookParams)
        return GoJSONResponse(
            await service.install(ctx.store, kind, entity_id, params, garm_counters(ctx.services))
        )

    @router.delete(path, name=f"uninstall_{kind.value}_webhook")
    async def uninstall_webhook(entity_id: str, _auth: AdminUser, ctx: ContextDep) -> Response:
        """Deletes the controller's hook; a hook on the bare ``webhook_url`` must be deleted by hand."""
        if (disabled := _disabled(ctx)) is not None:
            return disabled
        await service.uninstall(ctx.store, kind, entity_id, garm_counters(ctx.services))
        return empty_json_response()

    @router.get(path, name=f"get_{kind.value}_webhook")
    async def get_webhook(entity_id: str, _auth: AdminUser, ctx: ContextDep) -> Response:
        if (disabled := _disabled(ctx)) is not None:
            return disabled
        return GoJSONResponse(await service.info(ctx.store, kind, entity_id, garm_counters(ctx.services)))


for _kind in service.HOOK_KINDS:
    _mount(_kind)
