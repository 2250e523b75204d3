"""Instance rows → wire models, and readers usable inside any transaction (the pool store nests
instances in a single pool's rendering).

Two renderings, as in GARM: lists show an instance with its job but without addresses and status
messages; a single read (``GET /instances/{name}``) shows everything.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Connection, Row, bindparam, select

from pygarm.errors import NotFoundError
from pygarm.params.gojson import GO_ZERO_TIME
from pygarm.params.models import Address, Instance, Job, StatusMessage
from pygarm.store.base import as_utc
from pygarm.store.entity_kinds import KINDS, EntityKind, require_entity
from pygarm.store.fastsql import Prepared
from pygarm.store.jobs import job_select, row_to_job
from pygarm.store.tables import instance_addresses, instance_status_messages, instances, pools, workflow_jobs

_JOBS = job_select().order_by(workflow_jobs.c.updated_at)
_ADDRESSES = select(instance_addresses).order_by(instance_addresses.c.id)
_MESSAGES = select(instance_status_messages).order_by(
    instance_status_messages.c.created_at, instance_status_messages.c.id
)
_ONE_ID: BindParameter[str] = bindparam("instance_id")
# One instance (a single read, a pool's only runner): compiled once, run on the driver (store/fastsql.py).
_JOBS_OF_ONE = Prepared(_JOBS.where(workflow_jobs.c.instance_id == _ONE_ID))
_ADDRESSES_OF_ONE = Prepared(_ADDRESSES.where(instance_addresses.c.instance_id == _ONE_ID))
_MESSAGES_OF_ONE = Prepared(_MESSAGES.where(instance_status_messages.c.instance_id == _ONE_ID))


def _jobs_by_instance(conn: Connection, instance_ids: list[str]) -> dict[str, Job]:
    if not instance_ids:
        return {}
    if len(instance_ids) == 1:
        rows = _JOBS_OF_ONE.all(conn, {"instance_id": instance_ids[0]})
    else:
        rows = list(conn.execute(_JOBS.where(workflow_jobs.c.instance_id.in_(instance_ids))))
    # GARM's Instance has one Job; should several point at it, the most recently updated one wins.
    return {row.instance_id: row_to_job(row) for row in rows}


def _addresses_by_instance(conn: Connection, instance_ids: list[str]) -> dict[str, list[Address]]:
    result: dict[str, list[Address]] = {}
    if len(instance_ids) == 1:
        rows = _ADDRESSES_OF_ONE.all(conn, {"instance_id": instance_ids[0]})
    else:
        rows = list(conn.execute(_ADDRESSES.where(instance_addresses.c.instance_id.in_(instance_ids))))
    for row in rows:
        result.setdefault(row.instance_id, []).append(Address(address=row.address, type=row.type))
    return result


def _messages_by_instance(conn: Connection, instance_ids: list[str]) -> dict[str, list[StatusMessage]]:
    result: dict[str, list[StatusMessage]] = {}
    if len(instance_ids) == 1:
        rows = _MESSAGES_OF_ONE.all(conn, {"instance_id": instance_ids[0]})
    else:
        rows = list(
            conn.execute(_MESSAGES.where(instance_status_messages.c.instance_id.in_(instance_ids)))
        )
    for row in rows:
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


_INSTANCE_SELECT = (
    select(instances, pools.c.provider_name, pools.c.runner_bootstrap_timeout)
    .select_from(instances.join(pools, instances.c.pool_id == pools.c.id))
    .order_by(instances.c.created_at, instances.c.name)
)
_INSTANCE_BY_NAME = Prepared(_INSTANCE_SELECT.where(instances.c.name == bindparam("name")))
_POOL_INSTANCES = Prepared(_INSTANCE_SELECT.where(instances.c.pool_id == bindparam("pool_id")))


def instance_rows(conn: Connection, *where: ColumnElement[bool]) -> list[Row[Any]]:
    return list(conn.execute(_INSTANCE_SELECT.where(*where)))


def pool_instances(conn: Connection, pool_id: str) -> list[Instance]:
    """A pool's instances, list rendering (as nested in a single pool)."""
    return render(conn, _POOL_INSTANCES.all(conn, {"pool_id": pool_id}), full=False)


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
    row: Row[Any] | None = _INSTANCE_BY_NAME.first(conn, {"name": name})
    if row is None:
        raise NotFoundError()
    return row


def read_instance(conn: Connection, name: str) -> Instance:
    """``GET /instances/{name}``: the full rendering."""
    return render(conn, [instance_row(conn, name)], full=True)[0]


def entity_filter(conn: Connection, kind: EntityKind, entity_id: str) -> ColumnElement[bool]:
    """Instances of any pool of the entity; 404 for an unknown entity."""
    owner_id = require_entity(conn, kind, entity_id)
    return instances.c.pool_id.in_(select(pools.c.id).where(KINDS[kind].pool_column == owner_id))
