"""Pools and their tags, under any entity kind (docs/garm-protocol.md#pool, docs/garm-protocol.md#tag).

Two renderings, as GARM's preloads produce them: a single pool (``GET /pools/{id}``, the entity pool
routes, every ``pool`` event) has its instances and ``extra_specs``; lists have ``"instances": []`` and
no ``extra_specs`` (GARM does not select that column for lists). Both always carry the tags and the
owning entity's ID and name.

Each mutation is one transaction that ends with one ``pool`` event whose payload is the single-pool
rendering at that moment; ``pool/delete`` carries the pool's last state (GARM: ID only,
docs/garm-protocol.md#delete-payloads).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, Row, bindparam, delete, exists, func, insert, select, update

from pygarm.errors import BadRequestError, NotFoundError
from pygarm.events.change import EntityType, Operation
from pygarm.params.entity_requests import DEFAULT_RUNNER_PREFIX, CreatePoolParams, UpdatePoolParams
from pygarm.params.models import Instance, Pool, Tag
from pygarm.store.base import StoreBase, new_id
from pygarm.store.db import WriteTx
from pygarm.store.entity_kinds import KINDS, EntityKind, parse_id, require_entity
from pygarm.store.fastsql import Prepared
from pygarm.store.instance_rows import pool_instances, read_instances
from pygarm.store.tables import enterprises, instances, organizations, pool_tags, pools, repositories, tags

EntityRef = tuple[EntityKind, str]
"""An entity as ``(kind, id)``: scopes a pool operation to the entity routes."""


_POOL_SELECT = (
    select(
        pools,
        repositories.c.owner.label("repo_owner"),
        repositories.c.name.label("repo_name"),
        organizations.c.name.label("org_name"),
        enterprises.c.name.label("enterprise_name"),
    )
    .select_from(
        pools.outerjoin(repositories, pools.c.repo_id == repositories.c.id)
        .outerjoin(organizations, pools.c.org_id == organizations.c.id)
        .outerjoin(enterprises, pools.c.enterprise_id == enterprises.c.id)
    )
    .order_by(pools.c.created_at, pools.c.id)
)
"""Built once: constructing this join per read cost more than running it (profiled)."""

_TAGS_SELECT = (
    select(pool_tags.c.pool_id, tags.c.id, tags.c.name)
    .select_from(pool_tags.join(tags, pool_tags.c.tag_id == tags.c.id))
    .order_by(pool_tags.c.pool_id, pool_tags.c.position)
)


_SINGLE_POOL_SELECT = _POOL_SELECT.add_columns(
    exists().where(instances.c.pool_id == pools.c.id).label("has_instances")
)
"""A single pool, and whether it has instances at all (most have none: then one query fewer)."""
_BY_ID = pools.c.id == bindparam("pool_id")


def _by_entity(kind: EntityKind) -> ColumnElement[bool]:
    return KINDS[kind].pool_column == bindparam("entity_id")


_READ_POOL = Prepared(_SINGLE_POOL_SELECT.where(_BY_ID))
_READ_ENTITY_POOL = {kind: Prepared(_SINGLE_POOL_SELECT.where(_BY_ID, _by_entity(kind))) for kind in KINDS}
_POOL_TAGS = Prepared(_TAGS_SELECT.where(pool_tags.c.pool_id == bindparam("pool_id")))
_LIMITS_COLUMNS = (pools.c.id, pools.c.max_runners, pools.c.min_idle_runners)
_LIMITS = Prepared(select(*_LIMITS_COLUMNS).where(_BY_ID))
_ENTITY_LIMITS = {kind: Prepared(select(*_LIMITS_COLUMNS).where(_BY_ID, _by_entity(kind))) for kind in KINDS}
_TAG_BY_NAME = Prepared(select(tags.c.id).where(func.lower(tags.c.name) == bindparam("name_key")))
_INSERT_TAG = Prepared(insert(tags).values(id=bindparam("tag_id"), name=bindparam("name")))
_UNLINK_TAGS = Prepared(delete(pool_tags).where(pool_tags.c.pool_id == bindparam("pool_id")))
_LINK_TAG = Prepared(
    insert(pool_tags).values(
        pool_id=bindparam("pool_id"), tag_id=bindparam("tag_id"), position=bindparam("position")
    )
)
_UPDATES: dict[tuple[str, ...], Prepared] = {}
"""``UPDATE pools`` per set of changed columns (a handful in practice), compiled once each."""


def _update_statement(columns: tuple[str, ...]) -> Prepared:
    statement = _UPDATES.get(columns)
    if statement is None:
        values: dict[str, Any] = {name: bindparam(f"new_{name}") for name in columns}
        statement = _UPDATES[columns] = Prepared(update(pools).where(_BY_ID).values(values))
    return statement


def _pool_query(*where: ColumnElement[bool]) -> Any:
    return _POOL_SELECT.where(*where)


def _tags_by_pool(conn: Connection, pool_ids: list[str]) -> dict[str, list[Tag]]:
    result: dict[str, list[Tag]] = {pool_id: [] for pool_id in pool_ids}
    if not pool_ids:
        return result
    if len(pool_ids) == 1:  # the common single-pool read: no IN list to expand
        query = _TAGS_SELECT.where(pool_tags.c.pool_id == pool_ids[0])
    else:
        query = _TAGS_SELECT.where(pool_tags.c.pool_id.in_(pool_ids))
    for row in conn.execute(query):
        result[row.pool_id].append(Tag(id=row.id, name=row.name))
    return result


def _row_to_pool(
    row: Row[Any], pool_tag_list: list[Tag], pool_instances: list[Instance], detailed: bool
) -> Pool:
    return Pool(
        runner_prefix=row.runner_prefix,
        id=row.id,
        provider_name=row.provider_name,
        max_runners=row.max_runners,
        min_idle_runners=row.min_idle_runners,
        image=row.image,
        flavor=row.flavor,
        os_type=row.os_type,
        os_arch=row.os_arch,
        tags=pool_tag_list,
        enabled=row.enabled,
        instances=pool_instances,
        repo_id=row.repo_id or "",
        repo_name=f"{row.repo_owner}/{row.repo_name}" if row.repo_id and row.repo_owner is not None else "",
        org_id=row.org_id or "",
        org_name=row.org_name or "",
        enterprise_id=row.enterprise_id or "",
        enterprise_name=row.enterprise_name or "",
        runner_bootstrap_timeout=row.runner_bootstrap_timeout,
        extra_specs=orjson.loads(row.extra_specs) if detailed and row.extra_specs else None,
        github_runner_group=row.github_runner_group,
        priority=row.priority,
    )


def read_pools(conn: Connection, *where: ColumnElement[bool], detailed: bool = False) -> list[Pool]:
    """Pools matching ``where``; ``detailed`` adds instances and ``extra_specs`` (single-pool reads)."""
    rows = list(conn.execute(_pool_query(*where)))
    ids = [row.id for row in rows]
    pool_tag_lists = _tags_by_pool(conn, ids)
    by_pool: dict[str, list[Instance]] = {pool_id: [] for pool_id in ids}
    if detailed and ids:
        in_pools = instances.c.pool_id == ids[0] if len(ids) == 1 else instances.c.pool_id.in_(ids)
        for instance in read_instances(conn, in_pools):
            by_pool[instance.pool_id].append(instance)
    return [_row_to_pool(row, pool_tag_lists[row.id], by_pool[row.id], detailed) for row in rows]


def _pool_filter(pool_id: str, entity: EntityRef | None) -> list[ColumnElement[bool]]:
    where = [pools.c.id == parse_id(pool_id)]
    if entity is not None:
        kind, entity_id = entity
        where.append(KINDS[kind].pool_column == parse_id(entity_id))
    return where


def _entity_params(pool_id: str, entity: EntityRef | None) -> tuple[EntityKind | None, dict[str, str]]:
    params = {"pool_id": parse_id(pool_id)}
    if entity is None:
        return None, params
    kind, entity_id = entity
    params["entity_id"] = parse_id(entity_id)
    return kind, params


def find_pool(conn: Connection, pool_id: str, entity: EntityRef | None = None) -> Pool | None:
    """One pool in the single-pool rendering (``read_pools(..., detailed=True)``) or None."""
    return _find_pool(conn, *_entity_params(pool_id, entity))


def _find_pool(conn: Connection, kind: EntityKind | None, params: dict[str, str]) -> Pool | None:
    """With canonical IDs and prepared statements: the pool, its tags, and its instances only when it
    has any."""
    row = (_READ_POOL if kind is None else _READ_ENTITY_POOL[kind]).first(conn, params)
    if row is None:
        return None
    pool_tag_list = [Tag(id=tag.id, name=tag.name) for tag in _POOL_TAGS.all(conn, {"pool_id": row.id})]
    nested = pool_instances(conn, row.id) if row.has_instances else []
    return _row_to_pool(row, pool_tag_list, nested, True)


def read_pool(conn: Connection, pool_id: str, entity: EntityRef | None = None) -> Pool:
    found = find_pool(conn, pool_id, entity)
    if found is None:
        raise NotFoundError()
    return found


def _tag_ids(conn: Connection, names: Sequence[str]) -> list[str]:
    """GARM's ``getOrCreateTag``: names match case-insensitively, the first spelling stored wins.
    A name given twice (in any case) is linked once."""
    ids: list[str] = []
    for name in names:
        tag_id = _TAG_BY_NAME.scalar(conn, {"name_key": name.lower()})
        if tag_id is None:
            tag_id = new_id()
            _INSERT_TAG.run(conn, {"tag_id": tag_id, "name": name})
        if tag_id not in ids:
            ids.append(tag_id)
    return ids


def _link_tags(conn: Connection, pool_id: str, names: Sequence[str]) -> None:
    _UNLINK_TAGS.run(conn, {"pool_id": pool_id})
    for n, tag_id in enumerate(_tag_ids(conn, names)):
        _LINK_TAG.run(conn, {"pool_id": pool_id, "tag_id": tag_id, "position": n})


def _extra_specs_text(value: Any) -> str:
    return orjson.dumps(value).decode()


class PoolStore(StoreBase):
    async def create_pool(self, kind: EntityKind, entity_id: str, params: CreatePoolParams) -> Pool:
        """Create a pool under an entity and emit ``pool/create``.

        ``params`` must already be validated and carry the effective bootstrap timeout (the runner
        layer applies the default); an empty ``runner_prefix`` becomes ``garm``. 404 for an unknown
        entity.
        """
        column = KINDS[kind].pool_column.name

        def apply(tx: WriteTx) -> Pool:
            owner_id = require_entity(tx.conn, kind, entity_id)
            pool_id = new_id()
            tx.conn.execute(
                insert(pools).values(
                    id=pool_id,
                    provider_name=params.provider_name,
                    runner_prefix=params.runner_prefix or DEFAULT_RUNNER_PREFIX,
                    max_runners=params.max_runners,
                    min_idle_runners=params.min_idle_runners,
                    runner_bootstrap_timeout=params.runner_bootstrap_timeout,
                    image=params.image,
                    flavor=params.flavor,
                    os_type=params.os_type,
                    os_arch=params.os_arch,
                    enabled=params.enabled,
                    extra_specs=None if params.extra_specs is None else _extra_specs_text(params.extra_specs),
                    github_runner_group=params.github_runner_group,
                    priority=params.priority,
                    created_at=tx.now,
                    updated_at=tx.now,
                    **{column: owner_id},
                )
            )
            _link_tags(tx.conn, pool_id, params.tags or [])
            pool = read_pool(tx.conn, pool_id)
            tx.emit(EntityType.POOL, Operation.CREATE, pool)
            return pool

        return await self.db.write(apply)

    async def get_pool(self, pool_id: str, entity: EntityRef | None = None) -> Pool:
        """One pool (detailed); scoped to ``entity`` for the entity routes. 404 when not found."""
        return await self.db.read(lambda conn: read_pool(conn, pool_id, entity))

    async def list_all_pools(self) -> list[Pool]:
        return await self.db.read(read_pools)

    async def list_entity_pools(self, kind: EntityKind, entity_id: str) -> list[Pool]:
        """An entity's pools (list rendering); 404 for an unknown entity."""

        def query(conn: Connection) -> list[Pool]:
            owner_id = require_entity(conn, kind, entity_id)
            return read_pools(conn, KINDS[kind].pool_column == owner_id)

        return await self.db.read(query)

    async def update_pool(
        self, pool_id: str, params: UpdatePoolParams, entity: EntityRef | None = None
    ) -> Pool:
        """GARM's ``updatePool`` (``garm@v0.1.5 database/sql/util.go:351-420``) and emit ``pool/update``.

        The ``min_idle_runners <= max_runners`` rule is checked here, against the row inside the write
        transaction, so concurrent updates cannot together break it. A ``runner_bootstrap_timeout`` of 0
        is ignored, as in GARM (the ``/pools/{id}`` route rejects it earlier).
        """

        def apply(tx: WriteTx) -> Pool:
            kind, where = _entity_params(pool_id, entity)
            current = (_LIMITS if kind is None else _ENTITY_LIMITS[kind]).first(tx.conn, where)
            if current is None:
                raise NotFoundError()
            max_runners = params.max_runners if params.max_runners is not None else current.max_runners
            min_idle = (
                params.min_idle_runners if params.min_idle_runners is not None else current.min_idle_runners
            )
            if min_idle > max_runners:
                raise BadRequestError("min_idle_runners cannot be larger than max_runners")
            values: dict[str, object] = {
                "updated_at": tx.now,
                "max_runners": max_runners,
                "min_idle_runners": min_idle,
            }
            for key in ("image", "flavor", "os_type", "os_arch", "runner_prefix"):
                if getattr(params, key):
                    values[key] = getattr(params, key)
            for key in ("enabled", "github_runner_group", "priority"):
                if params.is_set(key):
                    values[key] = getattr(params, key)
            if params.is_set("extra_specs"):
                values["extra_specs"] = _extra_specs_text(params.extra_specs)
            if params.runner_bootstrap_timeout:
                values["runner_bootstrap_timeout"] = params.runner_bootstrap_timeout
            statement = _update_statement(tuple(values))
            statement.run(tx.conn, {"pool_id": current.id, **{f"new_{k}": v for k, v in values.items()}})
            if params.tags:
                _link_tags(tx.conn, current.id, params.tags)
            pool = _find_pool(tx.conn, None, {"pool_id": current.id})
            assert pool is not None  # updated just now, in this transaction
            tx.emit(EntityType.POOL, Operation.UPDATE, pool)
            return pool

        return await self.db.write(apply)

    async def delete_pool(self, pool_id: str, entity: EntityRef | None = None) -> Pool | None:
        """Delete a pool without instances and emit ``pool/delete`` with its last state.

        ``/pools/{id}`` (``entity=None``): an unknown pool is ``None`` with no event (GARM answers 200);
        a pool with instances is 400 ``pool has runners``. Entity routes: an unknown pool is 404 (GARM:
        500) and the 400 lists the runners' IDs: ``pool has runners: <id>, …``.
        """

        def apply(tx: WriteTx) -> Pool | None:
            found = read_pools(tx.conn, *_pool_filter(pool_id, entity), detailed=True)
            if not found:
                if entity is None:
                    return None
                raise NotFoundError()
            pool = found[0]
            if pool.instances:
                if entity is None:
                    raise BadRequestError("pool has runners")
                raise BadRequestError("pool has runners: " + ", ".join(i.id for i in pool.instances))
            tx.conn.execute(delete(pool_tags).where(pool_tags.c.pool_id == pool.id))
            tx.conn.execute(delete(pools).where(pools.c.id == pool.id))
            tx.emit(EntityType.POOL, Operation.DELETE, pool)
            return pool

        return await self.db.write(apply)

    async def find_pools_matching_all_tags(
        self, kind: EntityKind, entity_id: str, labels: Sequence[str]
    ) -> list[Pool]:
        """Enabled pools of an entity whose tags include every label, highest ``priority`` first
        (GARM's ``FindPoolsMatchingAllTags``, docs/garm-protocol.md#job-queue). Labels match tags
        case-insensitively and a label repeated in the job counts once (GARM: exact SQL match, and a repeated
        label matches nothing). No labels → no pools."""
        wanted = {label.lower() for label in labels}

        def query(conn: Connection) -> list[Pool]:
            if not wanted:
                return []
            owner_id = require_entity(conn, kind, entity_id)
            candidates = read_pools(conn, KINDS[kind].pool_column == owner_id, pools.c.enabled.is_(True))
            matching = [p for p in candidates if wanted <= {t.name.lower() for t in p.tags or []}]
            return sorted(matching, key=lambda p: p.priority, reverse=True)

        return await self.db.read(query)
