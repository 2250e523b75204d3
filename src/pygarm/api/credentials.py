"""GitHub credentials: ``/api/v1/github/credentials`` and the legacy ``/api/v1/credentials``
(docs/garm-protocol.md#github-credentials).

No response or event carries the PAT or the App private key: the wire model has no field for them.
"""

from __future__ import annotations

import re

from fastapi import Request
from starlette.responses import Response

from pygarm.api.deps import AdminUser, StoreDep
from pygarm.api.responses import GoJSONResponse, no_content
from pygarm.api.routing import GarmRouter, body_schema, decode_body
from pygarm.errors import BadRequestError
from pygarm.params.github_requests import CreateGithubCredentialsParams, UpdateGithubCredentialsParams
from pygarm.runner import github_admin

router = GarmRouter(tags=["credentials"])

_UINT = re.compile(r"[0-9]+")
_UINT64_MAX = 2**64 - 1


def parse_credentials_id(value: str) -> int:
    """``strconv.ParseUint(id, 10, 64)``: ASCII digits only, no sign, at most 2^64-1; anything else is
    400 ``invalid request`` (docs/garm-protocol.md#error-mapping)."""
    if not _UINT.fullmatch(value) or int(value) > _UINT64_MAX:
        raise BadRequestError("invalid request")
    return int(value)


async def _list(store: StoreDep) -> Response:
    """Go's nil slice: ``null`` when there are no credentials
    (docs/garm-protocol.md#empty-bodies-and-null-lists)."""
    return GoJSONResponse(await store.list_credentials() or None)


@router.get("/credentials")
async def list_credentials_legacy(_auth: AdminUser, store: StoreDep) -> Response:
    return await _list(store)


@router.get("/github/credentials")
async def list_credentials(_auth: AdminUser, store: StoreDep) -> Response:
    return await _list(store)


@router.post("/github/credentials", openapi_extra=body_schema(CreateGithubCredentialsParams))
async def create_credentials(request: Request, auth: AdminUser, store: StoreDep) -> Response:
    params = await decode_body(request, CreateGithubCredentialsParams)
    return GoJSONResponse(await github_admin.create_credentials(store, auth.user_id, params))


@router.get("/github/credentials/{credentials_id}")
async def get_credentials(credentials_id: str, _auth: AdminUser, store: StoreDep) -> Response:
    """The detailed view: the repositories, organizations and enterprises using these credentials."""
    return GoJSONResponse(await store.get_credentials(parse_credentials_id(credentials_id), detailed=True))


@router.put("/github/credentials/{credentials_id}", openapi_extra=body_schema(UpdateGithubCredentialsParams))
async def update_credentials(
    credentials_id: str, request: Request, _auth: AdminUser, store: StoreDep
) -> Response:
    parsed_id = parse_credentials_id(credentials_id)  # GARM parses the id before decoding the body
    params = await decode_body(request, UpdateGithubCredentialsParams)
    return GoJSONResponse(await github_admin.update_credentials(store, parsed_id, params))


@router.delete("/github/credentials/{credentials_id}", status_code=204)
async def delete_credentials(credentials_id: str, _auth: AdminUser, store: StoreDep) -> Response:
    """204 with no body, also for an id that does not exist (GARM's delete is idempotent)."""
    await store.delete_credentials(parse_credentials_id(credentials_id))
    return no_content()
