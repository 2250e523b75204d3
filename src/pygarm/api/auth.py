"""First run and login (docs/garm-protocol.md#login, docs/garm-protocol.md#first-run): the only routes that
need no token."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from pygarm.api.deps import ContextDep
from pygarm.api.responses import GoJSONResponse
from pygarm.api.routing import GarmRouter, body_schema, decode_body
from pygarm.errors import ConflictError
from pygarm.params.models import JWTResponse
from pygarm.params.requests import NewUserParams, PasswordLoginParams

router = GarmRouter(tags=["auth"])


@router.post("/first-run", openapi_extra=body_schema(NewUserParams))
async def first_run(request: Request, ctx: ContextDep) -> Response:
    """Create the admin user; GARM answers 409 before even reading the body once one exists."""
    if await ctx.store.has_admin_user():
        raise ConflictError("already initialized")
    params = await decode_body(request, NewUserParams)
    user = await ctx.auth.first_run(
        username=params.username, email=params.email, full_name=params.full_name, password=params.password
    )
    return GoJSONResponse(user)


@router.post("/auth/login", openapi_extra=body_schema(PasswordLoginParams))
async def login(request: Request, ctx: ContextDep) -> Response:
    params = await decode_body(request, PasswordLoginParams)
    address = request.client.host if request.client else ""
    token = await ctx.auth.login(params.username, params.password, address=address)
    return GoJSONResponse(JWTResponse(token=token))
