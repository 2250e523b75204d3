"""Instance rows → wire models, and readers usable inside any transaction (the pool store nests
instances in a single pool's rendering).

Two renderings, as in GARM: lists show an instance with its job but without addresses and status
messages; a single read (``GET /instances/{name}``) shows everything.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, select

from pygarm.errors import NotFoundError
from pygarm.params.gojson import GO_ZERO_TIME
from pygarm.params.models import Address, Instance, Job, StatusMessage
from pygarm.store.base import as_utc
from pygarm.store.entity_kinds import KINDS, EntityKind, require_entity
from pygarm.store.jobs import job_select, row_to_job
from pygarm.store.tables import instance_addresses, instance_status_messages, instances, pools, workflow_jobs


def _jobs_by_instance(conn: Connection, instance_ids: list[str]) -> dict[str, Job]:
    if not instance_ids:
        return {}
    query = (
        job_select().where(workflow_jobs.c.instance_id.in_(instance_ids)).order_by(workflow_jobs.c.updated_at)
    )
    # GARM's Instance has one Job; should several point at it, the most recently updated one wins.
    return {row.instance_id: row_to_job(row) for row in conn.execute(query)}


def _addresses_by_instance(conn: Connection, instance_ids: list[str]) -> dict[str, list[Address]]:
    result: dict[str, list[Address]] = {}
    query = (
        select(instance_addresses)
        .where(instance_addresses.c.instance_id.in_(instance_ids))
        .order_by(instance_addresses.c.id)
    )
    for row in conn.execute(query):
        result.setdefault(row.instance_id, []).append(Address(address=row.address, type=row.type))
    return result


def _messages_by_instance(conn: Connection, instance_ids: list[str]) -> dict[str, list[StatusMessage]]:
    result: dict[str, list[StatusMessage]] = {}
    query = (
        select(instance_status_messages)
        .where(instance_status_messages.c.instance_id.in_(instance_ids))
        .order_by(instance_status_messages.c.created_at, instance_status_messages.c.id)
    )
    for row in conn.execute(query):
        result.setdefault(row.instance_id, []).append(
            StatusMessage(
                created_at=as_utc(row.created_at),
                message=row.message,
                event_type=row.event_type,
                event_level=row.event_level,
            )
        )
    return result


def _row_to_instance(
    row: Row[Any], job: Job | None, addresses: list[Address] | None, messages: list[StatusMessage] | None
) -> Instance:
    return Instance(
        id=row.id,
        provider_id=row.provider_id or "",
        agent_id=row.agent_id,
        name=row.name,
        os_type=row.os_type,
        os_name=row.os_name,
        os_version=row.os_version,
        os_arch=row.os_arch,
        addresses=addresses,
        status=row.status,
        runner_status=row.runner_status,
        pool_id=row.pool_id,
        provider_fault=bytes(row.provider_fault) if row.provider_fault else None,
        status_messages=messages,
        updated_at=as_utc(row.updated_at) or GO_ZERO_TIME,
        github_runner_group=row.github_runner_group,
        job=job,
    )


def instance_rows(conn: Connection, *where: ColumnElement[bool]) -> list[Row[Any]]:
    query = (
        select(instances, pools.c.provider_name, pools.c.runner_bootstrap_timeout)
        .select_from(instances.join(pools, instances.c.pool_id == pools.c.id))
        .where(*where)
        .order_by(instances.c.created_at, instances.c.name)
    )
    return list(conn.execute(query))


def render(conn: Connection, rows: list[Row[Any]], *, full: bool) -> list[Instance]:
    if not rows:
        return []  # no queries for the associations of nothing
    ids = [row.id for row in rows]
    jobs = _jobs_by_instance(conn, ids)
    addresses = _addresses_by_instance(conn, ids) if full else {}
    messages = _messages_by_instance(conn, ids) if full else {}
    return [
        _row_to_instance(row, jobs.get(row.id), addresses.get(row.id), messages.get(row.id)) for row in rows
    ]


def read_instances(conn: Connection, *where: ColumnElement[bool], full: bool = False) -> list[Instance]:
    """Instances matching ``where``; ``full`` adds addresses and status messages (single reads)."""
    return render(conn, instance_rows(conn, *where), full=full)


def instance_row(conn: Connection, name: str) -> Row[Any]:
    rows = instance_rows(conn, instances.c.name == name)
    if not rows:
        raise NotFoundError()
    return rows[0]


def read_instance(conn: Connection, name: str) -> Instance:
    """``GET /instances/{name}``: the full rendering."""
    return render(conn, [instance_row(conn, name)], full=True)[0]


def entity_filter(conn: Connection, kind: EntityKind, entity_id: str) -> ColumnElement[bool]:
    """Instances of any pool of the entity; 404 for an unknown entity."""
    owner_id = require_entity(conn, kind, entity_id)
    return instances.c.pool_id.in_(select(pools.c.id).where(KINDS[kind].pool_column == owner_id))
