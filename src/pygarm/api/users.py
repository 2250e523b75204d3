"""User management, a pygarm extension (GARM v0.1.5 has none): ``/api/v1/users`` (``docs/users.md``).

The routes sit on GARM's ``apiRouter`` chain like every other resource (init → URLs → JWT → admin) and
answer with GARM's ``User`` shape (docs/garm-protocol.md#user), which has no password hash or generation.
"""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from pygarm.api.deps import AdminUser, StoreDep
from pygarm.api.responses import GoJSONResponse
from pygarm.api.routing import GarmRouter, body_schema, decode_body
from pygarm.params.requests import UpdateUserParams, UserPasswordParams
from pygarm.runner import user_admin

router = GarmRouter(tags=["users"])


@router.get("/users")
async def list_users(_auth: AdminUser, store: StoreDep) -> Response:
    return GoJSONResponse(await store.list_users())


@router.get("/users/{user_id}")
async def get_user(user_id: str, _auth: AdminUser, store: StoreDep) -> Response:
    user_admin.check_user_id(user_id)
    return GoJSONResponse(await store.get_user(user_id))


@router.put("/users/{user_id}", openapi_extra=body_schema(UpdateUserParams))
async def update_user(user_id: str, request: Request, _auth: AdminUser, store: StoreDep) -> Response:
    """Change ``full_name``, ``enabled`` and/or ``password``; the last enabled admin cannot be disabled."""
    user_admin.check_user_id(user_id)
    params = await decode_body(request, UpdateUserParams)
    return GoJSONResponse(await user_admin.update_user(store, user_id, params))


@router.put("/users/{user_id}/password", openapi_extra=body_schema(UserPasswordParams))
async def change_password(user_id: str, request: Request, _auth: AdminUser, store: StoreDep) -> Response:
    """Set a new password (zxcvbn score 4, as first-run); every older token of that user stops working."""
    user_admin.check_user_id(user_id)
    params = await decode_body(request, UserPasswordParams)
    return GoJSONResponse(await user_admin.change_password(store, user_id, params.password))
