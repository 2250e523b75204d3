"""GARM v0.1.5's ``garm_*`` Prometheus families: the periodic collection and the operation counters
(docs/observability.md#garm-families).

Two kinds of family, as in GARM:

* **Collected** every ``[metrics] period`` from the store (``garm@v0.1.5 runner/metrics/metrics.go:14-90``):
  health, providers, organizations, enterprises, repositories, pools and runners. Each round replaces a
  family's series wholesale (GARM's ``Reset()`` then refill), so a deleted object's series is gone
  within one period. The first collector that fails ends the round; later families keep their previous
  series (``garm@v0.1.5 runner/metrics/metrics.go:47-90``).
* **Counted** inline by the code they count, never reset: provider calls, GitHub calls and
  ``workflow_job`` webhooks (:class:`GarmCounters`). They are counted whether or not metrics are
  enabled, and exposed once a series exists.

Names, help texts (copy-paste slips included) and label names are GARM's word for word
(``garm@v0.1.5 metrics/*.go``). Three of GARM's bugs are fixed (docs/compatibility.md#metrics):
repositories go into ``garm_repository_*`` instead of ``garm_enterprise_*``
(``garm@v0.1.5 runner/metrics/repository.go:11-34``); ``garm_health``'s URLs are re-read every round
instead of once at start-up (``garm@v0.1.5 runner/metrics/metrics.go:17``); ``garm_runner_status`` names
the pool's provider instead of ``""`` (``garm@v0.1.5 runner/metrics/instance.go:26-61``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from prometheus_client.metrics_core import Metric

from pygarm.config import ProviderSection
from pygarm.params.models import Pool
from pygarm.store.entity_kinds import EntityKind
from pygarm.store.store import Store

log = logging.getLogger(__name__)

Labels = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Family:
    """One GARM family: its full name, type, help text and label names in declaration order."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...]


def _gauge(name: str, help_text: str, *labels: str) -> Family:
    return Family(name, "gauge", help_text, labels)


def _counter(name: str, help_text: str, *labels: str) -> Family:
    return Family(name, "counter", help_text, labels)


# garm@v0.1.5 metrics/health.go:7-11, provider.go:7-12
HEALTH = _gauge(
    "garm_health",
    "Health of the garm",
    "metadata_url",
    "callback_url",
    "webhook_url",
    "controller_webhook_url",
    "controller_id",
)
PROVIDER_INFO = _gauge("garm_provider_info", "Info of the organization", "name", "type", "description")
# garm@v0.1.5 metrics/organization.go:8-20, enterprise.go:8-20, repository.go:8-20 (help texts sic)
ENTITY_INFO: Final = {
    EntityKind.ORGANIZATION: _gauge("garm_organization_info", "Info of the organization", "name", "id"),
    EntityKind.ENTERPRISE: _gauge("garm_enterprise_info", "Info of the enterprise", "name", "id"),
    EntityKind.REPOSITORY: _gauge("garm_repository_info", "Info of the enterprise", "name", "id"),
}
ENTITY_POOL_MANAGER_STATUS: Final = {
    EntityKind.ORGANIZATION: _gauge(
        "garm_organization_pool_manager_status",
        "Status of the organization pool manager",
        "name",
        "id",
        "running",
    ),
    EntityKind.ENTERPRISE: _gauge(
        "garm_enterprise_pool_manager_status",
        "Status of the enterprise pool manager",
        "name",
        "id",
        "running",
    ),
    EntityKind.REPOSITORY: _gauge(
        "garm_repository_pool_manager_status",
        "Status of the enterprise pool manager",
        "name",
        "id",
        "running",
    ),
}
# garm@v0.1.5 metrics/pool.go:8-41
POOL_INFO = _gauge(
    "garm_pool_info",
    "Info of the pool",
    "id",
    "image",
    "flavor",
    "prefix",
    "os_type",
    "os_arch",
    "tags",
    "provider",
    "pool_owner",
    "pool_type",
)
POOL_STATUS = _gauge("garm_pool_status", "Status of the pool", "id", "enabled")
POOL_MAX_RUNNERS = _gauge("garm_pool_max_runners", "Maximum number of runners in the pool", "id")
POOL_MIN_IDLE_RUNNERS = _gauge(
    "garm_pool_min_idle_runners", "Minimum number of idle runners in the pool", "id"
)
POOL_BOOTSTRAP_TIMEOUT = _gauge("garm_pool_bootstrap_timeout", "Runner bootstrap timeout in the pool", "id")
# garm@v0.1.5 metrics/instance.go:8-27
RUNNER_STATUS = _gauge(
    "garm_runner_status",
    "Status of the instance",
    "name",
    "status",
    "runner_status",
    "pool_owner",
    "pool_type",
    "pool_id",
    "provider",
)
RUNNER_OPERATIONS = _counter(
    "garm_runner_operations_total", "Total number of instance operation attempts", "operation", "provider"
)
RUNNER_ERRORS = _counter(
    "garm_runner_errors_total", "Total number of failed instance operation attempts", "operation", "provider"
)
# garm@v0.1.5 metrics/github.go:6-18, webhooks.go:5-10
GITHUB_OPERATIONS = _counter(
    "garm_github_operations_total", "Total number of github operation attempts", "operation", "scope"
)
GITHUB_ERRORS = _counter(
    "garm_github_errors_total", "Total number of failed github operation attempts", "operation", "scope"
)
WEBHOOK_RECEIVED = _counter(
    "garm_webhook_received", "The total number of webhooks received", "valid", "reason"
)
"""GARM's one counter without ``_total``; the route keeps that name (prometheus_client would add it)."""


