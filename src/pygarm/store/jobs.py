"""Workflow jobs: the records GARM keeps of GitHub ``workflow_job`` webhooks
(docs/garm-protocol.md#job-records).

Every mutation emits one ``job`` event per job it touches, with the job as ``GET /api/v1/jobs`` shows it
at that moment. Differences from GARM v0.1.5 (``docs/compatibility.md``):

* ``runner_name`` is always the name of the linked instance as it is *now* (GARM derives it from the
  instance it preloaded before the write, so the update that first links a runner shows ``""``);
* deletes are hard deletes whose ``job/delete`` payload is the job's last state (GARM: a soft delete with
  an ID-only payload, after which the same job ID can never be recorded again);
* :meth:`JobStore.delete_completed_jobs` emits a ``job/delete`` per job it removes (GARM purges silently).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Select, delete, insert, select, update

from pygarm.errors import ConflictError, NotFoundError
from pygarm.events.change import EntityType, Operation
from pygarm.params.gojson import GO_ZERO_TIME, ZERO_UUID
from pygarm.params.models import Job
from pygarm.store.base import StoreBase, as_utc
from pygarm.store.db import WriteTx
from pygarm.store.entity_kinds import KINDS, EntityKind
from pygarm.store.tables import instances, workflow_jobs

JOB_STATUS_QUEUED = "queued"
JOB_STATUS_IN_PROGRESS = "in_progress"
JOB_STATUS_COMPLETED = "completed"

_ENTITY_JOB_COLUMNS = {
    EntityKind.REPOSITORY: workflow_jobs.c.repo_id,
    EntityKind.ORGANIZATION: workflow_jobs.c.org_id,
    EntityKind.ENTERPRISE: workflow_jobs.c.enterprise_id,
}
assert set(_ENTITY_JOB_COLUMNS) == set(KINDS)


def job_select() -> Select[Any]:
    """Jobs with the name of their linked instance (``runner_name`` on the wire)."""
    return select(workflow_jobs, instances.c.name.label("instance_name")).select_from(
        workflow_jobs.outerjoin(instances, workflow_jobs.c.instance_id == instances.c.id)
    )


def _time_or_zero(value: datetime | None) -> datetime:
    return as_utc(value) or GO_ZERO_TIME


def _time_or_null(value: datetime) -> datetime | None:
    """Go's zero time means "not set"; the database keeps NULL for it."""
    return None if value.year == 1 else value


