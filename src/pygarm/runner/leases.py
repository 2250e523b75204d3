"""The lease driver: runs the election of ``runner/leadership.py`` against PostgreSQL and starts or stops
background jobs so that each runs on exactly one replica (issue 11, docs/deployment.md).

Jobs come in groups (:class:`LeaderGroup`): the pool-manager registry (one key per entity) and
:class:`SingletonJob` for each fleet-wide loop (change-log pruning). Every ``renew_every`` seconds a tick
heartbeats this replica, reads the lease table, asks the :class:`~pygarm.runner.leadership.Elector`
what to claim and release, stops the jobs it gives up *before* deleting their rows, claims and renews in
one statement, then starts the jobs it won.

A watchdog task stops a job at the moment its lease deadline (on this replica's monotonic clock) passes
without a successful renewal, whether the tick failed, hangs on a cut network or is still waiting for a
connection: a replica that loses PostgreSQL stops acting before another replica can claim the row.
SQLite deployments never build a driver (one process runs everything).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Final, Protocol

from pygarm.runner.leadership import Elector, Lease, LeaseTimings
from pygarm.store.leases import LeaseSnapshot

log = logging.getLogger(__name__)

LEAVE_TIMEOUT_S: Final = 3.0
"""How long shutdown waits to delete its lease rows (after that they expire on their own)."""


class LeaderGroup(Protocol):
    """Jobs that must each run on one replica: the keys wanted now, what to publish about each, and a
    way to make exactly the ``acting`` ones run here."""

    def lease_keys(self) -> Iterable[str]: ...

    def lease_status(self, key: str) -> str | None: ...

    async def apply_leases(self, acting: frozenset[str]) -> None: ...


class LeaseGateway(Protocol):
    """The statements (``store/leases.py``'s :class:`~pygarm.store.leases.PostgresLeases`)."""

    me: str

    async def heartbeat_and_read(self, ttl: float) -> LeaseSnapshot: ...

    async def claim(self, ttl: float, items: Sequence[tuple[str, str | None]]) -> set[str]: ...

    async def release(self, keys: Sequence[str]) -> None: ...

    async def leave(self) -> None: ...

    async def close(self) -> None: ...


def replica_identity() -> tuple[str, str]:
    """A unique holder ID and a readable name (``host:pid``) for this process."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    return f"{name}:{uuid.uuid4().hex[:8]}", name


class SingletonJob:
    """A fleet-wide loop (one key) that runs as a task on whichever replica holds its lease."""

    def __init__(self, key: str, run: Callable[[], Awaitable[None]]) -> None:
        self.key = key
        self._run = run
        self._task: asyncio.Task[None] | None = None

    def lease_keys(self) -> Iterable[str]:
        return (self.key,)

    def lease_status(self, key: str) -> str | None:
        return None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def apply_leases(self, acting: frozenset[str]) -> None:
        if self.key in acting and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._guarded(), name=f"pygarm-{self.key}")
        elif self.key not in acting and self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            await asyncio.wait([task])

    async def _guarded(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s stopped with an error", self.key)


class LeaderDriver:
    """One replica's side of the election. ``clock`` is monotonic (tests pass their own)."""

    def __init__(
        self,
        gateway: LeaseGateway,
        groups: Sequence[LeaderGroup],
        *,
        timings: LeaseTimings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gateway = gateway
        self._groups = list(groups)
        self.timings = timings or LeaseTimings()
        self._clock = clock
        self.elector = Elector(gateway.me, self.timings)
        self.snapshot: LeaseSnapshot | None = None
        """What the last successful tick read: other replicas' leases and published statuses."""
        self._applied: frozenset[str] = frozenset()
        self._apply_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._poke = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def me(self) -> str:
        return self._gateway.me

    def acting(self) -> frozenset[str]:
        """The keys whose jobs run on this replica now."""
        return self._applied

    def holder(self, key: str) -> str | None:
        """The replica holding ``key`` as of the last tick (``None``: free or expired)."""
        row = self.snapshot.leases.get(key) if self.snapshot is not None else None
        return None if row is None or row.expired else row.holder

    def published_status(self, key: str) -> str | None:
        """What the live holder of ``key`` published about its job as of the last tick."""
        row = self.snapshot.leases.get(key) if self.snapshot is not None else None
        return None if row is None or row.expired else row.status

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Run the first tick (so jobs this replica wins start before the app serves), then keep going."""
        await self._tick_logged()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._ticker(), name="pygarm-leases-ticker"),
            loop.create_task(self._watchdog(), name="pygarm-leases-watchdog"),
        ]

    def poke(self) -> None:
        """Tick now (a job key appeared or vanished) instead of at the next period."""
        self._poke.set()

    async def stop(self) -> None:
        """Stop every job here, then delete this replica's rows so successors claim them at once."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for key in self.elector.held():
            self.elector.lost(key)
        await self.enforce()
        try:
            async with asyncio.timeout(LEAVE_TIMEOUT_S):
                await self._gateway.leave()
            log.info("leadership: replica %s left, leases released", self.me)
        except Exception as exc:
            log.warning("leadership: could not release leases at shutdown (%s); they expire", exc)
        await self._gateway.close()

    # --- one round ----------------------------------------------------------------------------------

    async def tick(self) -> None:
        """Heartbeat and read, stop and release what we give up, claim and renew, start what we won.
        Raises when a statement fails; the watchdog then stops jobs at their deadlines."""
        ttl = self.timings.ttl
        limit = self.timings.renew_every  # a statement on a cut network must not hold the tick forever
        async with asyncio.timeout(limit):
            snapshot = await self._gateway.heartbeat_and_read(ttl)
        self.snapshot = snapshot
        leases = {key: Lease(row.key, row.holder, row.expired) for key, row in snapshot.leases.items()}
        keys = [key for group in self._groups for key in group.lease_keys()]
        plan = self.elector.plan(keys, leases, snapshot.live_replicas)
        if plan.release:
            for key in plan.release:
                self.elector.lost(key)
            await self.enforce()  # the jobs stop before their rows are deleted
            async with asyncio.timeout(limit):
                await self._gateway.release(sorted(plan.release))
        items = [(key, self._status(key)) for key in sorted(plan.claim)]
        sent_at = self._clock()
        async with asyncio.timeout(limit):
            granted = await self._gateway.claim(ttl, items)
        for key in granted:
            self.elector.granted(key, sent_at)
        for key in self.elector.held() - granted:
            self.elector.lost(key)
        self._changed.set()
        await self.enforce()

    async def enforce(self) -> None:
        """Make exactly the keys the elector says are acting *now* run here."""
        async with self._apply_lock:
            acting = self.elector.acting(self._clock())
            for key in sorted(acting - self._applied):
                log.info("leadership: replica %s now runs %s", self.me, key)
            for key in sorted(self._applied - acting):
                log.info("leadership: replica %s stops running %s", self.me, key)
            self._applied = acting
            for group in self._groups:
                try:
                    await group.apply_leases(acting)
                except Exception:
                    log.exception("leadership: applying leases failed")

    def _status(self, key: str) -> str | None:
        for group in self._groups:
            if key in set(group.lease_keys()):
                return group.lease_status(key)
        return None

    async def _tick_logged(self) -> None:
        try:
            await self.tick()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("leadership: tick failed (%s); jobs stop at their lease deadlines", exc or type(exc))

    async def _ticker(self) -> None:
        period = self.timings.renew_every
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), period)
            self._poke.clear()
            await self._tick_logged()

    async def _watchdog(self) -> None:
        """Stop jobs the moment their lease deadline passes without a renewal."""
        while True:
            self._changed.clear()
            deadline = self.elector.next_deadline(self._clock())
            timeout = None if deadline is None else max(deadline - self._clock(), 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
            if self.elector.acting(self._clock()) != self._applied:
                await self.enforce()