def family_metric(family: Family, series: Iterable[tuple[Labels, float]]) -> Metric | None:
    """A prometheus_client family with the series sorted by label values, or None without series
    (an empty vector is not printed at all, as client_golang does)."""
    metric = Metric(
        family.name.removesuffix("_total") if family.kind == "counter" else family.name,
        family.help,
        family.kind,
    )
    sample_name = family.name
    for values, value in sorted(series):
        metric.add_sample(sample_name, dict(zip(family.labels, values, strict=True)), value)
    return metric if metric.samples else None


def _bool(value: bool) -> tuple[str, float]:
    """``strconv.FormatBool`` for the label and ``Bool2float64`` for the value
    (``garm@v0.1.5 metrics/util.go:3-8``)."""
    return ("true", 1.0) if value else ("false", 0.0)


GARM_COUNTERS_SERVICE: Final = "garm_counters"
"""Key of the app's :class:`GarmCounters` among the app context's services."""


def garm_counters(services: Mapping[str, object]) -> GarmCounters | None:
    counters = services.get(GARM_COUNTERS_SERVICE)
    return counters if isinstance(counters, GarmCounters) else None


class GarmCounters:
    """GARM's inline counters as plain dictionaries; one per app, passed to the code that counts."""

    __slots__ = ("github_errors", "github_operations", "runner_errors", "runner_operations", "webhooks")

    def __init__(self) -> None:
        self.runner_operations: dict[Labels, int] = {}
        self.runner_errors: dict[Labels, int] = {}
        self.github_operations: dict[Labels, int] = {}
        self.github_errors: dict[Labels, int] = {}
        self.webhooks: dict[Labels, int] = {}

    @staticmethod
    def _add(counts: dict[Labels, int], key: Labels) -> None:
        counts[key] = counts.get(key, 0) + 1

    def runner_operation(self, operation: str, provider: str) -> None:
        self._add(self.runner_operations, (operation, provider))

    def runner_error(self, operation: str, provider: str) -> None:
        self._add(self.runner_errors, (operation, provider))

    def github_operation(self, operation: str, scope: str) -> None:
        self._add(self.github_operations, (operation, scope))

    def github_error(self, operation: str, scope: str) -> None:
        self._add(self.github_errors, (operation, scope))

    def webhook(self, valid: bool, reason: str) -> None:
        """``garm@v0.1.5 apiserver/controllers/controllers.go:98-138``: valid with reason ``""``, or
        ``owner_unknown`` / ``signature_invalid`` / ``unknown``."""
        self._add(self.webhooks, ("true" if valid else "false", reason))

    def families(self) -> Iterator[Metric]:
        for family, counts in (
            (RUNNER_OPERATIONS, self.runner_operations),
            (RUNNER_ERRORS, self.runner_errors),
            (GITHUB_OPERATIONS, self.github_operations),
            (GITHUB_ERRORS, self.github_errors),
            (WEBHOOK_RECEIVED, self.webhooks),
        ):
            metric = family_metric(family, ((key, float(n)) for key, n in list(counts.items())))
            if metric is not None:
                yield metric


