"""Installing, removing and describing the controller's ``workflow_job`` webhook
(docs/garm-protocol.md#github-calls).

GARM's rules (``garm@v0.1.5 runner/pool/common.go``, ``garm@v0.1.5 runner/pool/pool.go:1788-1878,1967-2001``),
kept with their texts:

* install: 409 ``hook already installed`` when a hook has exactly the controller webhook URL; 409 when any
  hook URL (lower-cased) contains the controller ID or the base webhook URL's host name; otherwise create
  it, then ping it (a failed ping is only logged);
* uninstall: delete the hook whose URL equals the controller webhook URL (trailing ``/`` and case
  ignored); if only the base ``webhook_url`` hook exists, 400 ``base hook found (<url>) and must be deleted
  manually``; nothing found is success;
* info: the controller hook, else the base hook, else 404 ``hook not found``;
* a 404 from listing hooks becomes 400 ``repository not found or your PAT does not have access to manage
  webhooks`` (for organizations too, as in GARM).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from pygarm.errors import BadRequestError, ConflictError, NotFoundError
from pygarm.params.models import HookInfo
from pygarm.runner.github.client import GithubClient
from pygarm.runner.github.errors import GithubError, GithubNotFoundError
from pygarm.runner.github.models import Hook

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """The controller's webhook URLs: ``base_webhook_url`` is the controller's ``webhook_url``;
    ``controller_webhook_url`` is the per-controller URL GitHub should call (``<webhook_url>/<id>``)."""

    controller_id: str
    base_webhook_url: str
    controller_webhook_url: str


def hook_info(hook: Hook) -> HookInfo:
    """GARM's ``hookToParamsHookInfo``."""
    return HookInfo(
        id=hook.id or 0,
        url=hook.url,
        events=hook.events,
        active=bool(hook.active),
        insecure_ssl=hook.insecure_ssl,
    )


def validate_hook_request(controller_id: str, base_webhook_url: str, hooks: list[Hook], url: str) -> None:
    """GARM's ``validateHookRequest``: refuse a second hook pointing at this controller.

    Note GARM's quirk: an empty controller ID or host name matches every hook.
    """
    host = urlsplit(base_webhook_url).hostname or ""
    partial_matches = []
    for hook in hooks:
        if not hook.url:
            continue
        if hook.url == url:
            raise ConflictError("hook already installed")
        lowered = hook.url.lower()
        if controller_id in lowered or host in lowered:
            partial_matches.append(hook.url)
    if partial_matches:
        raise ConflictError(
            "a webhook containing the controller ID or hostname of this contreoller is already installed"
            " on this repository"
        )


async def list_hooks(client: GithubClient) -> list[Hook]:
    try:
        return await client.list_hooks()
    except GithubNotFoundError:
        raise BadRequestError(
            "repository not found or your PAT does not have access to manage webhooks"
        ) from None


async def install_webhook(
    client: GithubClient, target: WebhookTarget, *, secret: str, insecure_ssl: bool
) -> HookInfo:
    """Create the controller's hook after GARM's duplicate checks, then ping it."""
    if not target.controller_webhook_url:
        raise BadRequestError("controller webhook url is empty")
    hooks = await list_hooks(client)
    validate_hook_request(target.controller_id, target.base_webhook_url, hooks, target.controller_webhook_url)
    hook = await client.create_hook(
        url=target.controller_webhook_url, secret=secret, insecure_ssl=insecure_ssl
    )
    assert hook.id is not None  # create_hook checks it
    try:
        await client.ping_hook(hook.id)
    except GithubError as exc:
        log.warning("failed to ping hook %d: %s", hook.id, exc)
    return hook_info(hook)


def _same_url(left: str, right: str) -> bool:
    return left.rstrip("/").casefold() == right.rstrip("/").casefold()


async def uninstall_webhook(client: GithubClient, target: WebhookTarget) -> None:
    """Delete the controller's hook; never touch a hook that only matches the base webhook URL."""
    if not target.controller_webhook_url:
        raise BadRequestError("controller webhook url is empty")
    controller_hook_id = 0
    base_hook = ""
    for hook in await list_hooks(client):
        if _same_url(hook.url, target.controller_webhook_url):
            controller_hook_id = hook.id or 0
        if _same_url(hook.url, target.base_webhook_url):
            base_hook = hook.url
    if controller_hook_id:
        await client.delete_hook(controller_hook_id)
        return
    if base_hook:
        raise BadRequestError(f"base hook found ({base_hook}) and must be deleted manually")


async def get_webhook_info(client: GithubClient, target: WebhookTarget) -> HookInfo:
    """The controller's hook, else a hook on the base webhook URL, else 404 ``hook not found``."""
    base_hook: Hook | None = None
    for hook in await list_hooks(client):
        if _same_url(hook.url, target.controller_webhook_url):
            return hook_info(hook)
        if _same_url(hook.url, target.base_webhook_url):
            base_hook = hook
    if base_hook is not None:
        return hook_info(base_hook)
    raise NotFoundError("hook not found")
