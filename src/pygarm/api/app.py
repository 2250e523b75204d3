"""The application factory: one lifespan builds the store, the events hub and the services, and tears
them down in reverse order. There are no module-level singletons (only the routes, built once and shared:
``_flat_routes``); tests build as many apps as they like.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, WebSocketRoute

from pygarm.api import (
    apidocs,
    auth,
    callbacks,
    controller,
    credentials,
    endpoints,
    entities,
    entity_webhooks,
    instances,
    jobs,
    leadership,
    metadata,
    pools,
    sse,
    ui,
    users,
    webhooks,
    ws_events,
    ws_logs,
)
from pygarm.api.accesslog import AccessLog, HTTPStats
from pygarm.api.bodylimit import BodyLimit
from pygarm.api.deps import AdminUser, AppContext, AuthRejected, authenticate_ws, handle_auth_rejected
from pygarm.api.errors import NOT_FOUND_ROUTE, handle_garm_error, handle_unexpected_error
from pygarm.api.fastroute import FastRoute
from pygarm.api.fleet import Fleet
from pygarm.api.metrics import mount_metrics, start_metrics
from pygarm.api.openapi import install as install_openapi
from pygarm.api.pathguard import PathGuard
from pygarm.api.responses import GoJSONResponse
from pygarm.api.routing import GarmRouter
from pygarm.config import Settings, parse_go_duration
from pygarm.errors import GarmError
from pygarm.events.guard import AccessGuard
from pygarm.events.hub import Hub
from pygarm.events.logstream import LogBroadcaster
from pygarm.events.metrics import StreamCollector
from pygarm.logsetup import build_formatter
from pygarm.runner.auth import Authenticator, TokenService
from pygarm.runner.login_limit import LoginLimiter
from pygarm.runner.metrics import GARM_COUNTERS_SERVICE, GarmCollector, GarmCounters
from pygarm.runner.pool import POOL_MANAGERS_SERVICE, PoolManagerRegistry
from pygarm.store.crypto import Sealer
from pygarm.store.db import Database
from pygarm.store.metrics import StoreCollector
from pygarm.store.migrate import upgrade_to_head
from pygarm.store.notify import ChangeNotifyListener
from pygarm.store.snapshot import SnapshotReader
from pygarm.store.store import Store
from pygarm.version import __version__

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


async def _seed_controller_urls(store: Store, settings: Settings) -> None:
    """GARM fills empty controller URLs from ``[default]`` at start-up (docs/garm-protocol.md#start-up)."""
    info = await store.get_controller_info()
    seeds = {
        "callback_url": (info.callback_url, settings.default.callback_url),
        "metadata_url": (info.metadata_url, settings.default.metadata_url),
        "webhook_url": (info.webhook_url, settings.default.webhook_url),
    }
    changes = {key: seed for key, (current, seed) in seeds.items() if not current and seed}
    if changes:
        await store.update_controller(
            callback_url=changes.get("callback_url"),
            metadata_url=changes.get("metadata_url"),
            webhook_url=changes.get("webhook_url"),
        )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    db = Database(
        settings.database.url,
        echo=settings.database.debug,
        synchronous_commit=settings.database.postgresql.synchronous_commit,
    )
    await asyncio.to_thread(upgrade_to_head, db.engine)
    store = Store(db, Sealer(settings.database.passphrase))
    await store.init_controller()
    await store.ensure_default_endpoint()
    await _seed_controller_urls(store, settings)
    hub = Hub(
        db.read_changes_after,
        await db.last_seq(),
        queue_limit=settings.events.queue_limit,
        poll_interval=parse_go_duration(settings.events.poll_interval),
    )
    hub.add_listener(store.cache.on_change)
    db.set_commit_listener(hub.publish)
    await hub.start()
    app.state.hub = hub
    app.state.read_changes_after = db.read_changes_after
    app.state.pruned_through = db.pruned_through
    app.state.log_last_seq = db.last_seq
    app.state.open_snapshot = SnapshotReader(db).open
    access_guard = AccessGuard(hub, store.user_token_still_valid)
    access_guard.start()
    notify_listener = None
    if settings.database.backend == "postgresql":  # other processes may write: wake on their commits
        dsn = settings.database.postgresql.dsn
        notify_listener = ChangeNotifyListener(dsn, hub.wake, db.own_backend_pids)
        notify_listener.start()
    app.state.access_guard = access_guard
    app.state.log_broadcaster = _start_log_broadcaster(settings)
    tokens = TokenService(settings.jwt_auth.secret, settings.jwt_auth.ttl_seconds)
    app.state.ctx = AppContext(
        settings=settings,
        store=store,
        auth=Authenticator(store, tokens, LoginLimiter.from_settings(settings)),
        hub=hub,
        services={},
    )
    counters = GarmCounters()  # counted whether or not /metrics is enabled, as in GARM
    app.state.ctx.services[GARM_COUNTERS_SERVICE] = counters
    pool_managers: PoolManagerRegistry | None = None
    if settings.pool_manager.enabled:  # after the hub: the registry follows it
        pool_managers = PoolManagerRegistry(store, hub, settings, counters=counters)
    fleet = Fleet(settings, db, pool_managers)  # before the registry starts: it may only run leased managers
    if pool_managers is not None:
        await pool_managers.start()
        app.state.ctx.services[POOL_MANAGERS_SERVICE] = pool_managers
    await fleet.start()
    app.state.leadership = fleet.driver
    store_collector = StoreCollector(db, lambda: hub.last_seq)
    metrics_runtime = await start_metrics(
        app,
        GarmCollector(store, settings.provider, _is_running(pool_managers), counters),
        [StreamCollector(hub), store_collector],
        [store_collector.refresh],
    )
    try:
        yield
    finally:
        await fleet.stop()  # stops this replica's background jobs, then releases their leases at once
        if metrics_runtime is not None:
            await metrics_runtime.stop()
        if pool_managers is not None:  # before the hub and the database go
            await pool_managers.stop()
        await ws_events.close_websockets(app)
        _stop_log_broadcaster(app.state.log_broadcaster)
        await access_guard.stop()
        if notify_listener is not None:
            await notify_listener.stop()
        db.set_commit_listener(None)
        await hub.stop()
        await asyncio.to_thread(db.close)


def _is_running(pool_managers: PoolManagerRegistry | None) -> Callable[[str], bool]:
    """Whether an entity's pool manager runs, for ``garm_*_pool_manager_status``."""
    if pool_managers is None:
        return lambda _entity_id: False
    return lambda entity_id: pool_managers.status(entity_id).running


def _start_log_broadcaster(settings: Settings) -> LogBroadcaster | None:
    """Stream the server's log records to admin subscribers when ``enable_log_streamer`` is on."""
    if not settings.log_streamer_enabled:
        return None
    broadcaster = LogBroadcaster(logging.getLogger().getEffectiveLevel())
    broadcaster.setFormatter(build_formatter(settings))
    broadcaster.bind()
    logging.getLogger().addHandler(broadcaster)
    return broadcaster


def _stop_log_broadcaster(broadcaster: LogBroadcaster | None) -> None:
    if broadcaster is not None:
        logging.getLogger().removeHandler(broadcaster)
        broadcaster.stop()


@functools.cache  # one router, so that its flat routes are built once too
def _catch_all_router() -> GarmRouter:
    """Unknown ``/api/v1`` routes answer GARM's 404 JSON, but only after the auth chain
    (docs/garm-protocol.md#unknown-routes)."""
    router = GarmRouter()

    @router.api_route(
        API_PREFIX + "/{path:path}",
        methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        include_in_schema=False,
    )
    async def not_found(_auth: AdminUser, path: str) -> Response:
        return GoJSONResponse(NOT_FOUND_ROUTE, status_code=404)

    return router


async def _http_exception(_request: Request, exc: Exception) -> Response:
    """Outside GARM's routes: Go's plain 404 and gorilla's empty 405."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        # Go's http.NotFound (gorilla's default), which also sets nosniff
        return PlainTextResponse(
            "404 page not found\n", status_code=404, headers={"X-Content-Type-Options": "nosniff"}
        )
    if exc.status_code == 405:
        return Response(status_code=405)
    return PlainTextResponse(str(exc.detail), status_code=exc.status_code)


NO_NATIVE_TELEMETRY: Final = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
"""FastAPI >= 0.142 instruments every request for OpenTelemetry and checks the global providers per
request even when none is configured; pygarm has its own metrics and access log
(docs/observability.md), so its documented ``telemetry`` setting turns that off (docs/performance.md)."""


def _without_native_telemetry() -> dict[str, Any]:
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": dict(NO_NATIVE_TELEMETRY)}
    return {}  # an older FastAPI has no such instrumentation


def create_app(settings: Settings, **state: Any) -> FastAPI:
    """Build the ASGI app for ``settings``; extra keyword arguments land on ``app.state``."""
    app = FastAPI(
        title="pygarm",
        version=__version__,
        description="GARM v0.1.5-compatible GitHub Actions runner manager with a durable events stream.",
        lifespan=lifespan,
        redirect_slashes=False,
        default_response_class=GoJSONResponse,
        docs_url=None,  # served from packaged assets instead of a CDN: api/apidocs.py
        redoc_url=None,
        **_without_native_telemetry(),
    )
    app.router.route_class = FastRoute  # for the routes added on the app itself; api/fastroute.py says why
    app.state.settings = settings
    app.state.authenticate_ws = authenticate_ws
    app.state.open_sockets = ws_events.OpenSockets()
    for key, value in state.items():
        setattr(app.state, key, value)
    app.add_exception_handler(AuthRejected, handle_auth_rejected)
    app.add_exception_handler(GarmError, handle_garm_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, handle_unexpected_error)
    app.add_middleware(PathGuard)
    app.add_middleware(BodyLimit)
    app.state.http_stats = HTTPStats()
    app.add_middleware(AccessLog, stats=app.state.http_stats)  # outermost: sees every final status

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return GoJSONResponse({"status": "ok"})

    rest = (pools, entities, instances, jobs, controller, auth, endpoints, credentials, users)
    for module in (*rest, callbacks, metadata, entity_webhooks, ws_events, ws_logs, sse, leadership):
        _mount_flat(app, module.router, API_PREFIX)
    _mount_flat(app, webhooks.router, "")  # absolute /webhooks paths, no auth
    mount_metrics(app, settings)  # absolute /metrics, only with [metrics] enable
    _mount_flat(app, _catch_all_router(), "")
    ui.mount(app)
    apidocs.mount(app)
    install_openapi(app)
    return app


def _mount_flat(app: FastAPI, router: APIRouter, prefix: str) -> None:
    """Add a module's routes to the app's own route list.

    ``include_router`` keeps each module as a nested router that is matched, route by route, on every
    request: with GARM's ~200 routes that matching cost about a third of a request's CPU (profiled).
    Flat routes are matched once, in order.
    """
    key = (id(router), prefix)
    if key not in _FLAT_ROUTES:  # the entry keeps ``router`` alive, so its id is not reused
        _FLAT_ROUTES[key] = (router, _flat_routes(router, prefix))
    app.router.routes.extend(_FLAT_ROUTES[key][1])


_FLAT_ROUTES: dict[tuple[int, str], tuple[APIRouter, tuple[BaseRoute, ...]]] = {}
"""``_flat_routes`` by router (routers compare by their routes, so they cannot be dict keys)."""


def _flat_routes(router: APIRouter, prefix: str) -> tuple[BaseRoute, ...]:
    """``router``'s routes under ``prefix``, built once per process and shared by every app built in it.

    Building an ``APIRoute`` analyses its endpoint's signature and builds pydantic validators: about
    80 ms of CPU for GARM's routes, which the test suite paid once per test (it builds an app per test).
    The routes hold nothing of one app: they are built on a router configured as ``create_app``'s own
    (``GoJSONResponse`` by default) but without an app to take dependency overrides from, which pygarm
    does not use.
    """
    flat = APIRouter(default_response_class=GoJSONResponse, redirect_slashes=False, route_class=FastRoute)
    for route in router.routes:
        if isinstance(route, APIRoute):
            flat.add_api_route(
                prefix + route.path,
                route.endpoint,
                methods=sorted(route.methods or ()),
                name=route.name,
                tags=route.tags,
                include_in_schema=route.include_in_schema,
                openapi_extra=route.openapi_extra,
                response_class=route.response_class,
            )
        elif isinstance(route, WebSocketRoute):
            flat.add_websocket_route(prefix + route.path, route.endpoint, name=route.name)
        else:
            raise TypeError(f"cannot mount route {route!r}")
    return tuple(flat.routes)
