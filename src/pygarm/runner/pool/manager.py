"""One entity's pool manager: its loops, its refreshes and the calls other layers make on it
(docs/garm-protocol.md#start-and-running-state, docs/garm-protocol.md#loops).

:meth:`PoolManager.start` builds the GitHub client, fetches the runner tools (success makes the manager
``running``) and then starts GARM's eight loops, one task each. Like Go tickers, each loop first runs one
interval after it starts. A loop that is not "always" does nothing while the manager is not running and
looks again every ``backoff`` seconds, or as soon as a tools update succeeds. Loop errors are logged; an
unauthorized one stops the manager (``running: false`` with the reason).

The registry tells the manager when its entity, credentials or endpoint changed
(:meth:`PoolManager.refresh`); one watcher task per manager coalesces those requests, re-reads the entity
and, if the credentials may have changed, rebuilds the client and refreshes the tools.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from pygarm.errors import NotFoundError
from pygarm.params.models import PoolManagerStatus
from pygarm.runner.pool import cleanup, creation, deletion, jobqueue
from pygarm.runner.pool.core import ManagerCore, Shared, is_unauthorized
from pygarm.store.entity_kinds import Entity, EntityKind

log = logging.getLogger(__name__)

LoopFunction = Callable[[ManagerCore], Awaitable[None]]

STOP_TIMEOUT_SECONDS: Final = 60.0
"""How long :meth:`PoolManager.stop` waits for cancelled tasks (GARM's ``Wait()`` allows 60 s)."""


class PoolManager:
    """GARM's ``basePoolManager`` for one repository, organization or enterprise."""

    def __init__(self, shared: Shared, kind: EntityKind, entity: Entity) -> None:
        self.core = ManagerCore(shared, kind, entity)
        self._tasks: list[asyncio.Task[None]] = []
        self._refresh_wanted = asyncio.Event()
        self._client_refresh = False
        self._started = False

    # --- what other layers use ----------------------------------------------------------------------

    @property
    def entity_id(self) -> str:
        return self.core.entity_id

    @property
    def kind(self) -> EntityKind:
        return self.core.kind

    @property
    def entity(self) -> Entity:
        return self.core.entity

    @property
    def running(self) -> bool:
        return self.core.running

    def status(self) -> PoolManagerStatus:
        """``pool_manager_status``: ``running`` and, when not running, why (empty until the first
        tools fetch has finished)."""
        return self.core.status

    async def ensure_min_idle(self, pool_id: str) -> None:
        """Top up one pool of this entity to its ``min_idle_runners`` (the ``in_progress`` webhook path).

        Raises :class:`~pygarm.errors.NotFoundError` when the pool does not belong to this entity.
        """
        pool = await self.core.store.get_pool(pool_id, self.core.ref)
        await creation.ensure_min_idle_for_pool(self.core, pool)

    async def delete_runner(self, instance_name: str, *, force: bool, bypass_gh_unauthorized: bool) -> None:
        """GARM's ``DeleteRunner`` for ``DELETE /instances/{name}`` (docs/garm-protocol.md#deleterunner).

        409 when the manager is not running (unless ``bypass_gh_unauthorized``); unregisters the runner
        from GitHub (404 ignored, 422 → 400, 401 stops the manager); then marks the instance
        ``pending_delete`` (``pending_force_delete`` with ``force``). The caller checks beforehand that
        the instance's status allows a delete.
        """
        deletion.check_running(self.core, bypass_gh_unauthorized)
        record = await self.core.store.get_instance_record(instance_name)
        await deletion.delete_runner(
            self.core, record.instance, force=force, bypass_gh_unauthorized=bypass_gh_unauthorized
        )

    def refresh(self, *, client: bool = False) -> None:
        """Re-read the entity soon; with ``client``, also rebuild the GitHub client and refresh the tools
        (credentials or endpoint changed). Never blocks; bursts coalesce into one refresh."""
        self._client_refresh = self._client_refresh or client
        self._refresh_wanted.set()

    async def wait_idle(self) -> None:
        """Wait for the instance operations started so far (tests)."""
        await self.core.wait_tasks()

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the watcher and the boot sequence (client, tools, then the loops); returns at once."""
        if self._started:
            return
        self._started = True
        self._spawn(self._watch(), "watcher")
        self._spawn(self._boot(), "boot")

    async def stop(self) -> None:
        """Cancel the loops, the watcher and any provider call in flight (its process group is killed)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await self.core.cancel_tasks()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_SECONDS)
            for task in pending:
                log.error("pool manager %s: task %s did not stop", self.core.display_name, task.get_name())
        if self.core.client is not None:
            await self.core.client.aclose()
            self.core.client = None

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(
            asyncio.get_running_loop().create_task(coro, name=f"pool-{self.core.display_name}-{name}")
        )

    async def _boot(self) -> None:
        core = self.core
        await core.replace_client()
        try:
            await core.update_tools()
        except Exception as exc:
            log.error("pool manager %s: initial tools update failed: %s", core.display_name, exc)
        timings = core.timings
        loops: list[tuple[str, LoopFunction, float, bool]] = [
            ("timeout_reaper", cleanup.runner_cleanup, timings.reaper, False),
            ("scale_down", deletion.scale_down, timings.scale_down, False),
            ("consolidate[delete_pending]", deletion.delete_pending_instances, timings.consolidate, True),
            ("consolidate[add_pending]", creation.add_pending_instances, timings.consolidate, False),
            ("consolidate[ensure_min_idle]", creation.ensure_min_idle_runners, timings.consolidate, False),
            ("consolidate[retry_failed]", creation.retry_failed_instances, timings.consolidate, False),
            ("update_tools", _update_tools, timings.tools, True),
            ("job_queue_consumer", jobqueue.consume_queued_jobs, timings.consolidate, False),
        ]
        for name, function, interval, always in loops:
            self._spawn(self._loop(name, function, interval, always), name)

    async def _loop(self, name: str, function: LoopFunction, interval: float, always: bool) -> None:
        """A Go ticker loop: run every ``interval`` (dropping missed ticks), first one interval from now."""
        core = self.core
        clock = asyncio.get_running_loop().time
        next_tick = clock() + interval
        while True:
            if not (always or core.running):
                await core.wait_until_running(core.timings.backoff)
                continue
            delay = next_tick - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            next_tick += interval
            if next_tick < clock():
                next_tick = clock()  # one missed tick is kept, like a Go ticker's buffered tick
            try:
                await function(core)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("pool manager %s: loop %s failed: %s", core.display_name, name, exc)
                if is_unauthorized(exc):
                    core.set_running(False, str(exc))

    async def _watch(self) -> None:
        core = self.core
        while True:
            await self._refresh_wanted.wait()
            self._refresh_wanted.clear()
            client, self._client_refresh = self._client_refresh, False
            try:
                entity = await core.store.get_entity(core.kind, core.entity_id)
            except NotFoundError:
                return  # deleted; the registry stops this manager
            except Exception as exc:
                log.error("pool manager %s: cannot reload entity: %s", core.display_name, exc)
                continue
            client = client or entity.credentials_id != core.entity.credentials_id
            core.entity = entity
            if client:
                await core.replace_client()
                try:
                    await core.update_tools()
                except Exception as exc:
                    log.error("pool manager %s: tools update failed: %s", core.display_name, exc)


async def _update_tools(core: ManagerCore) -> None:
    """The ``update_tools`` loop: a failure already stopped the manager with its reason; only log it."""
    try:
        await core.update_tools()
    except Exception as exc:
        log.error("pool manager %s: tools update failed: %s", core.display_name, exc)


__all__ = ["STOP_TIMEOUT_SECONDS", "PoolManager"]
