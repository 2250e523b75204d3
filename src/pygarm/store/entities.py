"""Repositories, organizations and enterprises: one code path for the three kinds
(docs/garm-protocol.md#repository, docs/garm-protocol.md#organization-and-enterprise).

Every function takes an :class:`~pygarm.store.entity_kinds.EntityKind`; what differs between the kinds
(table, wire model, event type, message words) comes from :data:`~pygarm.store.entity_kinds.KINDS`.

One rendering serves ``GET /<entity>/{id}`` and every event: the detailed credentials (with their
endpoint), the endpoint, ``pool_balancing_type`` with ``""`` read as ``roundrobin``, the entity's pools
(list rendering, omitted when there are none) and ``pool_manager_status`` ``{"running": false}``. So a
``create``/``update``/``delete`` event's payload is exactly the body of ``GET /<entity>/{id}`` at that
moment. GARM differs in two corners (``docs/compatibility.md``): its ``GET`` by ID leaves the nested
credentials' endpoint and URLs empty (not preloaded), and its update event has no ``pool`` list.

The webhook secret is sealed at rest and never part of a wire model; only
:meth:`EntityStore.get_entity_webhook_secret` opens it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from pygarm.errors import BadRequestError, ConflictError, NotFoundError
from pygarm.events.change import Operation
from pygarm.params.entity_requests import DEFAULT_POOL_BALANCER_TYPE, CreateEntityParams, UpdateEntityParams
from pygarm.params.models import GithubCredentials, GithubEndpoint
from pygarm.store.base import StoreBase, new_id
from pygarm.store.db import WriteTx
from pygarm.store.entity_kinds import KINDS, Entity, EntityKind, KindSpec, parse_id
from pygarm.store.github import find_credentials_row, read_credentials, read_endpoint
from pygarm.store.pools import read_pools


class _Lookups:
    """Credentials and endpoints read once per call, however many entities share them."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._credentials: dict[int, GithubCredentials] = {}
        self._endpoints: dict[str, GithubEndpoint] = {}

    def credentials(self, credentials_id: int | None) -> GithubCredentials:
        if credentials_id is None:
            return GithubCredentials()
        if credentials_id not in self._credentials:
            self._credentials[credentials_id] = read_credentials(self.conn, credentials_id)
        return self._credentials[credentials_id]

    def endpoint(self, name: str) -> GithubEndpoint:
        if name not in self._endpoints:
            self._endpoints[name] = read_endpoint(self.conn, name)
        return self._endpoints[name]


def _row_to_entity(spec: KindSpec, row: Row[Any], lookups: _Lookups, with_pools: bool) -> Entity:
    credentials = lookups.credentials(row.credentials_id)
    fields: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "pool": read_pools(lookups.conn, spec.pool_column == row.id) if with_pools else None,
        "credentials_name": credentials.name,
        "credentials_id": row.credentials_id or 0,
        "credentials": credentials,
        "pool_balancing_type": row.pool_balancer_type or DEFAULT_POOL_BALANCER_TYPE,
        "endpoint": lookups.endpoint(row.endpoint_name),
    }
    if spec.has_owner:
        fields["owner"] = row.owner
    return spec.model(**fields)


def _entity_row(conn: Connection, spec: KindSpec, entity_id: str) -> Row[Any]:
    row = conn.execute(select(spec.table).where(spec.table.c.id == parse_id(entity_id))).first()
    if row is None:
        raise NotFoundError()
    return row


def read_entity(conn: Connection, kind: EntityKind, entity_id: str) -> Entity:
    """``GET /<entity>/{id}`` (with the pool list)."""
    spec = KINDS[kind]
    return _row_to_entity(spec, _entity_row(conn, spec, entity_id), _Lookups(conn), with_pools=True)


def _name_filter(spec: KindSpec, owner: str, name: str, endpoint_name: str) -> list[Any]:
    """Names match case-insensitively within one endpoint (GARM's ``COLLATE NOCASE``)."""
    where = [spec.table.c.name_key == name.lower(), spec.table.c.endpoint_name == endpoint_name]
    if spec.has_owner:
        where.append(spec.table.c.owner_key == owner.lower())
    return where


def _already_exists(spec: KindSpec, owner: str, name: str) -> ConflictError:
    return ConflictError(f"{spec.kind.value} {spec.display_name(owner, name)} already exists")


