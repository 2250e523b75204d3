"""The instance authentication chain of ``/api/v1/callbacks`` and ``/api/v1/metadata``
(docs/garm-protocol.md#instance-auth, ``garm@v0.1.5 auth/instance_middleware.go``).

A runner presents the JWT it got in its ``BootstrapInstance`` (``runner/instance_token.py``). The checks
run in GARM's order, and every failure is the same 401 ``{"error":"Authentication failed","details":""}``
so that a caller learns nothing about which check failed:

1. ``Authorization`` present and exactly two space-separated words (the first is not checked);
2. the token verifies (HMAC, signature, not expired);
3. its ``name`` claim is non-empty and names an existing instance (``id``/``provider_id`` are unused);
4. the instance's ``runner_status`` is ``pending`` or ``installing``;
5. the ``create_attempt`` claim equals the instance's current attempt (tokens of earlier attempts die);
6. the instance's ``status`` is ``creating`` or ``running``.

Check 4 is why a runner can talk to pygarm only while it installs: once it reports ``idle`` (or
``failed``) its token is useless, so a leaked token cannot be replayed later. These routes have no
init/URLs/user-JWT checks, as in GARM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends
from starlette.requests import Request

from pygarm.api.deps import AuthRejected, bearer_token, get_context
from pygarm.api.errors import AUTHENTICATION_FAILED
from pygarm.api.responses import GoJSONResponse
from pygarm.errors import NotFoundError, UnauthorizedError
from pygarm.runner.instance_token import InstanceClaims, InstanceTokenService
from pygarm.store.instances import InstanceRecord

INSTANCE_TOKENS_SERVICE: Final = "instance_tokens"
"""Key of the shared :class:`InstanceTokenService` in ``AppContext.services`` (built on first use)."""
TOKEN_RUNNER_STATUSES: Final = frozenset({"pending", "installing"})
"""A runner may use its token only until it reports that it is installed (or failed)."""
TOKEN_INSTANCE_STATUSES: Final = frozenset({"creating", "running"})
"""…and only while the provider is creating it or reports it running."""


@dataclass(frozen=True, slots=True)
class InstanceAuth:
    """The authenticated instance: its row as read during authentication, and the token's claims."""

    record: InstanceRecord
    claims: InstanceClaims

    @property
    def name(self) -> str:
        return self.record.instance.name


def instance_token_service(request: Request) -> InstanceTokenService:
    """The app's instance token service, signing with ``[jwt_auth] secret`` (GARM uses the same one)."""
    ctx = get_context(request)
    service = ctx.services.get(INSTANCE_TOKENS_SERVICE)
    if not isinstance(service, InstanceTokenService):
        service = InstanceTokenService(ctx.settings.jwt_auth.secret)
        ctx.services[INSTANCE_TOKENS_SERVICE] = service
    return service


def _rejected() -> AuthRejected:
    return AuthRejected(GoJSONResponse(AUTHENTICATION_FAILED, status_code=401))


async def require_instance(request: Request) -> InstanceAuth:
    """Run the six checks; raise GARM's 401 on the first that fails."""
    token = bearer_token(request)
    if not token:
        raise _rejected()
    try:
        claims = instance_token_service(request).verify(token)
    except UnauthorizedError:
        raise _rejected() from None
    if not claims.name:
        raise _rejected()
    try:
        record = await get_context(request).store.get_instance_record(claims.name)
    except NotFoundError:
        raise _rejected() from None
    instance = record.instance
    if instance.runner_status not in TOKEN_RUNNER_STATUSES:
        raise _rejected()
    if claims.create_attempt != record.create_attempt:
        raise _rejected()
    if instance.status not in TOKEN_INSTANCE_STATUSES:
        raise _rejected()
    return InstanceAuth(record=record, claims=claims)


AuthenticatedInstance = Annotated[InstanceAuth, Depends(require_instance)]
"""A route parameter that runs the instance authentication chain."""
