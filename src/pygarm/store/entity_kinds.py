"""The one entity abstraction: repository, organization and enterprise as a *kind*
(docs/design.md#one-code-path-for-three-entity-kinds).

GARM repeats the same code three times in ``runner/``, ``database/sql/`` and ``apiserver/controllers/``.
pygarm keeps everything that differs between the kinds in one :class:`KindSpec` record (table, pool
column, wire model, event type, the words used in messages) so that every store, runner and API function
is written once and parameterised by :class:`EntityKind`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Column, Connection, Table, select

from pygarm.errors import BadRequestError, NotFoundError
from pygarm.events.change import EntityType
from pygarm.params.models import Enterprise, Organization, Repository
from pygarm.store.tables import enterprises, organizations, pools, repositories

Entity = Repository | Organization | Enterprise
"""The wire model of any entity kind."""


class EntityKind(StrEnum):
    """GARM's ``GithubEntityType`` (docs/garm-protocol.md#enums)."""

    REPOSITORY = "repository"
    ORGANIZATION = "organization"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True, slots=True)
class KindSpec:
    """Everything that differs between the entity kinds."""

    kind: EntityKind
    table: Table
    model: type[Entity]
    event_type: EntityType
    pool_column: Column[str]
    """The ``pools`` (and ``workflow_jobs``) column that points at an entity of this kind."""
    pool_name_field: str
    """Which ``Pool`` field carries the entity's display name (``repo_name``/``org_name``/…)."""
    short_name: str
    """The word GARM uses in ``<short> has pools defined (…)``."""
    api_collection: str
    """The REST collection (``repositories``/``organizations``/``enterprises``)."""

    @property
    def has_owner(self) -> bool:
        return self.kind is EntityKind.REPOSITORY

    def display_name(self, owner: str, name: str) -> str:
        """``owner/name`` for repositories, the name otherwise (GARM's ``GithubEntity.String()``)."""
        return f"{owner}/{name}" if self.has_owner else name


KINDS: dict[EntityKind, KindSpec] = {
    EntityKind.REPOSITORY: KindSpec(
        kind=EntityKind.REPOSITORY,
        table=repositories,
        model=Repository,
        event_type=EntityType.REPOSITORY,
        pool_column=pools.c.repo_id,
        pool_name_field="repo_name",
        short_name="repo",
        api_collection="repositories",
    ),
    EntityKind.ORGANIZATION: KindSpec(
        kind=EntityKind.ORGANIZATION,
        table=organizations,
        model=Organization,
        event_type=EntityType.ORGANIZATION,
        pool_column=pools.c.org_id,
        pool_name_field="org_name",
        short_name="org",
        api_collection="organizations",
    ),
    EntityKind.ENTERPRISE: KindSpec(
        kind=EntityKind.ENTERPRISE,
        table=enterprises,
        model=Enterprise,
        event_type=EntityType.ENTERPRISE,
        pool_column=pools.c.enterprise_id,
        pool_name_field="enterprise_name",
        short_name="enterprise",
        api_collection="enterprises",
    ),
}


def parse_id(value: str) -> str:
    """Normalize an ID from a path or a request the way GARM's ``uuid.Parse`` reads it.

    Go accepts the canonical form, 32 hex digits, ``{…}`` and ``urn:uuid:…`` (any case); anything else
    is GARM's ``400 invalid request``. The canonical lower-case string is what the database holds.
    """
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError) as exc:
        raise BadRequestError("invalid request") from exc


def require_entity(conn: Connection, kind: EntityKind, entity_id: str) -> str:
    """The canonical ID of an existing entity; 400 for a malformed ID, 404 for an unknown one."""
    spec = KINDS[kind]
    canonical = parse_id(entity_id)
    if conn.execute(select(spec.table.c.id).where(spec.table.c.id == canonical)).first() is None:
        raise NotFoundError()
    return canonical
