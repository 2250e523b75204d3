"""Request dependencies: the application context and GARM's middleware chain
(docs/garm-protocol.md#auth-chains).

GARM runs, outermost first: init-required → urls-required → JWT → admin. pygarm checks the same things
in the same order, as dependencies, so the status a caller sees for a given mistake is GARM's. The
websocket routes call :func:`authenticate_admin` before accepting, which is why it works on any
``HTTPConnection``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response

from pygarm.api.errors import AUTHENTICATION_FAILED, INIT_REQUIRED, URLS_REQUIRED
from pygarm.api.responses import GoJSONResponse
from pygarm.api.ui import session_token
from pygarm.config import Settings
from pygarm.errors import GarmError, UnauthorizedError
from pygarm.runner.auth import AuthContext, Authenticator
from pygarm.store.store import Store


@dataclass
class AppContext:
    """Everything the routes need, built once in the lifespan and kept on ``app.state.ctx``."""

    settings: Settings
    store: Store
    auth: Authenticator
    hub: Any
    services: dict[str, Any]


class AuthRejected(Exception):
    """The request failed one of the middleware checks; ``response`` is GARM's answer for it."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def get_context(conn: HTTPConnection) -> AppContext:
    ctx: AppContext = conn.app.state.ctx
    return ctx


def get_store(conn: HTTPConnection) -> Store:
    return get_context(conn).store


def bearer_token(conn: HTTPConnection) -> str | None:
    """GARM splits the header on single spaces and takes the second of exactly two parts; the first
    word is not checked (docs/garm-protocol.md#websocket-auth). Without the header, the dashboard's
    session cookie counts where :func:`pygarm.api.ui.session_token` allows it."""
    header = conn.headers.get("authorization")
    if header is None:
        return session_token(conn)  # the dashboard's cookie, where it may stand in (api/ui.py)
    parts = header.split(" ")
    return parts[1] if len(parts) == 2 else None


async def require_init(conn: HTTPConnection) -> None:
    try:
        await get_store(conn).get_controller_info()
    except GarmError as exc:
        raise AuthRejected(GoJSONResponse(INIT_REQUIRED, status_code=409)) from exc


async def require_urls(conn: HTTPConnection) -> None:
    store = get_store(conn)
    info = await store.get_controller_info()
    if info.metadata_url and info.callback_url and info.webhook_url:
        return
    # Before refusing, read the row itself: with replicas, the URLs may have just been set on another
    # one, whose commit this process's cache has not heard of yet.
    info = await store.get_controller_info(fresh=True)
    if not (info.metadata_url and info.callback_url and info.webhook_url):
        raise AuthRejected(GoJSONResponse(URLS_REQUIRED, status_code=409))


async def require_user(conn: HTTPConnection) -> AuthContext:
    token = bearer_token(conn)
    if not token:
        raise AuthRejected(GoJSONResponse(AUTHENTICATION_FAILED, status_code=401))
    try:
        return await get_context(conn).auth.authenticate(token)
    except UnauthorizedError as exc:
        raise AuthRejected(GoJSONResponse(AUTHENTICATION_FAILED, status_code=401)) from exc


def require_admin_flag(auth: AuthContext) -> AuthContext:
    """GARM's AdminRequiredMiddleware answers non-admins with plain-text ``Unauthorized``."""
    if not auth.is_admin:
        raise AuthRejected(PlainTextResponse("Unauthorized\n", status_code=401))
    return auth


async def authenticate_admin(conn: HTTPConnection, *, urls_required: bool = True) -> AuthContext:
    """The whole chain for an ``/api/v1`` route: init → urls → JWT → admin."""
    await require_init(conn)
    if urls_required:
        await require_urls(conn)
    return require_admin_flag(await require_user(conn))


async def authenticate_ws(conn: HTTPConnection) -> AuthContext | Response:
    """Before a websocket upgrade: the same chain as REST, answering with GARM's HTTP response."""
    try:
        return await authenticate_admin(conn)
    except AuthRejected as exc:
        return exc.response


async def _api_admin(request: Request) -> AuthContext:
    return await authenticate_admin(request)


async def _controller_admin(request: Request) -> AuthContext:
    """The ``/api/v1/controller`` group skips the URLs check, so the URLs can be set at all."""
    return await authenticate_admin(request, urls_required=False)


async def _store(request: Request) -> Store:
    return get_store(request)


async def _context(request: Request) -> AppContext:
    return get_context(request)


AdminUser = Annotated[AuthContext, Depends(_api_admin)]
"""An authenticated admin on a route of GARM's ``apiRouter`` group."""
ControllerAdmin = Annotated[AuthContext, Depends(_controller_admin)]
"""An authenticated admin on the controller routes (no URLs check)."""
StoreDep = Annotated[Store, Depends(_store)]
ContextDep = Annotated[AppContext, Depends(_context)]


async def handle_auth_rejected(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthRejected)
    return exc.response
