"""``/webhooks`` and ``/webhooks/{controller_id}`` (with or without a trailing slash, any method, no
auth): where GitHub posts ``workflow_job`` events (docs/garm-protocol.md#webhook-routes; GARM's
``WebhookHandler``).

The route only sorts deliveries; :mod:`pygarm.runner.webhooks` decides. Ignored deliveries answer 200
with an empty body so that GitHub does not mark the hook as failing: a path whose controller ID is not
this controller's (another GARM shares the hook's URL prefix), and any event other than
``workflow_job`` (``ping`` when a hook is created). Errors are GARM's (docs/garm-protocol.md#error-mapping).
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from pygarm.api.deps import AppContext, ContextDep
from pygarm.api.entities import pool_managers
from pygarm.api.responses import empty_json_response
from pygarm.api.routing import GarmRouter
from pygarm.errors import BadRequestError
from pygarm.runner.metrics import garm_counters
from pygarm.runner.webhooks import WORKFLOW_JOB_EVENT, WebhookService

WEBHOOK_SERVICE: Final = "webhooks"
"""Key of the app's :class:`WebhookService` in ``AppContext.services`` (built on first use)."""
ANY_METHOD: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MAX_BODY_BYTES: Final = 25 * 1024 * 1024
"""GitHub caps webhook payloads at 25 MB; the route is unauthenticated until the signature is checked,
so a larger body is refused (400 ``invalid request``) before it is held in memory (GARM reads any size)."""

router = GarmRouter(tags=["webhooks"])


def webhook_service(ctx: AppContext) -> WebhookService:
    service = ctx.services.get(WEBHOOK_SERVICE)
    if not isinstance(service, WebhookService):
        service = WebhookService(ctx.store, lambda: pool_managers(ctx))
        ctx.services[WEBHOOK_SERVICE] = service
    return service


async def _read_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequestError("invalid request")
        chunks.append(chunk)
    return b"".join(chunks)


async def _handle(request: Request, ctx: AppContext, controller_id: str | None) -> Response:
    if controller_id is not None:
        info = await ctx.store.get_controller_info()
        if controller_id != info.controller_id:
            return empty_json_response()
    if request.headers.get("x-github-event", "") != WORKFLOW_JOB_EVENT:
        return empty_json_response()
    body = await _read_body(request)  # a body that cannot be read is not counted, as in GARM
    counters = garm_counters(ctx.services)
    try:
        handled = await webhook_service(ctx).dispatch(
            body,
            signature=request.headers.get("x-hub-signature-256", ""),
            target_type=request.headers.get("x-github-hook-installation-target-type", ""),
        )
    except Exception as exc:
        if counters is not None:  # garm@v0.1.5 apiserver/controllers/controllers.go:114-126
            counters.webhook(False, "signature_invalid" if "signature" in str(exc) else "unknown")
        raise
    if counters is not None:
        counters.webhook(handled, "" if handled else "owner_unknown")
    return empty_json_response()


# GitHub POSTs; GARM answers any method the same way. Only POST goes in the OpenAPI document (one
# operation per method would repeat the operation ID).
_OTHER_METHODS = [method for method in ANY_METHOD if method != "POST"]


@router.api_route("/webhooks", methods=["POST"])
@router.api_route("/webhooks", methods=_OTHER_METHODS, include_in_schema=False)
async def webhook(request: Request, ctx: ContextDep) -> Response:
    return await _handle(request, ctx, None)


@router.api_route("/webhooks/{controller_id}", methods=["POST"])
@router.api_route("/webhooks/{controller_id}", methods=_OTHER_METHODS, include_in_schema=False)
async def controller_webhook(controller_id: str, request: Request, ctx: ContextDep) -> Response:
    return await _handle(request, ctx, controller_id)
