"""``GET /api/v1/jobs`` (docs/garm-protocol.md#rest-routes): every recorded workflow job, ``[]`` when there
are none."""

from __future__ import annotations

from starlette.responses import Response

from pygarm.api.deps import AdminUser, ContextDep
from pygarm.api.responses import GoJSONResponse
from pygarm.api.routing import GarmRouter

router = GarmRouter(tags=["jobs"])


@router.get("/jobs")
async def list_all_jobs(_auth: AdminUser, ctx: ContextDep) -> Response:
    return GoJSONResponse(await ctx.store.list_all_jobs())
