"""A GitHub client for a stored entity: its endpoint, its credentials, its owner/name
(docs/garm-protocol.md#github-client).

GARM keeps one GitHub client inside each pool manager. The instance-facing registration-token endpoint and
the webhook-management routes need one too, whether or not a pool manager is running, so this builds a
short-lived client from what the store holds. The credentials' secret is opened here and goes straight
into the client; it is never logged or returned.
"""

from __future__ import annotations

from typing import Any

from pygarm.errors import BadRequestError
from pygarm.params.github_requests import AUTH_TYPE_APP
from pygarm.params.models import Pool
from pygarm.runner.github import (
    AppCredentials,
    GithubAuth,
    GithubClient,
    GithubEndpointConfig,
    GithubEntity,
    PATCredentials,
)
from pygarm.runner.github.entity import EntityKind as GithubEntityKind
from pygarm.store.entity_kinds import Entity, EntityKind
from pygarm.store.store import Store


def github_entity(kind: EntityKind, entity: Entity) -> GithubEntity:
    """The GitHub account of an entity: ``owner/name`` for a repository, the name otherwise."""
    owner = getattr(entity, "owner", "") if kind is EntityKind.REPOSITORY else ""
    return GithubEntity(GithubEntityKind(kind.value), owner, entity.name)


def entity_of_pool(pool: Pool) -> tuple[EntityKind, str]:
    """Which entity owns a pool (exactly one of the three IDs is set)."""
    if pool.repo_id:
        return EntityKind.REPOSITORY, pool.repo_id
    if pool.org_id:
        return EntityKind.ORGANIZATION, pool.org_id
    return EntityKind.ENTERPRISE, pool.enterprise_id


def _credentials(auth_type: str, secret: dict[str, Any]) -> GithubAuth:
    if auth_type == AUTH_TYPE_APP:
        return AppCredentials(
            app_id=int(secret["app_id"]),
            installation_id=int(secret["installation_id"]),
            private_key=bytes(secret["private_key_bytes"]),
        )
    return PATCredentials(str(secret.get("oauth2_token", "")))


async def github_client_for_entity(
    store: Store, kind: EntityKind, entity: Entity, **client_options: Any
) -> GithubClient:
    """A client acting on ``entity`` with its credentials; the caller closes it (``async with``).

    An entity whose credentials were deleted has none (``credentials_id`` 0): that is 400 ``invalid
    request`` rather than a call GitHub would answer with 401.
    """
    if not entity.credentials_id:
        raise BadRequestError("invalid request")
    auth_type, secret = await store.get_credentials_secret(entity.credentials_id)
    endpoint = entity.endpoint
    config = GithubEndpointConfig(
        api_base_url=endpoint.api_base_url,
        base_url=endpoint.base_url,
        upload_base_url=endpoint.upload_base_url,
        ca_cert_bundle=endpoint.ca_cert_bundle or None,
    )
    return GithubClient(
        config, _credentials(auth_type, secret), github_entity(kind, entity), **client_options
    )
