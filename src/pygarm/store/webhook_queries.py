"""Writes the webhook handler needs that must be decided atomically (runner spec §3.4, §3.5).

GitHub does not deliver ``workflow_job`` events in order: a ``queued`` can arrive after the
``in_progress`` of the same job, an ``in_progress`` after its ``completed``, and the same job arrives
once per configured hierarchy (repository, organization, enterprise). GARM applies every delivery, so a
late one moves a job or a runner backwards (a completed job becomes ``queued`` again and gets a new
runner). pygarm refuses regressions, and because two deliveries can be handled at the same time (by two
requests, or two processes on PostgreSQL), the "is this a step forward?" check and the write happen in
one transaction on a row locked with ``SELECT … FOR UPDATE`` (SQLite needs no row lock: its writes are
serialized by ``BEGIN IMMEDIATE``).

Everything else keeps GARM's write semantics: a job write is ``CreateOrUpdateJob`` exactly as
``store/jobs.py`` implements it, an instance write is ``UpdateInstance`` of one field (which, as in GARM,
also clears ``provider_fault`` and bumps ``updated_at``), and each write emits the same one event.

This part of the store is self-contained (it only needs the database), so the webhook service builds it
over the shared :class:`~pygarm.store.db.Database`; it can equally be mixed into ``Store``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Final

from sqlalchemy import Connection, insert, select, update

from pygarm.errors import NotFoundError
from pygarm.events.change import EntityType, Operation
from pygarm.params.gojson import ZERO_UUID
from pygarm.params.models import Instance, Job
from pygarm.store.base import StoreBase
from pygarm.store.db import WriteTx
from pygarm.store.instances import read_instance
from pygarm.store.jobs import job_select, row_to_job
from pygarm.store.tables import instances, workflow_jobs

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


def job_status_rank(status: str) -> int:
    return JOB_STATUS_RANK.get(status, 0)


def _time_or_null(value: datetime) -> datetime | None:
    return None if value.year == 1 else value


def _instance_id(conn: Connection, name: str) -> str | None:
    if not name:
        return None
    return conn.execute(select(instances.c.id).where(instances.c.name == name)).scalar_one_or_none()


def _insert_job(tx: WriteTx, job: Job, instance_id: str | None) -> None:
    tx.conn.execute(
        insert(workflow_jobs).values(
            id=job.id,
            run_id=job.run_id,
            action=job.action,
            conclusion=job.conclusion,
            status=job.status,
            name=job.name,
            started_at=_time_or_null(job.started_at),
            completed_at=_time_or_null(job.completed_at),
            github_runner_id=job.runner_id,
            runner_name=job.runner_name,
            instance_id=instance_id,
            runner_group_id=job.runner_group_id,
            runner_group_name=job.runner_group_name,
            repository_name=job.repository_name,
            repository_owner=job.repository_owner,
            labels=json.dumps(job.labels or []),
            repo_id=job.repo_id,
            org_id=job.org_id,
            enterprise_id=job.enterprise_id,
            locked_by=job.locked_by or ZERO_UUID,
            created_at=tx.now,
            updated_at=tx.now,
        )
    )


def _update_job(tx: WriteTx, job: Job, instance_id: str | None) -> None:
    """GARM's update: labels, name and run ID never change; the lock only when given; entity IDs are set,
    never cleared; the instance link only when ``runner_name`` resolves (``database/sql/jobs.go:225-264``)."""
    values: dict[str, object] = {
        "status": job.status,
        "action": job.action,
        "conclusion": job.conclusion,
        "started_at": _time_or_null(job.started_at),
        "completed_at": _time_or_null(job.completed_at),
        "github_runner_id": job.runner_id,
        "runner_group_id": job.runner_group_id,
        "runner_group_name": job.runner_group_name,
        "updated_at": tx.now,
    }
    if job.locked_by and job.locked_by != ZERO_UUID:
        values["locked_by"] = job.locked_by
    if instance_id is not None:
        values["instance_id"] = instance_id
        values["runner_name"] = job.runner_name
    for field in ("repo_id", "org_id", "enterprise_id"):
        if getattr(job, field):
            values[field] = getattr(job, field)
    tx.conn.execute(update(workflow_jobs).where(workflow_jobs.c.id == job.id).values(**values))


class WebhookQueries(StoreBase):
    """Regression-proof job and runner writes for the webhook handler."""

    async def record_webhook_job(self, job: Job, *, create_allowed: bool) -> Job | None:
        """Create (``job/create``) or update (``job/update``) the job unless that would move it backwards.

        Returns the saved job, or ``None`` when nothing was written: the job is unknown and
        ``create_allowed`` is false (no pool of the entity can run it, runner spec §3.4 step 3), or the
        stored job is further along than ``job.status`` (a late delivery; no event).
        """

        def apply(tx: WriteTx) -> Job | None:
            conn = tx.conn
            row = conn.execute(
                select(workflow_jobs.c.status).where(workflow_jobs.c.id == job.id).with_for_update()
            ).first()
            instance_id = _instance_id(conn, job.runner_name)
            if row is None:
                if not create_allowed:
                    return None
                _insert_job(tx, job, instance_id)
                operation = Operation.CREATE
            else:
                if job_status_rank(job.status) < job_status_rank(row.status):
                    return None
                _update_job(tx, job, instance_id)
                operation = Operation.UPDATE
            saved_row = conn.execute(job_select().where(workflow_jobs.c.id == job.id)).one()
            saved = row_to_job(saved_row)
            tx.emit(EntityType.JOB, operation, saved)
            return saved

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
