"""Writes the webhook handler needs that must be decided atomically (docs/garm-protocol.md#handling-a-job,
docs/garm-protocol.md#job-records).

GitHub does not deliver ``workflow_job`` events in order: a ``queued`` can arrive after the
``in_progress`` of the same job, an ``in_progress`` after its ``completed``, and the same job arrives
once per configured hierarchy (repository, organization, enterprise). GARM applies every delivery, so a
late one moves a job or a runner backwards (a completed job becomes ``queued`` again and gets a new
runner). pygarm refuses regressions, and because two deliveries can be handled at the same time (by two
requests, or two processes on PostgreSQL), the "is this a step forward?" check and the write happen in
one transaction on a row locked with ``SELECT … FOR UPDATE`` (SQLite needs no row lock: its writes are
serialized by ``BEGIN IMMEDIATE``).

Everything else keeps GARM's write semantics: a job write is ``CreateOrUpdateJob`` through the
:func:`~pygarm.store.jobs.upsert_job` that ``JobStore`` uses too, an instance write is ``UpdateInstance``
of one field (which, as in GARM, also clears ``provider_fault`` and bumps ``updated_at``), and each
write emits the same one event.

This part of the store is self-contained (it only needs the database), so the webhook service builds it
over the shared :class:`~pygarm.store.db.Database`; it can equally be mixed into ``Store``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Final

from sqlalchemy import select, update

from pygarm.errors import NotFoundError
from pygarm.events.change import EntityType, Operation
from pygarm.params.models import Instance, Job
from pygarm.store.base import StoreBase
from pygarm.store.db import WriteTx
from pygarm.store.instances import read_instance
from pygarm.store.jobs import stored_job_status, upsert_job
from pygarm.store.tables import instances

JOB_STATUS_RANK: Final[Mapping[str, int]] = {
    "requested": 0,
    "pending": 0,
    "waiting": 0,
    "queued": 0,
    "in_progress": 1,
    "completed": 2,
}
"""How far along a GitHub job ``status`` is; unknown values rank with ``queued`` (they come before a
runner picks the job up)."""


JOB_ADVISORY_LOCK: Final = 0x6A6F6273  # "jobs"
"""First key of the transaction-scoped advisory lock (two-key form, the job ID is the second) that
serializes deliveries of one job across replicas on one PostgreSQL. ``SELECT … FOR UPDATE`` cannot: an
unknown job has no row to lock, and two replicas would both insert it (the second failing on the
primary key and losing its delivery). Unrelated jobs sharing a second key only wait for each other."""


def job_status_rank(status: str) -> int:
    return JOB_STATUS_RANK.get(status, 0)


class WebhookQueries(StoreBase):
    """Regression-proof job and runner writes for the webhook handler."""

    async def record_webhook_job(self, job: Job, *, create_allowed: bool) -> Job | None:
        """Create (``job/create``) or update (``job/update``) the job unless that would move it backwards.

        Returns the saved job, or ``None`` when nothing was written: the job is unknown and
        ``create_allowed`` is false (no pool of the entity can run it, docs/garm-protocol.md#handling-a-job
        step 3), the stored job is further along than ``job.status`` (a late delivery; no event), or the
        write would change no stored field (a repeated delivery; no event, GARM emits ``job/update``).
        """

        def apply(tx: WriteTx) -> Job | None:
            if tx.conn.dialect.name == "postgresql":  # replicas: one delivery of a job at a time
                tx.conn.exec_driver_sql(
                    "SELECT pg_advisory_xact_lock(%s, %s)", (JOB_ADVISORY_LOCK, job.id % 2_147_483_647)
                )
            status = stored_job_status(tx.conn, job.id, for_update=True)
            if status is None and not create_allowed:
                return None
            if status is not None and job_status_rank(job.status) < job_status_rank(status):
                return None
            return upsert_job(tx, job, exists=status is not None, skip_unchanged=True)

        return await self.db.write(apply)

    async def set_instance_field_unless(
        self, name: str, field: str, value: str, *, unless: Collection[str]
    ) -> tuple[Instance, bool]:
        """Set ``field`` (``runner_status`` or ``status``) of the instance named ``name`` to ``value``,
        unless its current value is in ``unless``; GARM's ``UpdateInstance`` otherwise (one
        ``instance/update``, ``provider_fault`` cleared). Returns the instance and whether it changed.
        NotFoundError when there is no such instance (by name, across all entities, as in GARM)."""
        if field not in ("runner_status", "status"):
            raise ValueError(f"unsupported instance field {field!r}")
        column = instances.c[field]

        def apply(tx: WriteTx) -> tuple[Instance, bool]:
            conn = tx.conn
            row = conn.execute(
                select(instances.c.id, column).where(instances.c.name == name).with_for_update()
            ).first()
            if row is None:
                raise NotFoundError()
            if row[1] in unless:
                return read_instance(conn, name), False
            conn.execute(
                update(instances)
                .where(instances.c.id == row.id)
                .values({field: value, "provider_fault": None, "updated_at": tx.now})
            )
            instance = read_instance(conn, name)
            tx.emit(EntityType.INSTANCE, Operation.UPDATE, instance)
            return instance, True

        return await self.db.write(apply)
