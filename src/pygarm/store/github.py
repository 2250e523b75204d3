"""GitHub endpoints and credentials: the store part that writes them
(docs/garm-protocol.md#which-operations-emit-events, docs/garm-protocol.md#entity-shapes).

The converters and readers live in ``store/github_rows.py`` and are re-exported here
(:func:`row_to_endpoint`, :func:`read_endpoint`, :func:`read_credentials`, :func:`find_credentials_row`…):
they take a plain connection so that other store parts can call them inside their own transaction.

Secrets: a credential's PAT or App key is sealed (``store/crypto.py``) before it reaches the ``payload``
column and is never part of a wire model; only :meth:`GithubStore.get_credentials_secret` opens it.

Delete events differ from GARM on purpose: GARM sends a partial payload (endpoint: name only; credentials:
id and name) and sends it even when nothing was deleted. pygarm sends the full last state of what was
deleted (a superset of GARM's payload, so GARM consumers still find the keys they read) and sends nothing
when there was nothing to delete; the REST answer is 204 in both cases, as in GARM.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from pygarm.errors import BadRequestError, ConflictError, NotFoundError
from pygarm.events.change import EntityType, Operation
from pygarm.params.github_requests import AUTH_TYPE_APP
from pygarm.params.gojson import dumps
from pygarm.params.models import GithubCredentials, GithubEndpoint
from pygarm.store.base import StoreBase
from pygarm.store.db import WriteTx
from pygarm.store.github_rows import (
    AnyRow,
    count_rows,
    credentials_row,
    find_credentials_row,
    find_endpoint_row,
    list_credentials,
    read_credentials,
    read_credentials_detailed,
    read_endpoint,
    row_to_credentials,
    row_to_endpoint,
)
from pygarm.store.tables import enterprises, github_credentials, github_endpoints, organizations, repositories

T = TypeVar("T")

DEFAULT_ENDPOINT = GithubEndpoint(
    name="github.com",
    description="The github.com endpoint",
    api_base_url="https://api.github.com/",
    upload_base_url="https://uploads.github.com/",
    base_url="https://github.com",
)
"""The built-in endpoint GARM creates at first start (``util/appdefaults``)."""

__all__ = [
    "DEFAULT_ENDPOINT",
    "AnyRow",
    "GithubStore",
    "find_credentials_row",
    "find_endpoint_row",
    "read_credentials",
    "read_credentials_detailed",
    "read_endpoint",
    "row_to_credentials",
    "row_to_endpoint",
]


class GithubStore(StoreBase):
    def _seal_secret(self, secret: Mapping[str, Any]) -> bytes:
        """Seal GARM's credentials JSON (``{"oauth2_token"}`` or ``{"app_id","installation_id",
        "private_key_bytes"}``, bytes as base64, as Go marshals them)."""
        return self.sealer.seal(dumps(dict(secret)))

    async def _write(self, fn: Callable[[WriteTx], T]) -> T:
        """A write whose unique-constraint failure (a concurrent writer in another process) is GARM's 409."""
        try:
            return await self.db.write(fn)
        except IntegrityError as exc:
            raise ConflictError("duplicate") from exc

    # Endpoints.

    async def ensure_default_endpoint(self) -> None:
        """Create ``github.com`` at first start, with its ``github_endpoint/create`` event."""

        def ensure(tx: WriteTx) -> None:
            if find_endpoint_row(tx.conn, DEFAULT_ENDPOINT.name) is None:
                _insert_endpoint(tx, DEFAULT_ENDPOINT)

        await self.db.write(ensure)

    async def list_endpoints(self) -> list[GithubEndpoint]:
        def query(conn: Connection) -> list[GithubEndpoint]:
            rows = conn.execute(
                select(github_endpoints).order_by(github_endpoints.c.created_at, github_endpoints.c.name)
            )
            return [row_to_endpoint(row) for row in rows]

        return await self.db.read(query)

    async def get_endpoint(self, name: str) -> GithubEndpoint:
        return await self.db.read(lambda conn: read_endpoint(conn, name))

    async def create_endpoint(self, endpoint: GithubEndpoint) -> GithubEndpoint:
        """Create and emit ``github_endpoint/create``; a name taken in any letter case → 409 ``duplicate``."""

        def create(tx: WriteTx) -> GithubEndpoint:
            if find_endpoint_row(tx.conn, endpoint.name) is not None:
                raise ConflictError("duplicate")
            return _insert_endpoint(tx, endpoint)

        return await self._write(create)

    async def update_endpoint(
        self,
        name: str,
        *,
        description: str | None = None,
        api_base_url: str | None = None,
        upload_base_url: str | None = None,
        base_url: str | None = None,
        ca_cert_bundle: bytes | None = None,
    ) -> GithubEndpoint:
        """Apply the given fields (``None`` = unchanged) and emit ``github_endpoint/update``.

        ``github.com`` is read-only: 400 ``invalid request``, as in GARM.
        """
        given = {
            "description": description,
            "api_base_url": api_base_url,
            "upload_base_url": upload_base_url,
            "base_url": base_url,
            "ca_cert_bundle": ca_cert_bundle,
        }
        changes = {column: value for column, value in given.items() if value is not None}

        def apply(tx: WriteTx) -> GithubEndpoint:
            if name.lower() == DEFAULT_ENDPOINT.name:
                raise BadRequestError("invalid request")
            row = find_endpoint_row(tx.conn, name)
            if row is None:
                raise NotFoundError("not found")
            tx.conn.execute(
                update(github_endpoints)
                .where(github_endpoints.c.name == row.name)
                .values(updated_at=tx.now, **changes)
            )
            result = read_endpoint(tx.conn, row.name)
            tx.emit(EntityType.GITHUB_ENDPOINT, Operation.UPDATE, result)
            return result

        return await self._write(apply)

    async def delete_endpoint(self, name: str) -> None:
        """Delete and emit ``github_endpoint/delete`` with the endpoint's last state; unknown names are a
        silent no-op. ``github.com`` → 400 ``invalid request``; an endpoint still used by credentials or
        entities → 400 (GARM answers 500 there)."""

        def remove(tx: WriteTx) -> None:
            if name.lower() == DEFAULT_ENDPOINT.name:
                raise BadRequestError("invalid request")
            row = find_endpoint_row(tx.conn, name)
            if row is None:
                return
            users = sum(
                count_rows(tx.conn, table, "endpoint_name", row.name)
                for table in (github_credentials, repositories, organizations, enterprises)
            )
            if users:
                raise BadRequestError(
                    f"cannot delete endpoint {row.name}: it is used by credentials, repositories, "
                    "organizations or enterprises"
                )
            last = row_to_endpoint(row)
            tx.conn.execute(delete(github_endpoints).where(github_endpoints.c.name == row.name))
            tx.emit(EntityType.GITHUB_ENDPOINT, Operation.DELETE, last)

        await self.db.write(remove)

    # Credentials.

    async def list_credentials(self) -> list[GithubCredentials]:
        return await self.db.read(list_credentials)

    async def get_credentials(self, credentials_id: int, *, detailed: bool = True) -> GithubCredentials:
        reader = read_credentials_detailed if detailed else read_credentials
        return await self.db.read(lambda conn: reader(conn, credentials_id))

    async def create_credentials(
        self,
        *,
        user_id: str,
        name: str,
        description: str,
        endpoint: str,
        auth_type: str,
        secret: Mapping[str, Any],
    ) -> GithubCredentials:
        """Create credentials owned by ``user_id`` and emit ``github_credentials/create``.

        Unknown endpoint → 404; a name the same user already uses (any letter case) → 409 ``duplicate``.
        """
        sealed = self._seal_secret(secret)

        def create(tx: WriteTx) -> GithubCredentials:
            endpoint_row = find_endpoint_row(tx.conn, endpoint)
            if endpoint_row is None:
                raise NotFoundError("not found")
            if _same_name_exists(tx.conn, name, user_id):
                raise ConflictError("duplicate")
            new_id = tx.conn.execute(
                insert(github_credentials)
                .values(
                    name=name,
                    name_key=name.lower(),
                    user_id=user_id,
                    description=description,
                    auth_type=auth_type,
                    payload=sealed,
                    endpoint_name=endpoint_row.name,
                    created_at=tx.now,
                    updated_at=tx.now,
                )
                .returning(github_credentials.c.id)
            ).scalar_one()
            result = read_credentials(tx.conn, new_id)
            tx.emit(EntityType.GITHUB_CREDENTIALS, Operation.CREATE, result)
            return result

        return await self._write(create)

    async def update_credentials(
        self,
        credentials_id: int,
        *,
        name: str | None = None,
        description: str | None = None,
        auth_type: str | None = None,
        secret: Mapping[str, Any] | None = None,
    ) -> GithubCredentials:
        """Apply the given fields and emit ``github_credentials/update``.

        ``secret`` replaces the sealed payload and must be of the credentials' own ``auth_type`` (a PAT for
        App credentials, or the reverse, is 400 ``invalid request``, as in GARM).
        """
        sealed = None if secret is None else self._seal_secret(secret)

        def apply(tx: WriteTx) -> GithubCredentials:
            row = credentials_row(tx.conn, credentials_id)
            if auth_type is not None and auth_type != row.auth_type:
                raise BadRequestError("invalid request")
            values: dict[str, object] = {"updated_at": tx.now}
            if name is not None:
                if name.lower() != row.name_key and _same_name_exists(tx.conn, name, row.user_id):
                    raise ConflictError("duplicate")
                values.update(name=name, name_key=name.lower())
            if description is not None:
                values["description"] = description
            if sealed is not None:
                values["payload"] = sealed
            tx.conn.execute(
                update(github_credentials).where(github_credentials.c.id == row.id).values(**values)
            )
            result = read_credentials(tx.conn, row.id)
            tx.emit(EntityType.GITHUB_CREDENTIALS, Operation.UPDATE, result)
            return result

        return await self._write(apply)

    async def delete_credentials(self, credentials_id: int) -> None:
        """Delete and emit ``github_credentials/delete`` with the last state; unknown ids are a silent
        no-op. Credentials still used by a repository, organization or enterprise → 400 ``invalid
        request`` (GARM's answer)."""

        def remove(tx: WriteTx) -> None:
            try:
                last = read_credentials(tx.conn, credentials_id)
            except NotFoundError:
                return
            for table in (repositories, organizations, enterprises):
                if count_rows(tx.conn, table, "credentials_id", last.id):
                    raise BadRequestError("invalid request")
            tx.conn.execute(delete(github_credentials).where(github_credentials.c.id == last.id))
            tx.emit(EntityType.GITHUB_CREDENTIALS, Operation.DELETE, last)

        await self.db.write(remove)

    async def get_credentials_secret(self, credentials_id: int) -> tuple[str, dict[str, Any]]:
        """The opened payload, for the GitHub client only: ``("pat", {"oauth2_token": str})`` or
        ``("app", {"app_id": int, "installation_id": int, "private_key_bytes": bytes})`` (the PEM, already
        base64-decoded). Never log the result. NotFoundError for an unknown id."""

        def query(conn: Connection) -> tuple[str, bytes]:
            row = credentials_row(conn, credentials_id)
            return row.auth_type, bytes(row.payload)

        auth_type, sealed = await self.db.read(query)
        secret: dict[str, Any] = orjson.loads(self.sealer.unseal(sealed))
        if auth_type == AUTH_TYPE_APP and isinstance(secret.get("private_key_bytes"), str):
            secret["private_key_bytes"] = base64.b64decode(secret["private_key_bytes"])
        return auth_type, secret


def _insert_endpoint(tx: WriteTx, endpoint: GithubEndpoint) -> GithubEndpoint:
    tx.conn.execute(
        insert(github_endpoints).values(
            name=endpoint.name,
            name_key=endpoint.name.lower(),
            description=endpoint.description,
            api_base_url=endpoint.api_base_url,
            upload_base_url=endpoint.upload_base_url,
            base_url=endpoint.base_url,
            ca_cert_bundle=endpoint.ca_cert_bundle,
            created_at=tx.now,
            updated_at=tx.now,
        )
    )
    result = read_endpoint(tx.conn, endpoint.name)
    tx.emit(EntityType.GITHUB_ENDPOINT, Operation.CREATE, result)
    return result


def _same_name_exists(conn: Connection, name: str, user_id: object) -> bool:
    query = select(github_credentials.c.id).where(github_credentials.c.name_key == name.lower())
    if user_id is None:
        query = query.where(github_credentials.c.user_id.is_(None))
    else:
        query = query.where(github_credentials.c.user_id == user_id)
    return conn.execute(query.limit(1)).first() is not None