def _pool_owner(pool: Pool) -> tuple[str, str]:
    """``pool_owner`` and ``pool_type`` as GARM computes them (``garm@v0.1.5 runner/metrics/pool.go:31-48``:
    the org name, else the enterprise name, else ``owner/name``)."""
    if pool.org_name:
        owner = pool.org_name
    elif pool.enterprise_name:
        owner = pool.enterprise_name
    else:
        owner = pool.repo_name
    kind = "repository" if pool.repo_id else "organization" if pool.org_id else "enterprise"
    return owner, kind


Series = list[tuple[Labels, float]]
Collected = dict[Family, Series]


class GarmCollector:
    """The collected families of the last round plus the counters, as a prometheus_client collector.

    ``is_running(entity_id)`` tells whether an entity's pool manager runs (False without pool managers).
    """

    def __init__(
        self,
        store: Store,
        providers: Sequence[ProviderSection],
        is_running: Callable[[str], bool],
        counters: GarmCounters,
    ) -> None:
        self._store = store
        self._providers = tuple(providers)
        self._is_running = is_running
        self.counters = counters
        self._series: Collected = {}
        self._steps: tuple[Callable[[], Awaitable[Collected]], ...] = (
            lambda: self._entities(EntityKind.ORGANIZATION),
            lambda: self._entities(EntityKind.ENTERPRISE),
            lambda: self._entities(EntityKind.REPOSITORY),
            self._provider_info,
            self._pools,
            self._runners,
            self._health,
        )

    async def collect_once(self) -> None:
        """One round, in GARM's order; a failing step ends it and later families keep their series."""
        for step in self._steps:
            try:
                collected = await step()
            except Exception:
                log.exception("cannot collect metrics")
                return
            self._series.update(collected)

    def collect(self) -> Iterator[Metric]:
        for family, series in list(self._series.items()):
            metric = family_metric(family, series)
            if metric is not None:
                yield metric
        yield from self.counters.families()

    # --- the steps (garm@v0.1.5 runner/metrics/*.go) ---------------------------------------------------

    async def _entities(self, kind: EntityKind) -> Collected:
        info: Series = []
        status: Series = []
        for entity in await self._store.list_entities(kind):
            info.append(((entity.name, entity.id), 1.0))
            running, value = _bool(self._is_running(entity.id))
            status.append(((entity.name, entity.id, running), value))
        return {ENTITY_INFO[kind]: info, ENTITY_POOL_MANAGER_STATUS[kind]: status}

    async def _provider_info(self) -> Collected:
        return {PROVIDER_INFO: [((p.name, p.provider_type, p.description), 1.0) for p in self._providers]}

    async def _pools(self) -> Collected:
        info: Series = []
        status: Series = []
        max_runners: Series = []
        min_idle: Series = []
        bootstrap: Series = []
        for pool in await self._store.list_all_pools():
            owner, pool_type = _pool_owner(pool)
            tags = ",".join(tag.name for tag in pool.tags or ())
            labels = (pool.id, pool.image, pool.flavor, pool.runner_prefix, pool.os_type, pool.os_arch, tags)
            info.append(((*labels, pool.provider_name, owner, pool_type), 1.0))
            enabled, value = _bool(pool.enabled)
            status.append(((pool.id, enabled), value))
            max_runners.append(((pool.id,), float(pool.max_runners)))
            min_idle.append(((pool.id,), float(pool.min_idle_runners)))
            bootstrap.append(((pool.id,), float(pool.runner_bootstrap_timeout)))
        return {
            POOL_INFO: info,
            POOL_STATUS: status,
            POOL_MAX_RUNNERS: max_runners,
            POOL_MIN_IDLE_RUNNERS: min_idle,
            POOL_BOOTSTRAP_TIMEOUT: bootstrap,
        }

    async def _runners(self) -> Collected:
        instances = await self._store.list_all_instances()
        pools = {pool.id: pool for pool in await self._store.list_all_pools()}
        series: Series = []
        for instance in instances:
            pool = pools.get(instance.pool_id)
            owner, pool_type = _pool_owner(pool) if pool is not None else ("", "")
            provider = pool.provider_name if pool is not None else ""
            labels = (instance.name, instance.status, instance.runner_status, owner, pool_type)
            series.append(((*labels, instance.pool_id, provider), 1.0))
        return {RUNNER_STATUS: series}

    async def _health(self) -> Collected:
        info = await self._store.get_controller_info()
        labels = (
            info.metadata_url,
            info.callback_url,
            info.webhook_url,
            info.controller_webhook_url,
            info.controller_id,
        )
        return {HEALTH: [(labels, 1.0)]}
