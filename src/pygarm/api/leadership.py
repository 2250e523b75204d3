"""``GET /api/v1/pygarm/leadership``: which replica runs which background job (docs/deployment.md).

A pygarm route, not GARM's: GARM clients never call it, so ``GET /api/v1/controller`` keeps GARM's exact
shape. On SQLite (one process runs everything) it answers ``{"mode": "single"}``.
"""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from pygarm.api.deps import AdminUser
from pygarm.api.responses import GoJSONResponse
from pygarm.api.routing import GarmRouter
from pygarm.runner.leases import LeaderDriver

router = GarmRouter(tags=["pygarm"])


@router.get("/pygarm/leadership")
async def get_leadership(request: Request, _auth: AdminUser) -> Response:
    driver: LeaderDriver | None = getattr(request.app.state, "leadership", None)
    if driver is None:
        return GoJSONResponse({"mode": "single"})
    snapshot = driver.snapshot
    leases = [] if snapshot is None else sorted(snapshot.leases.values(), key=lambda row: row.key)
    replicas = [] if snapshot is None else snapshot.replicas
    return GoJSONResponse(
        {
            "mode": "replicas",
            "replica": driver.me,
            "acting": sorted(driver.acting()),
            "leases": [{"key": r.key, "holder": r.holder, "expired": r.expired} for r in leases],
            "replicas": [
                {"id": r.id, "name": r.name, "live": r.live, "expires_in": round(r.expires_in, 3)}
                for r in replicas
            ],
        }
    )
