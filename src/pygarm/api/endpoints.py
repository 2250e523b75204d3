"""GitHub endpoints: ``/api/v1/github/endpoints`` (docs/garm-protocol.md#github-endpoint,
docs/garm-protocol.md#rest-routes)."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from pygarm.api.deps import AdminUser, StoreDep
from pygarm.api.responses import GoJSONResponse, no_content
from pygarm.api.routing import GarmRouter, body_schema, decode_body
from pygarm.params.github_requests import CreateGithubEndpointParams, UpdateGithubEndpointParams
from pygarm.runner import github_admin

router = GarmRouter(tags=["endpoints"])


@router.get("/github/endpoints")
async def list_endpoints(_auth: AdminUser, store: StoreDep) -> Response:
    """Go encodes its nil slice as ``null``; ``github.com`` cannot be deleted, so this is never empty."""
    endpoints = await store.list_endpoints()
    return GoJSONResponse(endpoints or None)


@router.post("/github/endpoints", openapi_extra=body_schema(CreateGithubEndpointParams))
async def create_endpoint(request: Request, _auth: AdminUser, store: StoreDep) -> Response:
    params = await decode_body(request, CreateGithubEndpointParams)
    return GoJSONResponse(await github_admin.create_endpoint(store, params))


@router.get("/github/endpoints/{name}")
async def get_endpoint(name: str, _auth: AdminUser, store: StoreDep) -> Response:
    return GoJSONResponse(await store.get_endpoint(name))


@router.put("/github/endpoints/{name}", openapi_extra=body_schema(UpdateGithubEndpointParams))
async def update_endpoint(name: str, request: Request, _auth: AdminUser, store: StoreDep) -> Response:
    params = await decode_body(request, UpdateGithubEndpointParams)
    return GoJSONResponse(await github_admin.update_endpoint(store, name, params))


@router.delete("/github/endpoints/{name}", status_code=204)
async def delete_endpoint(name: str, _auth: AdminUser, store: StoreDep) -> Response:
    """204 with no body, also for a name that does not exist (GARM's delete is idempotent)."""
    await store.delete_endpoint(name)
    return no_content()