class EntityStore(StoreBase):
    async def create_entity(self, kind: EntityKind, params: CreateEntityParams) -> Entity:
        """Create a repository/organization/enterprise and emit ``<kind>/create``.

        ``params`` must be validated. The credentials are looked up by name (400 ``credentials <name>
        not defined``) and give the entity its endpoint; the name (and owner) must be new on that
        endpoint, compared case-insensitively (409 ``<kind> <name> already exists``).
        """
        spec = KINDS[kind]
        owner, name = params.owner_name, params.name
        sealed_secret = self.sealer.seal_text(params.webhook_secret)

        def apply(tx: WriteTx) -> Entity:
            credentials = find_credentials_row(tx.conn, params.credentials_name)
            if credentials is None:
                raise BadRequestError(f"credentials {params.credentials_name} not defined")
            endpoint_name = credentials.endpoint_name
            if tx.conn.execute(
                select(spec.table.c.id).where(*_name_filter(spec, owner, name, endpoint_name))
            ).first():
                raise _already_exists(spec, owner, name)
            entity_id = new_id()
            names: dict[str, str] = {"name": name, "name_key": name.lower()}
            if spec.has_owner:
                names.update(owner=owner, owner_key=owner.lower())
            tx.conn.execute(
                insert(spec.table).values(
                    id=entity_id,
                    credentials_name=credentials.name,
                    credentials_id=credentials.id,
                    webhook_secret=sealed_secret,
                    pool_balancer_type=params.pool_balancer_type,
                    endpoint_name=endpoint_name,
                    created_at=tx.now,
                    updated_at=tx.now,
                    **names,
                )
            )
            entity = read_entity(tx.conn, kind, entity_id)
            tx.emit(spec.event_type, Operation.CREATE, entity)
            return entity

        try:
            return await self.db.write(apply)
        except IntegrityError as exc:  # another process won the race for the same name
            raise _already_exists(spec, owner, name) from exc

    async def get_entity(self, kind: EntityKind, entity_id: str) -> Entity:
        """One entity with its pools; 400 for a malformed ID, 404 for an unknown one."""
        return await self.db.read(lambda conn: read_entity(conn, kind, entity_id))

    async def list_entities(self, kind: EntityKind) -> list[Entity]:
        """All entities of a kind, without pools (as GARM lists them), oldest first."""
        spec = KINDS[kind]

        def query(conn: Connection) -> list[Entity]:
            lookups = _Lookups(conn)
            rows = conn.execute(select(spec.table).order_by(spec.table.c.created_at, spec.table.c.id))
            return [_row_to_entity(spec, row, lookups, with_pools=False) for row in rows]

        return await self.db.read(query)

    async def find_entity(
        self, kind: EntityKind, name: str, endpoint_name: str, owner: str = ""
    ) -> Entity | None:
        """An entity by (owner and) name on an endpoint, case-insensitively (webhook dispatch)."""
        spec = KINDS[kind]

        def query(conn: Connection) -> Entity | None:
            row = conn.execute(
                select(spec.table).where(*_name_filter(spec, owner, name, endpoint_name))
            ).first()
            return None if row is None else _row_to_entity(spec, row, _Lookups(conn), with_pools=True)

        return await self.db.read(query)

    async def update_entity(self, kind: EntityKind, entity_id: str, params: UpdateEntityParams) -> Entity:
        """Apply the non-empty fields of ``params`` and emit ``<kind>/update``.

        Unknown credentials are 404 and credentials of another endpoint are 400 ``invalid request``
        (GARM: ``endpoint mismatch`` wrapping ``ErrBadRequest``).
        """
        spec = KINDS[kind]
        sealed_secret = self.sealer.seal_text(params.webhook_secret) if params.webhook_secret else None

        def apply(tx: WriteTx) -> Entity:
            row = _entity_row(tx.conn, spec, entity_id)
            values: dict[str, object] = {"updated_at": tx.now}
            if params.credentials_name:
                credentials = find_credentials_row(tx.conn, params.credentials_name)
                if credentials is None:
                    raise NotFoundError()
                if credentials.endpoint_name != row.endpoint_name:
                    raise BadRequestError("invalid request")
                values.update(credentials_id=credentials.id, credentials_name=credentials.name)
            if sealed_secret is not None:
                values["webhook_secret"] = sealed_secret
            if params.pool_balancer_type:
                values["pool_balancer_type"] = params.pool_balancer_type
            tx.conn.execute(update(spec.table).where(spec.table.c.id == row.id).values(**values))
            entity = read_entity(tx.conn, kind, row.id)
            tx.emit(spec.event_type, Operation.UPDATE, entity)
            return entity

        return await self.db.write(apply)

    async def delete_entity(self, kind: EntityKind, entity_id: str) -> Entity:
        """Delete an entity that has no pools and emit ``<kind>/delete`` with its last state.

        An entity with pools is 400 ``<repo|org|enterprise> has pools defined (<id>, …)``.
        """
        spec = KINDS[kind]

        def apply(tx: WriteTx) -> Entity:
            entity = read_entity(tx.conn, kind, entity_id)
            if entity.pool:
                pool_ids = ", ".join(pool.id for pool in entity.pool)
                raise BadRequestError(f"{spec.short_name} has pools defined ({pool_ids})")
            tx.conn.execute(delete(spec.table).where(spec.table.c.id == entity.id))
            tx.emit(spec.event_type, Operation.DELETE, entity)
            return entity

        return await self.db.write(apply)

    async def get_entity_webhook_secret(self, kind: EntityKind, entity_id: str) -> str:
        """The decrypted webhook secret, for checking ``X-Hub-Signature-256``; never on the wire."""
        spec = KINDS[kind]

        def query(conn: Connection) -> bytes:
            return bytes(_entity_row(conn, spec, entity_id).webhook_secret)

        return self.sealer.unseal_text(await self.db.read(query))
