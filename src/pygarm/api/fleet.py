"""Background jobs that must run once per deployment, and who runs them (docs/deployment.md).

On SQLite one process runs everything. On PostgreSQL several replicas may share the database, so a
:class:`~pygarm.runner.leases.LeaderDriver` elects, per job, the replica that runs it: each pool manager
(the registry is a lease group) and each fleet-wide loop here (change-log pruning).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Final

from pygarm.config import Settings, parse_go_duration
from pygarm.runner.leases import LeaderDriver, LeaderGroup, SingletonJob, replica_identity
from pygarm.runner.pool import PoolManagerRegistry
from pygarm.store.db import Database
from pygarm.store.leases import PostgresLeases

log = logging.getLogger(__name__)

PRUNER_LEASE: Final = "fleet:change-log-pruner"
PRUNE_INTERVAL_S = 3600.0
"""How often change-log rows older than ``[events] retention`` are deleted."""


async def prune_change_log(db: Database, settings: Settings) -> None:
    retention = parse_go_duration(settings.events.retention)
    while True:
        try:
            cutoff = datetime.now(UTC) - timedelta(seconds=retention)
            removed = await db.prune_changes(cutoff)
            if removed:
                log.info("pruned %d change-log rows older than %s", removed, settings.events.retention)
        except Exception:
            log.exception("pruning the change log failed")
        await asyncio.sleep(PRUNE_INTERVAL_S)


class Fleet:
    """The fleet-wide loops and, on PostgreSQL, the election of every background job's runner. Build it
    before the pool-manager registry starts (the registry then runs only the managers it leads)."""

    def __init__(self, settings: Settings, db: Database, pool_managers: PoolManagerRegistry | None) -> None:
        self.pruner = SingletonJob(PRUNER_LEASE, lambda: prune_change_log(db, settings))
        self.driver: LeaderDriver | None = None
        if settings.database.backend != "postgresql":
            return
        me, name = replica_identity()
        groups: list[LeaderGroup] = [self.pruner] if pool_managers is None else [self.pruner, pool_managers]
        self.driver = LeaderDriver(PostgresLeases(settings.database.postgresql.dsn, me, name), groups)
        if pool_managers is not None:
            pool_managers.use_leases(self.driver)
        log.info("leadership: replica %s (%s) elects leaders through PostgreSQL", me, name)

    async def start(self) -> None:
        if self.driver is not None:
            await self.driver.start()
        else:  # one process: it runs everything
            await self.pruner.apply_leases(frozenset({PRUNER_LEASE}))

    async def stop(self) -> None:
        if self.driver is not None:
            await self.driver.stop()
        await self.pruner.apply_leases(frozenset())
