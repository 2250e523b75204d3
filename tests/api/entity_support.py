"""Shared helpers for the entity, pool, instance and job tests: fixtures' building blocks, the spec's key
orders (docs/garm-protocol.md#entity-shapes) and a reader of the change log for the "one event per mutation,
payload == REST GET" checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from pygarm.events.change import Change
from pygarm.params.models import PoolManagerStatus
from pygarm.store.entity_kinds import EntityKind
from pygarm.store.store import Store

PROVIDERS = [
    {"name": "lxd_local", "provider_type": "external", "description": "local"},
    {"name": "fake", "provider_type": "external"},
]
"""``[[provider]]`` entries for the tests' settings: pools may only use these names."""

REPOSITORY_KEYS = [
    "id", "owner", "name", "credentials_name", "credentials_id", "credentials",
    "pool_manager_status", "pool_balancing_type", "endpoint",
]  # fmt: skip
"""docs/garm-protocol.md#repository with ``pool`` omitted (no pools)."""
ORGANIZATION_KEYS = [
    "id", "name", "credentials_name", "credentials", "credentials_id",
    "pool_manager_status", "pool_balancing_type", "endpoint",
]  # fmt: skip
"""docs/garm-protocol.md#organization-and-enterprise: note ``credentials`` before ``credentials_id``."""
POOL_KEYS = [
    "runner_prefix", "id", "provider_name", "max_runners", "min_idle_runners", "image", "flavor",
    "os_type", "os_arch", "tags", "enabled", "instances", "<entity>_id", "<entity>_name",
    "runner_bootstrap_timeout", "extra_specs", "github-runner-group", "priority",
]  # fmt: skip
"""docs/garm-protocol.md#pool for a single pool with ``extra_specs`` set; ``<entity>`` is
``repo``/``org``/``enterprise``."""
INSTANCE_FULL_KEYS = [
    "id", "provider_id", "agent_id", "name", "os_type", "os_name", "os_version", "os_arch", "addresses",
    "status", "runner_status", "pool_id", "provider_fault", "status_messages", "updated_at",
    "github-runner-group", "job",
]  # fmt: skip
"""docs/garm-protocol.md#instance with every optional field present."""
JOB_KEYS = [
    "id", "run_id", "action", "conclusion", "status", "name", "StartedAt", "CompletedAt", "runner_id",
    "runner_name", "runner_group_id", "runner_group_name", "RepositoryName", "RepositoryOwner", "Labels",
    "repo_id", "LockedBy", "created_at", "updated_at",
]  # fmt: skip
"""docs/garm-protocol.md#job for a repository job (``org_id``/``enterprise_id`` omitted)."""


@dataclass(frozen=True)
class Kind:
    """One entity kind as the REST API sees it."""

    collection: str
    entity_type: str
    pool_prefix: str
    short: str
    body: dict[str, str]
    keys: list[str]

    @property
    def enum(self) -> EntityKind:
        return EntityKind(self.entity_type)

    def create_body(self, credentials: str, **extra: str) -> dict[str, str]:
        return {**self.body, "credentials_name": credentials, "webhook_secret": "hook-secret-1", **extra}


REPO = Kind(
    "repositories",
    "repository",
    "repo",
    "repo",
    {"owner": "octo-org", "name": "hello-world"},
    REPOSITORY_KEYS,
)
ORG = Kind("organizations", "organization", "org", "org", {"name": "octo-org"}, ORGANIZATION_KEYS)
ENTERPRISE = Kind(
    "enterprises", "enterprise", "enterprise", "enterprise", {"name": "octo-ent"}, ORGANIZATION_KEYS
)
ALL_KINDS = [REPO, ORG, ENTERPRISE]
KIND_IDS = [kind.collection for kind in ALL_KINDS]

POOL_BODY: dict[str, Any] = {
    "provider_name": "lxd_local",
    "max_runners": 5,
    "min_idle_runners": 1,
    "image": "ubuntu:22.04",
    "flavor": "default",
    "os_type": "linux",
    "os_arch": "amd64",
    "tags": ["self-hosted", "linux", "x64"],
    "enabled": True,
}


async def create_credentials(
    http: httpx.AsyncClient, name: str = "gh-pat", endpoint: str = "github.com"
) -> str:
    response = await http.post(
        "/api/v1/github/credentials",
        json={
            "name": name,
            "description": "test credentials",
            "endpoint": endpoint,
            "auth_type": "pat",
            "pat": {"oauth2_token": "ghp_not-a-real-token"},
        },
    )
    assert response.status_code == 200, response.text
    return name


async def create_endpoint(http: httpx.AsyncClient, name: str) -> str:
    response = await http.post(
        "/api/v1/github/endpoints",
        json={
            "name": name,
            "description": "a GHES",
            "api_base_url": f"https://{name}/api/v3/",
            "upload_base_url": f"https://{name}/uploads/",
            "base_url": f"https://{name}",
        },
    )
    assert response.status_code == 200, response.text
    return name


async def create_entity(
    http: httpx.AsyncClient, kind: Kind, credentials: str, **extra: str
) -> dict[str, Any]:
    response = await http.post(f"/api/v1/{kind.collection}", json=kind.create_body(credentials, **extra))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_pool(http: httpx.AsyncClient, kind: Kind, entity_id: str, **changes: Any) -> dict[str, Any]:
    response = await http.post(f"/api/v1/{kind.collection}/{entity_id}/pools", json={**POOL_BODY, **changes})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def store_of(app: FastAPI) -> Store:
    store: Store = app.state.ctx.store
    return store


class ChangeLog:
    """Reads what the store appended to the change log since :meth:`mark` (or construction)."""

    def __init__(self, app: FastAPI) -> None:
        self.db = store_of(app).db
        self.seq = 0

    async def mark(self) -> None:
        self.seq = await self.db.last_seq()

    async def new(self) -> list[Change]:
        changes = await self.db.read_changes_after(self.seq, 10_000)
        if changes:
            self.seq = changes[-1].seq
        return changes

    async def single(self, entity_type: str, operation: str) -> Change:
        """The one change since the mark; fails unless there is exactly one, of this type."""
        changes = await self.new()
        assert [(c.entity_type.value, c.operation.value) for c in changes] == [(entity_type, operation)]
        return changes[0]


async def assert_event_is_get(
    log: ChangeLog, http: httpx.AsyncClient, entity_type: str, operation: str, path: str
) -> bytes:
    """Exactly one change since the mark, and its payload is byte for byte ``GET path`` minus ``\\n``."""
    change = await log.single(entity_type, operation)
    response = await http.get(path)
    assert response.status_code == 200, response.text
    assert response.content.endswith(b"\n")
    assert change.payload == response.content[:-1]
    return change.payload


class FakePoolManagers:
    """Stands in for the pool-manager registry (``AppContext.services["pool_managers"]``)."""

    def __init__(self, statuses: dict[str, PoolManagerStatus]) -> None:
        self.statuses = statuses
        self.deleted: list[tuple[str, bool, bool]] = []

    def status(self, kind: EntityKind, entity_id: str) -> PoolManagerStatus | None:
        return self.statuses.get(entity_id)

    async def delete_runner(self, instance_name: str, *, force: bool, bypass_gh_unauthorized: bool) -> None:
        self.deleted.append((instance_name, force, bypass_gh_unauthorized))


def install_pool_managers(app: FastAPI, statuses: dict[str, PoolManagerStatus]) -> FakePoolManagers:
    managers = FakePoolManagers(statuses)
    app.state.ctx.services["pool_managers"] = managers
    return managers
