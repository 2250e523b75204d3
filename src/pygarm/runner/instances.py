"""``DELETE /api/v1/instances/{name}``: the checks GARM makes before a runner is deleted
(``garm@v0.1.5 runner/runner.go:829-861``, ``garm@v0.1.5 runner/pool/pool.go:1570-1633``,
docs/garm-protocol.md#deleterunner).

The route checks the instance's status, then hands over to the owning entity's pool manager, which
removes the runner from GitHub when it has an ``agent_id`` (404 ignored, 422 → 400, 401 stops the
manager) and marks the instance ``pending_delete`` (``pending_force_delete`` with ``forceRemove``); its
delete loop does the rest. Without a running pool manager the answer is GARM's 409 ``pool manager is
not running for <entity>``, unless ``bypassGHUnauthorized=true``: then the instance is only marked.
"""

from __future__ import annotations

from pygarm.errors import BadRequestError, ConflictError
from pygarm.params.models import Pool
from pygarm.runner.entities import PoolManagerStatusSource
from pygarm.store.entity_kinds import EntityKind
from pygarm.store.instances import UpdateInstanceParams
from pygarm.store.store import Store

STATUS_RUNNING = "running"
STATUS_ERROR = "error"
STATUS_PENDING_DELETE = "pending_delete"
STATUS_PENDING_FORCE_DELETE = "pending_force_delete"
DELETABLE_STATUSES = (STATUS_RUNNING, STATUS_ERROR, STATUS_PENDING_FORCE_DELETE, STATUS_PENDING_DELETE)
"""The only statuses GARM lets a REST delete start from, in GARM's order (used in the message)."""

_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})


def parse_go_bool(value: str | None) -> bool:
    """``strconv.ParseBool`` as GARM's handler uses it: anything unparsable is ``false``."""
    return value in _GO_TRUE


def pool_owner(pool: Pool) -> tuple[EntityKind, str, str]:
    """The entity owning a pool: kind, ID and display name (``owner/name`` or name)."""
    if pool.repo_id:
        return EntityKind.REPOSITORY, pool.repo_id, pool.repo_name
    if pool.org_id:
        return EntityKind.ORGANIZATION, pool.org_id, pool.org_name
    return EntityKind.ENTERPRISE, pool.enterprise_id, pool.enterprise_name


async def delete_instance(
    store: Store,
    name: str,
    *,
    force_remove: bool,
    bypass_gh_unauthorized: bool,
    managers: PoolManagerStatusSource | None = None,
) -> None:
    """404 unknown instance → 400 wrong status → 409 manager not running (unless bypassed) → mark."""
    instance = await store.get_instance(name)
    if instance.status not in DELETABLE_STATUSES:
        raise BadRequestError(
            f'runner must be in one of the following states: "{", ".join(DELETABLE_STATUSES)}"'
        )
    if managers is not None:
        await managers.delete_runner(name, force=force_remove, bypass_gh_unauthorized=bypass_gh_unauthorized)
        return
    if not bypass_gh_unauthorized:
        _kind, _entity_id, display = pool_owner(await store.get_pool(instance.pool_id))
        raise ConflictError(f"pool manager is not running for {display}")
    status = STATUS_PENDING_FORCE_DELETE if force_remove else STATUS_PENDING_DELETE
    await store.update_instance(name, UpdateInstanceParams(status=status))
