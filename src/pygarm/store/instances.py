"""Runner instances: the rows pool managers create, update and delete (docs/garm-protocol.md#pool-managers).

Every ``instance/create`` / ``instance/update`` event carries the full rendering
(``store/instance_rows.py``: addresses, status messages and job), so each event payload is exactly what
``GET /instances/{name}`` returns at that moment. ``instance/delete`` carries the instance's last
state, a superset of GARM's partial payload (docs/garm-protocol.md#delete-payloads).

Secrets never reach the wire model: the JIT configuration is sealed at rest and returned only inside
:class:`InstanceRecord`, the pool manager's view of a row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, func, insert, select, update

from pygarm.errors import ConflictError, NotFoundError
from pygarm.events.change import EntityType, Operation
from pygarm.params.gojson import GO_ZERO_TIME
from pygarm.params.models import Address, Instance
from pygarm.store.base import StoreBase, as_utc, new_id
from pygarm.store.db import WriteTx
from pygarm.store.entity_kinds import EntityKind, parse_id
from pygarm.store.instance_rows import (
    entity_filter,
    instance_row,
    instance_rows,
    read_instance,
    read_instances,
    render,
)
from pygarm.store.jobs import job_select, remove_jobs, row_to_job
from pygarm.store.tables import instance_addresses, instance_status_messages, instances, pools, workflow_jobs

__all__ = [
    "CreateInstanceParams",
    "InstanceRecord",
    "InstanceStore",
    "NewStatusMessage",
    "UpdateInstanceParams",
    "read_instance",
    "read_instances",
]

EVENT_TYPE_STATUS = "status"
EVENT_LEVEL_INFO = "info"


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateInstanceParams:
    """A new runner row (GARM's ``CreateInstanceParams``); the pool manager fills it in."""

    name: str
    os_type: str = ""
    os_arch: str = ""
    status: str = ""
    runner_status: str = ""
    callback_url: str = ""
    metadata_url: str = ""
    github_runner_group: str = ""
    create_attempt: int = 0
    agent_id: int = 0
    aditional_labels: Sequence[str] = ()
    jit_configuration: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateInstanceParams:
    """GARM's ``UpdateInstanceParams`` with its semantics (docs/garm-protocol.md#instance-updates): zero
    values leave a field alone, except ``provider_fault``, which every update overwrites (so an update without
    a fault clears it); ``addresses`` replace the old ones only when non-empty."""

    provider_id: str = ""
    os_name: str = ""
    os_version: str = ""
    addresses: Sequence[Address] = ()
    status: str = ""
    runner_status: str = ""
    provider_fault: bytes = b""
    agent_id: int = 0
    create_attempt: int = 0
    token_fetched: bool | None = None
    jit_configuration: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewStatusMessage:
    message: str
    event_type: str = EVENT_TYPE_STATUS
    event_level: str = EVENT_LEVEL_INFO


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """What a pool manager needs about a runner and the wire model must never carry."""

    instance: Instance
    callback_url: str
    metadata_url: str
    create_attempt: int
    token_fetched: bool
    jit_configuration: dict[str, str]
    aditional_labels: list[str]
    provider_name: str
    runner_bootstrap_timeout: int
    created_at: datetime


class InstanceStore(StoreBase):
    """Runner rows. Names are globally unique, and so are provider IDs."""

    def _seal_jit(self, config: Mapping[str, str] | None) -> bytes | None:
        return self.sealer.seal_text(json.dumps(dict(config))) if config else None

    def _record(self, row: Row[Any], instance: Instance) -> InstanceRecord:
        jit = (
            json.loads(self.sealer.unseal_text(bytes(row.jit_configuration))) if row.jit_configuration else {}
        )
        return InstanceRecord(
            instance=instance,
            callback_url=row.callback_url,
            metadata_url=row.metadata_url,
            create_attempt=row.create_attempt,
            token_fetched=row.token_fetched,
            jit_configuration=jit,
            aditional_labels=json.loads(row.aditional_labels) if row.aditional_labels else [],
            provider_name=row.provider_name,
            runner_bootstrap_timeout=row.runner_bootstrap_timeout,
            created_at=as_utc(row.created_at) or GO_ZERO_TIME,
        )

    async def create_instance(self, pool_id: str, params: CreateInstanceParams) -> Instance:
        """Insert a runner into a pool and emit ``instance/create``.

        Raises NotFoundError for an unknown pool and ConflictError when the name is taken.
        """
        jit = self._seal_jit(params.jit_configuration)

        def apply(tx: WriteTx) -> Instance:
            conn = tx.conn
            pool = parse_id(pool_id)
            if conn.execute(select(pools.c.id).where(pools.c.id == pool)).first() is None:
                raise NotFoundError()
            if conn.execute(select(instances.c.id).where(instances.c.name == params.name)).first():
                raise ConflictError(f"instance {params.name} already exists")
            conn.execute(
                insert(instances).values(
                    id=new_id(),
                    provider_id=None,
                    name=params.name,
                    agent_id=params.agent_id,
                    os_type=params.os_type,
                    os_arch=params.os_arch,
                    os_name="",
                    os_version="",
                    status=params.status,
                    runner_status=params.runner_status,
                    callback_url=params.callback_url,
                    metadata_url=params.metadata_url,
                    provider_fault=None,
                    create_attempt=params.create_attempt,
                    token_fetched=False,
                    jit_configuration=jit,
                    github_runner_group=params.github_runner_group,
                    aditional_labels=json.dumps(list(params.aditional_labels))
                    if params.aditional_labels
                    else None,
                    pool_id=pool,
                    created_at=tx.now,
                    updated_at=tx.now,
                )
            )
            instance = read_instance(conn, params.name)
            tx.emit(EntityType.INSTANCE, Operation.CREATE, instance)
            return instance

        return await self.db.write(apply)

    async def update_instance(
        self, name: str, params: UpdateInstanceParams, *, status_message: NewStatusMessage | None = None
    ) -> Instance:
        """Apply GARM's update semantics and emit one ``instance/update`` with the full instance.

        ``status_message`` is appended in the same transaction (GARM's callback handler calls
        ``AddInstanceEvent`` and then ``UpdateInstance``: two writes, one event; here: one of each).
        Raises NotFoundError, or ConflictError when ``provider_id`` belongs to another instance.
        """
        jit = self._seal_jit(params.jit_configuration) if params.jit_configuration is not None else None

        def apply(tx: WriteTx) -> Instance:
            conn = tx.conn
            row = instance_row(conn, name)
            values: dict[str, object] = {
                "updated_at": tx.now,
                "provider_fault": params.provider_fault or None,
            }
            for key in ("agent_id", "os_name", "os_version", "runner_status", "status", "create_attempt"):
                if getattr(params, key):
                    values[key] = getattr(params, key)
            if params.provider_id:
                taken = conn.execute(
                    select(instances.c.name).where(
                        instances.c.provider_id == params.provider_id, instances.c.id != row.id
                    )
                ).first()
                if taken is not None:
                    raise ConflictError(f"provider_id {params.provider_id} is used by instance {taken.name}")
                values["provider_id"] = params.provider_id
            if params.token_fetched is not None:
                values["token_fetched"] = params.token_fetched
            if params.jit_configuration is not None:
                values["jit_configuration"] = jit
            conn.execute(update(instances).where(instances.c.id == row.id).values(**values))
            if params.addresses:
                conn.execute(delete(instance_addresses).where(instance_addresses.c.instance_id == row.id))
                conn.execute(
                    insert(instance_addresses),
                    [{"instance_id": row.id, "address": a.address, "type": a.type} for a in params.addresses],
                )
            if status_message is not None:
                self._insert_message(tx, row.id, status_message)
            instance = read_instance(conn, name)
            tx.emit(EntityType.INSTANCE, Operation.UPDATE, instance)
            return instance

        return await self.db.write(apply)

    @staticmethod
    def _insert_message(tx: WriteTx, instance_id: str, message: NewStatusMessage) -> None:
        tx.conn.execute(
            insert(instance_status_messages).values(
                instance_id=instance_id,
                event_type=message.event_type,
                event_level=message.event_level,
                message=message.message,
                created_at=tx.now,
            )
        )

    async def add_instance_status_message(self, name: str, message: NewStatusMessage) -> Instance:
        """Append a status message alone. Unlike GARM's ``AddInstanceEvent`` this emits
        ``instance/update``: the message is part of the instance's REST body, so subscribers must hear
        of it. Prefer ``update_instance(..., status_message=...)`` when both change together."""

        def apply(tx: WriteTx) -> Instance:
            row = instance_row(tx.conn, name)
            self._insert_message(tx, row.id, message)
            instance = read_instance(tx.conn, name)
            tx.emit(EntityType.INSTANCE, Operation.UPDATE, instance)
            return instance

        return await self.db.write(apply)

    async def delete_instance(self, name: str, *, pool_id: str | None = None) -> Instance | None:
        """Hard-delete a runner and emit ``instance/delete`` with its last state; ``None`` (and no
        event) when it does not exist (in ``pool_id``, if given), as GARM's delete is idempotent.

        Jobs linked to the instance go with it, as GARM's ``ON DELETE CASCADE`` does, but each with a
        ``job/delete`` event (GARM removes them silently).
        """

        def apply(tx: WriteTx) -> Instance | None:
            conn = tx.conn
            where = [instances.c.name == name]
            if pool_id is not None:
                where.append(instances.c.pool_id == parse_id(pool_id))
            rows = instance_rows(conn, *where)
            if not rows:
                return None
            instance = render(conn, rows, full=True)[0]
            linked = [
                row_to_job(r)
                for r in conn.execute(job_select().where(workflow_jobs.c.instance_id == instance.id))
            ]
            remove_jobs(tx, linked)
            conn.execute(delete(instance_addresses).where(instance_addresses.c.instance_id == instance.id))
            conn.execute(
                delete(instance_status_messages).where(instance_status_messages.c.instance_id == instance.id)
            )
            conn.execute(delete(instances).where(instances.c.id == instance.id))
            tx.emit(EntityType.INSTANCE, Operation.DELETE, instance)
            return instance

        return await self.db.write(apply)

    async def get_instance(self, name: str) -> Instance:
        return await self.db.read(lambda conn: read_instance(conn, name))

    async def list_all_instances(self) -> list[Instance]:
        return await self.db.read(read_instances)

    async def list_pool_instances(self, pool_id: str) -> list[Instance]:
        """GARM does not check that the pool exists: an unknown pool simply has no instances."""
        pool = parse_id(pool_id)
        return await self.db.read(lambda conn: read_instances(conn, instances.c.pool_id == pool))

    async def list_entity_instances(self, kind: EntityKind, entity_id: str) -> list[Instance]:
        """Instances of every pool of an entity; 404 for an unknown entity."""
        return await self.db.read(lambda conn: read_instances(conn, entity_filter(conn, kind, entity_id)))

    async def pool_instance_count(self, pool_id: str) -> int:
        pool = parse_id(pool_id)

        def query(conn: Connection) -> int:
            return int(conn.execute(select(func.count()).where(instances.c.pool_id == pool)).scalar_one())

        return await self.db.read(query)

    async def get_instance_record(self, name: str) -> InstanceRecord:
        """The pool manager's view of one runner (full rendering plus the internal fields)."""

        def query(conn: Connection) -> InstanceRecord:
            row = instance_row(conn, name)
            return self._record(row, render(conn, [row], full=True)[0])

        return await self.db.read(query)

    async def list_instance_records(
        self,
        *,
        pool_id: str | None = None,
        entity: tuple[EntityKind, str] | None = None,
        statuses: Sequence[str] | None = None,
    ) -> list[InstanceRecord]:
        """Runner rows for the pool manager's loops, optionally by pool, entity and status."""

        def query(conn: Connection) -> list[InstanceRecord]:
            where: list[ColumnElement[bool]] = []
            if pool_id is not None:
                where.append(instances.c.pool_id == parse_id(pool_id))
            if entity is not None:
                where.append(entity_filter(conn, *entity))
            if statuses is not None:
                where.append(instances.c.status.in_(list(statuses)))
            rows = instance_rows(conn, *where)
            return [
                self._record(row, inst)
                for row, inst in zip(rows, render(conn, rows, full=False), strict=True)
            ]

        return await self.db.read(query)
