"""The application factory: one lifespan builds the store, the events hub and the services, and tears
them down in reverse order. There are no module-level singletons; tests build as many apps as they like.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from pygarm.api import auth, controller, credentials, endpoints, entities, instances, jobs, pools, users
from pygarm.api.deps import AdminUser, AppContext, AuthRejected, handle_auth_rejected
from pygarm.api.errors import NOT_FOUND_ROUTE, handle_garm_error, handle_unexpected_error
from pygarm.api.responses import GoJSONResponse
from pygarm.api.routing import GarmRouter
from pygarm.config import Settings
from pygarm.errors import GarmError
from pygarm.runner.auth import Authenticator, TokenService
from pygarm.store.crypto import Sealer
from pygarm.store.db import Database
from pygarm.store.migrate import upgrade_to_head
from pygarm.store.store import Store
from pygarm.version import __version__

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


async def _seed_controller_urls(store: Store, settings: Settings) -> None:
    """GARM fills empty controller URLs from ``[default]`` at start-up (spec §8.2)."""
    info = await store.get_controller_info()
    seeds = {
        "callback_url": (info.callback_url, settings.default.callback_url),
        "metadata_url": (info.metadata_url, settings.default.metadata_url),
        "webhook_url": (info.webhook_url, settings.default.webhook_url),
    }
    changes = {key: seed for key, (current, seed) in seeds.items() if not current and seed}
    if changes:
        await store.update_controller(**changes)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    db = Database(settings.database.url, echo=settings.database.debug)
    await asyncio.to_thread(upgrade_to_head, db.engine)
    store = Store(db, Sealer(settings.database.passphrase))
    await store.init_controller()
    await store.ensure_default_endpoint()
    await _seed_controller_urls(store, settings)
    tokens = TokenService(settings.jwt_auth.secret, settings.jwt_auth.ttl_seconds)
    app.state.ctx = AppContext(
        settings=settings,
        store=store,
        auth=Authenticator(store, tokens),
        hub=None,
        services={},
    )
    try:
        yield
    finally:
        db.set_commit_listener(None)
        await asyncio.to_thread(db.close)


def _catch_all_router() -> GarmRouter:
    """Unknown ``/api/v1`` routes answer GARM's 404 JSON, but only after the auth chain (spec §5.4)."""
    router = GarmRouter()

    @router.api_route(
        API_PREFIX + "/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"], include_in_schema=False
    )
    async def not_found(_auth: AdminUser, path: str) -> Response:
        return GoJSONResponse(NOT_FOUND_ROUTE, status_code=404)

    return router


async def _http_exception(_request: Request, exc: Exception) -> Response:
    """Outside GARM's routes: Go's plain 404 and gorilla's empty 405."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return PlainTextResponse("404 page not found\n", status_code=404)
    if exc.status_code == 405:
        return Response(status_code=405)
    return PlainTextResponse(str(exc.detail), status_code=exc.status_code)


def create_app(settings: Settings, **state: Any) -> FastAPI:
    """Build the ASGI app for ``settings``; extra keyword arguments land on ``app.state``."""
    app = FastAPI(
        title="pygarm",
        version=__version__,
        description="GARM v0.1.5-compatible GitHub Actions runner manager with a durable events stream.",
        lifespan=lifespan,
        redirect_slashes=False,
        default_response_class=GoJSONResponse,
    )
    app.state.settings = settings
    for key, value in state.items():
        setattr(app.state, key, value)
    app.add_exception_handler(AuthRejected, handle_auth_rejected)
    app.add_exception_handler(GarmError, handle_garm_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, handle_unexpected_error)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return GoJSONResponse({"status": "ok"})

    for module in (auth, controller, endpoints, credentials, users, entities, pools, instances, jobs):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(_catch_all_router())
    return app
