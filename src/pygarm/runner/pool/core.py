"""What one pool manager knows and holds, shared by its loop modules (docs/garm-protocol.md#pool-managers).

:class:`Shared` is what every manager of a registry uses alike: the store, the providers, the timings,
the instance-token service and the controller info (one copy, refreshed by the registry on
``controller/update``). :class:`ManagerCore` is one entity's state: the cached entity, its GitHub
client, the cached runner tools, the ``running`` flag with its failure reason, the per-instance try-locks
and the background tasks. As in GARM, nothing else is cached: pools, instances and jobs are read from
the store on every pass.

The loop modules (:mod:`.creation`, :mod:`.deletion`, :mod:`.jobqueue`, :mod:`.cleanup`) are functions
of a ``ManagerCore``; :class:`~pygarm.runner.pool.manager.PoolManager` drives them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pygarm.config import PoolManagerSection, parse_go_duration
from pygarm.errors import GarmError
from pygarm.params.models import ControllerInfo, PoolManagerStatus
from pygarm.params.provider import RunnerApplicationDownload
from pygarm.runner.entity_github import github_client_for_entity, github_entity
from pygarm.runner.github import (
    GithubClient,
    GithubEntity,
    GithubUnauthorizedError,
)
from pygarm.runner.github.client import OperationCounter
from pygarm.runner.instance_token import InstanceTokenService
from pygarm.runner.providers import Provider
from pygarm.store.entity_kinds import Entity, EntityKind
from pygarm.store.instances import InstanceRecord, UpdateInstanceParams
from pygarm.store.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PoolManagerTimings:
    """The ``[pool_manager]`` durations in usable units (GARM's constants by default)."""

    consolidate: float = 5.0
    scale_down: float = 60.0
    reaper: float = 300.0
    tools: float = 300.0
    backoff: float = 60.0
    idle_runner_age: timedelta = timedelta(minutes=2)
    stale_job_age: timedelta = timedelta(minutes=10)
    job_lock_timeout: timedelta = timedelta(minutes=10)
    orphan_runner_age: timedelta = timedelta(minutes=5)
    provider_timeout: float = 600.0

    @classmethod
    def from_section(cls, section: PoolManagerSection) -> PoolManagerTimings:
        def seconds(value: str) -> float:
            return parse_go_duration(value)

        return cls(
            consolidate=seconds(section.consolidate_interval),
            scale_down=seconds(section.scale_down_interval),
            reaper=seconds(section.reaper_interval),
            tools=seconds(section.tools_interval),
            backoff=seconds(section.backoff_interval),
            idle_runner_age=timedelta(seconds=seconds(section.idle_runner_age)),
            stale_job_age=timedelta(seconds=seconds(section.stale_job_age)),
            job_lock_timeout=timedelta(seconds=seconds(section.job_lock_timeout)),
            orphan_runner_age=timedelta(seconds=seconds(section.orphan_runner_age)),
            provider_timeout=seconds(section.provider_timeout),
        )


@dataclass(slots=True)
class Shared:
    """Everything the managers of one registry share; ``controller`` is replaced on ``controller/update``."""

    store: Store
    providers: Mapping[str, Provider]
    timings: PoolManagerTimings
    tokens: InstanceTokenService
    controller: ControllerInfo
    github_counters: OperationCounter | None = None
    """GARM's ``garm_github_*`` counters (``runner/metrics.py``), or None."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_unauthorized(exc: BaseException) -> bool:
    """GARM's ``errors.Is(err, ErrUnauthorized)``: the error or anything it was raised from."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, GithubUnauthorizedError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class ManagerCore:
    """One entity's pool-manager state. All methods run on the event loop; none blocks it."""

    def __init__(self, shared: Shared, kind: EntityKind, entity: Entity) -> None:
        self.shared = shared
        self.store = shared.store
        self.timings = shared.timings
        self.kind = kind
        self.entity = entity
        self.client: GithubClient | None = None
        self.client_error = "github client not initialized"
        self.tools: list[RunnerApplicationDownload] | None = None
        self.running = False
        self.failure_reason = ""
        self._run_waiters: set[asyncio.Future[None]] = set()
        self._locked: set[str] = set()
        self._pool_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- identity ----------------------------------------------------------------------------------

    @property
    def entity_id(self) -> str:
        return self.entity.id

    @property
    def ref(self) -> tuple[EntityKind, str]:
        """The entity as the store's ``(kind, id)`` scope."""
        return self.kind, self.entity.id

    @property
    def github_entity(self) -> GithubEntity:
        return github_entity(self.kind, self.entity)

    @property
    def display_name(self) -> str:
        """GARM's ``GithubEntity.String()``: ``owner/name`` or the name; used in messages and tokens."""
        return str(self.github_entity)

    @property
    def controller(self) -> ControllerInfo:
        return self.shared.controller

    @property
    def status(self) -> PoolManagerStatus:
        """``pool_manager_status`` for REST (GARM's ``Status()``)."""
        return PoolManagerStatus(running=self.running, failure_reason=self.failure_reason)

    # --- running state -----------------------------------------------------------------------------

    def set_running(self, running: bool, reason: str = "") -> None:
        """GARM's ``setPoolRunningState``; wakes the loops waiting for the manager to run again."""
        if running != self.running or reason != self.failure_reason:
            log.info("pool manager %s: running=%s %s", self.display_name, running, reason)
        self.running = running
        self.failure_reason = "" if running else reason
        if running:
            for waiter in self._run_waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def wait_until_running(self, timeout: float) -> None:
        """Return when the manager runs, or after ``timeout`` seconds (GARM's ``BackoffTimer`` sleep,
        cut short when a tools update succeeds)."""
        if self.running:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._run_waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass
        finally:
            self._run_waiters.discard(waiter)

    def github(self) -> GithubClient:
        """The GitHub client; when none could be built, every call fails as unauthorized (GARM's stub)."""
        if self.client is None:
            raise GithubUnauthorizedError(f"github client unavailable: {self.client_error}")
        return self.client

    async def replace_client(self) -> None:
        """Build a client from the cached entity (after a credentials or endpoint change, and at start)."""
        old = self.client
        try:
            self.client = await github_client_for_entity(
                self.store, self.kind, self.entity, counters=self.shared.github_counters
            )
            self.client_error = ""
        except (GarmError, ValueError, KeyError, TypeError) as exc:
            self.client = None
            self.client_error = str(exc) or type(exc).__name__
            log.error("pool manager %s: cannot build github client: %s", self.display_name, self.client_error)
        if old is not None:
            await old.aclose()

    async def update_tools(self) -> None:
        """Fetch the runner downloads; success makes the manager run, failure stops it
        (docs/garm-protocol.md#start-and-running-state)."""
        try:
            tools = await self.github().list_runner_applications()
        except GarmError as exc:
            self.set_running(False, f"failed to update tools for entity {self.display_name}: {exc}")
            raise
        self.tools = tools
        self.set_running(True)

    def provider(self, provider_name: str, pool_id: str) -> Provider:
        provider = self.shared.providers.get(provider_name)
        if provider is None:
            raise GarmError(f"unknown provider {provider_name} for pool {pool_id}")
        return provider

    # --- locks -------------------------------------------------------------------------------------

    def try_lock(self, name: str) -> bool:
        """GARM's per-instance ``TryLock``: loops skip an instance another operation holds."""
        if name in self._locked:
            return False
        self._locked.add(name)
        return True

    def unlock(self, name: str) -> None:
        self._locked.discard(name)

    @contextlib.contextmanager
    def locked(self, name: str) -> Iterator[bool]:
        """``with core.locked(name) as acquired:``; released on exit only if acquired here."""
        acquired = self.try_lock(name)
        try:
            yield acquired
        finally:
            if acquired:
                self.unlock(name)

    def pool_lock(self, pool_id: str) -> asyncio.Lock:
        """Serializes "count the pool, then add runners" so concurrent callers (the min-idle loop, the
        job queue, an ``in_progress`` webhook) cannot together exceed ``max_runners``."""
        lock = self._pool_locks.get(pool_id)
        if lock is None:
            lock = self._pool_locks[pool_id] = asyncio.Lock()
        return lock

    # --- background work ---------------------------------------------------------------------------

    async def claim_and_spawn(
        self,
        records: Iterable[InstanceRecord],
        status: str,
        work: Callable[[InstanceRecord], Coroutine[Any, Any, Any]],
        label: str,
    ) -> None:
        """For each instance not locked by another operation: lock it, move it to ``status`` (one
        ``instance/update``), then run ``work(record)`` in the background. ``work`` owns the lock from
        then on and must release it. GARM's add-pending and delete-pending passes both work this way."""
        for record in records:
            name = record.instance.name
            if not self.try_lock(name):
                continue
            try:
                await self.store.update_instance(name, UpdateInstanceParams(status=status))
            except GarmError as exc:
                log.error("failed to mark %s %s: %s", name, status, exc)
                self.unlock(name)
                continue
            self.spawn(work(record), name=f"{label}-{name}")

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run one instance operation (a provider call) without holding up the loop that started it.

        The task is tracked so that :meth:`cancel_tasks` can stop it with the manager; its errors are
        logged, never lost.
        """
        task = asyncio.get_running_loop().create_task(coro, name=f"pool-{self.display_name}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "pool manager %s: %s failed", self.display_name, task.get_name(), exc_info=task.exception()
            )

    async def cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def wait_tasks(self) -> None:
        """Wait until the background operations started so far have finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))


__all__ = [
    "ManagerCore",
    "PoolManagerTimings",
    "Shared",
    "github_entity",
    "is_unauthorized",
    "utcnow",
]
