"""GitHub endpoint and credentials rows → wire models, and readers usable inside any transaction.

Other store parts import these (the entity store looks credentials up by name and nests them), so they
take a plain ``Connection`` and run inside the caller's transaction. ``store/github.py`` re-exports them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, Table, func, select

from pygarm.errors import NotFoundError
from pygarm.params.models import Enterprise, GithubCredentials, GithubEndpoint, Organization, Repository
from pygarm.store.tables import enterprises, github_credentials, github_endpoints, organizations, repositories

AnyRow = Row[tuple[object, ...]]

DEFAULT_POOL_BALANCER = "roundrobin"
"""An empty balancer type in the database reads as ``roundrobin`` (docs/garm-protocol.md#repository)."""
_MAX_DB_ID = 2**31 - 1
"""The ``id`` column is an ``INTEGER`` (int4 on PostgreSQL): no row has a larger id, and comparing the
column with one fails on PostgreSQL (``integer out of range``, a 500) instead of finding nothing."""


# Converters: rows in, wire models out.


def _bytes_or_none(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def row_to_endpoint(row: AnyRow) -> GithubEndpoint:
    return GithubEndpoint(
        name=row.name,
        description=row.description,
        api_base_url=row.api_base_url,
        upload_base_url=row.upload_base_url,
        base_url=row.base_url,
        ca_cert_bundle=_bytes_or_none(row.ca_cert_bundle),
    )


def row_to_credentials(row: AnyRow, endpoint: GithubEndpoint) -> GithubCredentials:
    """``sqlToCommonGithubCredentials`` without the nested entities: URLs and CA bundle come from the
    endpoint, never from the credentials row."""
    return GithubCredentials(
        id=row.id,
        name=row.name,
        description=row.description,
        api_base_url=endpoint.api_base_url,
        upload_base_url=endpoint.upload_base_url,
        base_url=endpoint.base_url,
        ca_bundle=endpoint.ca_cert_bundle,
        auth_type=row.auth_type,
        endpoint=endpoint,
    )


def _nested_repository(row: AnyRow) -> Repository:
    """A repository as GARM nests it in the detailed credentials view
    (docs/garm-protocol.md#github-credentials): built without its associations, so ``credentials`` and
    ``endpoint`` are zero-valued and ``credentials_name`` (read from the unloaded association) is empty, hence
    omitted."""
    return Repository(
        id=row.id,
        owner=row.owner,
        name=row.name,
        credentials_id=row.credentials_id or 0,
        pool_balancing_type=row.pool_balancer_type or DEFAULT_POOL_BALANCER,
    )


def _nested_organization(row: AnyRow) -> Organization:
    return Organization(
        id=row.id,
        name=row.name,
        credentials_id=row.credentials_id or 0,
        pool_balancing_type=row.pool_balancer_type or DEFAULT_POOL_BALANCER,
    )


def _nested_enterprise(row: AnyRow) -> Enterprise:
    return Enterprise(
        id=row.id,
        name=row.name,
        credentials_id=row.credentials_id or 0,
        pool_balancing_type=row.pool_balancer_type or DEFAULT_POOL_BALANCER,
    )


# Readers usable inside any transaction.


def find_endpoint_row(conn: Connection, name: str) -> AnyRow | None:
    """Endpoint names are case-insensitive, as GARM's ``COLLATE NOCASE`` primary key."""
    return conn.execute(select(github_endpoints).where(github_endpoints.c.name_key == name.lower())).first()


def read_endpoint(conn: Connection, name: str) -> GithubEndpoint:
    row = find_endpoint_row(conn, name)
    if row is None:
        raise NotFoundError("not found")
    return row_to_endpoint(row)


def find_credentials_row(conn: Connection, name: str) -> AnyRow | None:
    """Credentials by case-insensitive name, as an admin sees them (all users'); the oldest wins if two
    users chose the same name."""
    return conn.execute(
        select(github_credentials)
        .where(github_credentials.c.name_key == name.lower())
        .order_by(github_credentials.c.id)
        .limit(1)
    ).first()


def credentials_row(conn: Connection, credentials_id: int) -> AnyRow:
    row = None
    if 0 <= credentials_id <= _MAX_DB_ID:
        row = conn.execute(
            select(github_credentials).where(github_credentials.c.id == credentials_id)
        ).first()
    if row is None:
        raise NotFoundError("not found")
    return row


def read_credentials(conn: Connection, credentials_id: int) -> GithubCredentials:
    """Non-detailed credentials with their endpoint (what create/update/list and events carry)."""
    row = credentials_row(conn, credentials_id)
    return row_to_credentials(row, read_endpoint(conn, row.endpoint_name))


def read_credentials_detailed(conn: Connection, credentials_id: int) -> GithubCredentials:
    """``GET /github/credentials/{id}``: also the repositories, organizations and enterprises using it."""
    creds = read_credentials(conn, credentials_id)

    def users_of(table: Table) -> list[AnyRow]:
        query = select(table).where(table.c.credentials_id == credentials_id)
        return list(conn.execute(query.order_by(table.c.created_at, table.c.id)))

    return creds.model_copy(
        update={
            "repositories": [_nested_repository(r) for r in users_of(repositories)] or None,
            "organizations": [_nested_organization(r) for r in users_of(organizations)] or None,
            "enterprises": [_nested_enterprise(r) for r in users_of(enterprises)] or None,
        }
    )


def list_credentials(conn: Connection) -> list[GithubCredentials]:
    endpoints = {row.name: row_to_endpoint(row) for row in conn.execute(select(github_endpoints))}
    rows = conn.execute(select(github_credentials).order_by(github_credentials.c.id))
    return [row_to_credentials(row, endpoints[row.endpoint_name]) for row in rows]


def count_rows(conn: Connection, table: Table, column: str, value: object) -> int:
    return int(
        conn.execute(select(func.count()).select_from(table).where(table.c[column] == value)).scalar_one()
    )
