"""Installing, removing and showing the controller's webhook on a repository or organization
(docs/garm-protocol.md#github-calls hook rows; GARM's
``InstallWebhook``/``UninstallWebhook``/``GetWebhookInfo``).

Only with ``[default] enable_webhook_management = true``, as in GARM. The GitHub rules (duplicate
checks, which hook may be deleted, the ping) live in :mod:`pygarm.runner.github.webhooks`; this module
supplies the entity, its credentials and secret, and the controller's URLs. The webhook secret goes to
GitHub in the create-hook body and nowhere else.

GARM needs the entity's pool manager for these calls; pygarm builds a GitHub client from the stored
credentials instead, so they also work while the pool manager is not running.
"""

from __future__ import annotations

import logging

from pygarm.config import Settings
from pygarm.errors import GarmError
from pygarm.params.github_webhook import InstallWebhookParams
from pygarm.params.models import HookInfo
from pygarm.runner.entity_github import github_client_for_entity
from pygarm.runner.github import WebhookTarget, get_webhook_info, install_webhook, uninstall_webhook
from pygarm.runner.github.client import OperationCounter
from pygarm.store.entity_kinds import EntityKind
from pygarm.store.store import Store

log = logging.getLogger(__name__)

HOOK_KINDS = (EntityKind.REPOSITORY, EntityKind.ORGANIZATION)
"""GitHub has no enterprise-level repository webhooks; GARM offers no enterprise webhook routes."""


async def webhook_target(store: Store) -> WebhookTarget:
    """The controller's URLs; an unset ``webhook_url`` leaves no controller URL to install."""
    info = await store.get_controller_info()
    controller_url = info.controller_webhook_url if info.webhook_url else ""
    return WebhookTarget(info.controller_id, info.webhook_url, controller_url)


async def install(
    store: Store,
    kind: EntityKind,
    entity_id: str,
    params: InstallWebhookParams,
    counters: OperationCounter | None = None,
) -> HookInfo:
    entity = await store.get_entity(kind, entity_id)
    target = await webhook_target(store)
    secret = await store.get_entity_webhook_secret(kind, entity.id)
    async with await github_client_for_entity(store, kind, entity, counters=counters) as client:
        return await install_webhook(client, target, secret=secret, insecure_ssl=params.insecure_ssl)


async def uninstall(
    store: Store, kind: EntityKind, entity_id: str, counters: OperationCounter | None = None
) -> None:
    entity = await store.get_entity(kind, entity_id)
    target = await webhook_target(store)
    async with await github_client_for_entity(store, kind, entity, counters=counters) as client:
        await uninstall_webhook(client, target)


async def info(
    store: Store, kind: EntityKind, entity_id: str, counters: OperationCounter | None = None
) -> HookInfo:
    entity = await store.get_entity(kind, entity_id)
    target = await webhook_target(store)
    async with await github_client_for_entity(store, kind, entity, counters=counters) as client:
        return await get_webhook_info(client, target)


async def uninstall_before_delete(
    store: Store, settings: Settings, kind: EntityKind, entity_id: str, *, keep_webhook: bool
) -> None:
    """GARM's entity delete (``garm@v0.1.5 runner/repositories.go:161-174``): unless ``keepWebhook`` is true,
    and only with webhook management on, remove the controller's hook first. A failure is logged and the
    delete goes on, as in GARM. Nothing is removed from an entity that still has pools, because the delete
    itself will then fail with 400 (GARM checks the pools first too)."""
    if keep_webhook or not settings.default.enable_webhook_management or kind not in HOOK_KINDS:
        return
    entity = await store.get_entity(kind, entity_id)
    if entity.pool:
        return
    try:
        await uninstall(store, kind, entity.id)
    except GarmError as exc:
        log.warning("failed to uninstall the webhook of %s %s: %s", kind.value, entity.id, exc.message)