def row_to_job(row: Row[Any]) -> Job:
    """One converter for every place a job appears (REST list, events, nested in an instance)."""
    labels = json.loads(row.labels) if row.labels else []
    return Job(
        id=row.id,
        run_id=row.run_id,
        action=row.action,
        conclusion=row.conclusion,
        status=row.status,
        name=row.name,
        started_at=_time_or_zero(row.started_at),
        completed_at=_time_or_zero(row.completed_at),
        runner_id=row.github_runner_id,
        runner_name=row.instance_name or "",
        runner_group_id=row.runner_group_id,
        runner_group_name=row.runner_group_name,
        repository_name=row.repository_name,
        repository_owner=row.repository_owner,
        labels=labels,
        repo_id=row.repo_id,
        org_id=row.org_id,
        enterprise_id=row.enterprise_id,
        locked_by=row.locked_by,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def read_jobs(conn: Connection, *where: ColumnElement[bool]) -> list[Job]:
    query = job_select().where(*where).order_by(workflow_jobs.c.created_at, workflow_jobs.c.id)
    return [row_to_job(row) for row in conn.execute(query)]


def _job_or_none(conn: Connection, job_id: int) -> Job | None:
    row = conn.execute(job_select().where(workflow_jobs.c.id == job_id)).first()
    return None if row is None else row_to_job(row)


def _job(conn: Connection, job_id: int) -> Job:
    job = _job_or_none(conn, job_id)
    if job is None:
        raise NotFoundError()
    return job


def stored_job_status(conn: Connection, job_id: int, *, for_update: bool = False) -> str | None:
    """The status of the job as stored, ``None`` when it is unknown; ``for_update`` locks its row
    (``SELECT … FOR UPDATE`` on PostgreSQL) until the transaction ends."""
    query = select(workflow_jobs.c.status).where(workflow_jobs.c.id == job_id)
    if for_update:
        query = query.with_for_update()
    return conn.execute(query).scalar_one_or_none()


def _instance_id_by_name(conn: Connection, name: str) -> str | None:
    if not name:
        return None
    return conn.execute(select(instances.c.id).where(instances.c.name == name)).scalar_one_or_none()


def _changes_nothing(conn: Connection, job_id: int, values: dict[str, object]) -> bool:
    """Whether writing ``values`` (all but ``updated_at``) would leave the stored row as it is."""
    row = conn.execute(select(workflow_jobs).where(workflow_jobs.c.id == job_id)).first()
    if row is None:
        return False
    for column, value in values.items():
        if column == "updated_at":
            continue
        stored = getattr(row, column)
        if isinstance(stored, datetime):
            stored = as_utc(stored)
        if stored != value:
            return False
    return True


def upsert_job(tx: WriteTx, job: Job, *, exists: bool, skip_unchanged: bool = False) -> Job | None:
    """GARM's ``CreateOrUpdateJob`` inside a write transaction: insert ``job`` (``job/create``) or, when
    it ``exists``, update the stored one (``job/update``); returns the job as saved.

    The caller decides ``exists`` (and whether to write at all) from its own read of the row, so that a
    caller that must lock the row first (the webhook handler) and one that need not (``JobStore``) share
    these rules. With ``skip_unchanged``, an update that would change no stored field but ``updated_at``
    writes and emits nothing and returns ``None`` (a repeated webhook delivery). A new job copies every
    field and links the instance named ``runner_name`` if there is one. An update changes only status,
    action, conclusion, times, runner and group IDs, the runner group name, ``LockedBy`` (when not the
    zero UUID), the instance link (when ``runner_name`` names an instance) and the entity IDs (set, never
    cleared); labels, name and run ID never change (``garm@v0.1.5 database/sql/jobs.go:225-264``).
    """
    conn = tx.conn
    instance_id = _instance_id_by_name(conn, job.runner_name)
    if not exists:
        conn.execute(
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
        operation = Operation.CREATE
    else:
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
        if skip_unchanged and _changes_nothing(conn, job.id, values):
            return None
        conn.execute(update(workflow_jobs).where(workflow_jobs.c.id == job.id).values(**values))
        operation = Operation.UPDATE
    saved = _job(conn, job.id)
    tx.emit(EntityType.JOB, operation, saved)
    return saved


def _swap_lock(tx: WriteTx, job_id: int, expected: str, new: str) -> Job:
    """Compare-and-swap of ``locked_by``: from ``expected`` to ``new`` (``job/update``).

    Already ``new``: nothing changes and nothing is emitted. Held by anyone but ``expected``: 409 ``job is
    locked by another entity <id>``. Unknown job: 404. Locking swaps the zero UUID for the entity ID,
    unlocking the entity ID for the zero UUID.
    """
    job = _job(tx.conn, job_id)
    if job.locked_by == new:
        return job
    if job.locked_by != expected:
        raise ConflictError(f"job is locked by another entity {job.locked_by}")
    return _set_lock(tx, job_id, new)


def _set_lock(tx: WriteTx, job_id: int, locked_by: str) -> Job:
    tx.conn.execute(
        update(workflow_jobs)
        .where(workflow_jobs.c.id == job_id)
        .values(locked_by=locked_by, updated_at=tx.now)
    )
    job = _job(tx.conn, job_id)
    tx.emit(EntityType.JOB, Operation.UPDATE, job)
    return job


def remove_jobs(tx: WriteTx, jobs: Iterable[Job]) -> int:
    """Delete jobs and emit one ``job/delete`` (last state) each; also used when an instance goes."""
    count = 0
    for job in jobs:
        tx.conn.execute(delete(workflow_jobs).where(workflow_jobs.c.id == job.id))
        tx.emit(EntityType.JOB, Operation.DELETE, job)
        count += 1
    return count


class JobStore(StoreBase):
    """Jobs for the webhook handler and the pool managers' job queue (docs/garm-protocol.md#webhooks)."""

    async def create_or_update_job(self, job: Job) -> Job:
        """GARM's ``CreateOrUpdateJob``: record a new job (``job/create``) or update a known one
        (``job/update``), with the rules of :func:`upsert_job`."""

        def apply(tx: WriteTx) -> Job:
            saved = upsert_job(tx, job, exists=stored_job_status(tx.conn, job.id) is not None)
            assert saved is not None
            return saved

        return await self.db.write(apply)

    async def lock_job(self, job_id: int, entity_id: str) -> Job:
        """Mark the job as being served by ``entity_id``'s pool manager (``job/update``).

        Locking a job the same entity already holds changes nothing and emits nothing; a job held by
        another entity is 409 ``job is locked by another entity <id>``; an unknown job is 404.
        """
        return await self.db.write(lambda tx: _swap_lock(tx, job_id, ZERO_UUID, entity_id))

    async def unlock_job(self, job_id: int, entity_id: str) -> Job:
        """Release ``entity_id``'s lock (``job/update``); no-op when unlocked, 409 when held by another."""
        return await self.db.write(lambda tx: _swap_lock(tx, job_id, entity_id, ZERO_UUID))

    async def break_lock_job_is_queued(self, job_id: int) -> Job | None:
        """Unlock a job that is still queued, whoever holds it (``job/update``); ``None`` if unknown."""

        def apply(tx: WriteTx) -> Job | None:
            job = _job_or_none(tx.conn, job_id)
            if job is None or job.status != JOB_STATUS_QUEUED or job.locked_by == ZERO_UUID:
                return job
            return _set_lock(tx, job_id, ZERO_UUID)

        return await self.db.write(apply)

    async def delete_job(self, job_id: int) -> Job | None:
        """Remove a job (``job/delete`` with its last state); ``None`` when there was no such job."""

        def apply(tx: WriteTx) -> Job | None:
            job = _job_or_none(tx.conn, job_id)
            if job is not None:
                remove_jobs(tx, [job])
            return job

        return await self.db.write(apply)

    async def delete_completed_jobs(self) -> int:
        """Purge every ``completed`` job, one ``job/delete`` each; returns how many went."""

        def apply(tx: WriteTx) -> int:
            return remove_jobs(tx, read_jobs(tx.conn, workflow_jobs.c.status == JOB_STATUS_COMPLETED))

        return await self.db.write(apply)

    async def get_job(self, job_id: int) -> Job:
        return await self.db.read(lambda conn: _job(conn, job_id))

    async def list_all_jobs(self) -> list[Job]:
        return await self.db.read(read_jobs)

    async def list_jobs_by_status(self, status: str) -> list[Job]:
        return await self.db.read(lambda conn: read_jobs(conn, workflow_jobs.c.status == status))

    async def list_entity_jobs_by_status(self, kind: EntityKind, entity_id: str, status: str) -> list[Job]:
        """Jobs recorded for one entity (the job queue consumer's view, docs/garm-protocol.md#job-queue)."""
        column = _ENTITY_JOB_COLUMNS[kind]
        return await self.db.read(
            lambda conn: read_jobs(conn, column == entity_id, workflow_jobs.c.status == status)
        )
