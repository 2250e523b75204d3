"""``/metrics``: GARM v0.1.5's Prometheus endpoint, plus pygarm's own families
(docs/observability.md).

* The route exists only with ``[metrics] enable`` (otherwise Go's plain 404), at the server root, for
  ``GET`` and ``OPTIONS`` only, with and without a trailing slash
  (``garm@v0.1.5 apiserver/routers/routers.go:62-74``); other methods get gorilla's empty 405.
* Unless ``disable_auth``, GARM's metrics middleware (``garm@v0.1.5 auth/metrics.go:24-67``): the
  ``Authorization`` header splits on single spaces into exactly two parts, the second is an HMAC-signed
  JWT (``exp``/``nbf`` checked when present) whose ``read_metrics`` claim is true. No database lookup:
  the token of ``GET /api/v1/metrics-token`` works before first-run. Every refusal is 401
  ``{"error":"Authentication failed","details":""}``.
* The body is text format 0.0.4 from prometheus_client, families sorted by name, gzip when asked
  (``garm@v0.1.5 vendor/github.com/prometheus/client_golang/prometheus/promhttp/http.go:172-175``).

Each app has its own :class:`~prometheus_client.CollectorRegistry`; every collector in it is a custom one
that reads plain counters at scrape time (``pygarm/stats.py``), so nothing on the hot paths calls the
library and no ``_created`` series appear.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Final

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from pygarm.api.accesslog import HTTPStats
from pygarm.api.deps import bearer_token, get_context
from pygarm.api.errors import AUTHENTICATION_FAILED
from pygarm.api.responses import GoJSONResponse
from pygarm.config import Settings
from pygarm.errors import UnauthorizedError
from pygarm.runner.metrics import WEBHOOK_RECEIVED, GarmCollector

log = logging.getLogger(__name__)

METRICS_PATHS: Final = ("/metrics", "/metrics/")
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8; escaping=values"
"""What GARM v0.1.5 answers (client_golang with prometheus/common v0.53)."""
_UNSUFFIXED_HEADERS: Final = (
    (f"# HELP {WEBHOOK_RECEIVED.name}_total ".encode(), f"# HELP {WEBHOOK_RECEIVED.name} ".encode()),
    (f"# TYPE {WEBHOOK_RECEIVED.name}_total ".encode(), f"# TYPE {WEBHOOK_RECEIVED.name} ".encode()),
)
"""prometheus_client always suffixes a counter's HELP/TYPE name with ``_total``; GARM's
``garm_webhook_received`` has no suffix, and dashboards query it by that name."""


def _exposed_name(metric: Metric) -> str:
    return metric.name + "_total" if metric.type == "counter" else metric.name


class SortedRegistry:
    """The app's registry, collected in name order (client_golang sorts families; the library does not)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)

    def register(self, collector: Collector) -> None:
        self.registry.register(collector)

    def collect(self) -> Iterable[Metric]:
        return sorted(self.registry.collect(), key=_exposed_name)

    def render(self) -> bytes:
        body = generate_latest(self)  # any object with collect() will do
        for wrong, right in _UNSUFFIXED_HEADERS:
            body = body.replace(wrong, right)
        return body


def build_registry(collectors: Iterable[Collector]) -> SortedRegistry:
    """pygarm's and GARM's collectors plus the Python process collectors (GARM serves Go's; neither is
    part of the contract)."""
    registry = SortedRegistry()
    for collector in collectors:
        registry.register(collector)
    ProcessCollector(registry=registry.registry)
    PlatformCollector(registry=registry.registry)
    GCCollector(registry=registry.registry)
    return registry


# --- the route ---------------------------------------------------------------------------------------


def _authorized(request: Request) -> bool:
    """``garm@v0.1.5 auth/metrics.go:24-67``: a valid HMAC JWT whose ``read_metrics`` is true."""
    token = bearer_token(request)
    if not token:
        return False
    try:
        claims = get_context(request).auth.tokens.decode(token)
    except UnauthorizedError:
        return False
    return claims.get("read_metrics") is True


async def metrics_endpoint(request: Request) -> Response:
    if request.method == "OPTIONS":  # GARM's CORS wrapper answers it before any auth
        return Response(status_code=200)
    settings: Settings = request.app.state.settings
    if not settings.metrics.disable_auth and not _authorized(request):
        return GoJSONResponse(AUTHENTICATION_FAILED, status_code=401)
    registry: SortedRegistry | None = getattr(request.app.state, "metrics_registry", None)
    body = registry.render() if registry is not None else b""
    headers = {"Content-Type": CONTENT_TYPE}
    if "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return Response(body, headers=headers)


def mount_metrics(app: FastAPI, settings: Settings) -> None:
    """Add ``/metrics`` when ``[metrics] enable`` is on (GARM adds no route otherwise)."""
    if not settings.metrics.enable:
        return
    for path in METRICS_PATHS:
        # FastAPI's route, not Starlette's: Starlette would add HEAD, which GARM answers with 405.
        app.router.add_api_route(
            path, metrics_endpoint, methods=["GET", "OPTIONS"], include_in_schema=False, name="metrics"
        )


# --- the lifespan's part -----------------------------------------------------------------------------


class HTTPCollector:
    """``pygarm_http_*`` from the access log's counts (:class:`~pygarm.api.accesslog.HTTPStats`)."""

    def __init__(self, stats: HTTPStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "pygarm_http_requests_total",
            "HTTP requests and websocket connections, by method, route template and status",
            labels=["method", "route", "code"],
        )
        for labels, count in sorted(list(self._stats.requests.items())):
            requests.add_metric(list(labels), count)
        yield requests
        durations = HistogramMetricFamily(
            "pygarm_http_request_duration_seconds",
            "Time from a request to the end of its response (a websocket's whole life), by route template",
            labels=["route"],
        )
        for route, timings in sorted(list(self._stats.durations.items())):
            durations.add_metric([route], list(timings.buckets()), timings.sum)
        yield durations


Refresh = Callable[[], Awaitable[None]]


class MetricsRuntime:
    """The collection loop of one app: the first round runs before the server listens, as in GARM
    (``garm@v0.1.5 cmd/garm/main.go:275``), then one every ``[metrics] period``: GARM's families, then the
    figures that take a query (``refreshers``)."""

    def __init__(self, garm: GarmCollector, refreshers: Sequence[Refresh], period: float) -> None:
        self.garm = garm
        self.refreshers = tuple(refreshers)
        self.period = period
        self._task: asyncio.Task[None] | None = None

    async def collect_once(self) -> None:
        log.debug("collecting metrics")
        await self.garm.collect_once()
        for refresh in self.refreshers:
            try:
                await refresh()
            except Exception:
                log.exception("cannot collect metrics")

    async def start(self) -> None:
        await self.collect_once()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pygarm-metrics-collector")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            await self.collect_once()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def start_metrics(
    app: FastAPI,
    garm: GarmCollector,
    collectors: Iterable[Collector],
    refreshers: Sequence[Refresh] = (),
) -> MetricsRuntime | None:
    """Build the app's registry and start collecting, when ``[metrics] enable`` is on."""
    settings: Settings = app.state.settings
    if not settings.metrics.enable:
        return None
    http_stats: HTTPStats | None = getattr(app.state, "http_stats", None)
    extra = [HTTPCollector(http_stats)] if http_stats is not None else []
    app.state.metrics_registry = build_registry([garm, *collectors, *extra])
    runtime = MetricsRuntime(garm, refreshers, settings.metrics.period_seconds)
    await runtime.start()
    app.state.metrics_runtime = runtime
    return runtime
