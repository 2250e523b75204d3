"""Webhook install / uninstall / info rules for repositories and organizations
(docs/garm-protocol.md#github-calls)."""

from __future__ import annotations

import pytest

from pygarm.errors import BadRequestError, ConflictError, NotFoundError
from pygarm.runner.github import (
    GithubClient,
    GithubEndpointConfig,
    GithubEntity,
    PATCredentials,
    WebhookTarget,
    get_webhook_info,
    install_webhook,
    uninstall_webhook,
)
from pygarm.testing.fake_github import DEFAULT_PAT, FakeGithubServer

CONTROLLER_ID = "5f0c1b2a-aaaa-bbbb-cccc-1234567890ab"
TARGET = WebhookTarget(
    controller_id=CONTROLLER_ID,
    base_webhook_url="http://garm.example.com:9997/webhooks",
    controller_webhook_url=f"http://garm.example.com:9997/webhooks/{CONTROLLER_ID}",
)
REPO = GithubEntity.repository("octo", "hello")
ORG = GithubEntity.organization("octo-org")


def client_for(server: FakeGithubServer, entity: GithubEntity = REPO) -> GithubClient:
    endpoint = GithubEndpointConfig(api_base_url=server.api_base_url)
    return GithubClient(endpoint, PATCredentials(DEFAULT_PAT), entity, timeout=10)


@pytest.mark.parametrize(("entity", "key"), [(REPO, "repos/octo/hello"), (ORG, "orgs/octo-org")])
async def test_install_creates_and_pings(
    fake_github: FakeGithubServer, entity: GithubEntity, key: str
) -> None:
    """Install lists hooks, creates the controller hook, pings it, and returns its HookInfo."""
    async with client_for(fake_github, entity) as client:
        info = await install_webhook(client, TARGET, secret="s3cret", insecure_ssl=False)
    assert info.url == TARGET.controller_webhook_url
    assert (info.active, info.insecure_ssl, info.events) == (True, False, ["workflow_job"])
    assert [(c.method, c.path) for c in fake_github.fake.calls] == [
        ("GET", f"/api/v3/{key}/hooks"),
        ("POST", f"/api/v3/{key}/hooks"),
        ("POST", f"/api/v3/{key}/hooks/{info.id}/pings"),
    ]
    assert fake_github.fake.calls[1].json()["config"]["secret"] == "s3cret"


async def test_install_refuses_duplicates(fake_github: FakeGithubServer) -> None:
    """409 ``hook already installed`` for the same URL; 409 for a URL with our ID or host name."""
    fake_github.fake.add_hook("repos/octo/hello", TARGET.controller_webhook_url)
    async with client_for(fake_github) as client:
        with pytest.raises(ConflictError, match=r"^hook already installed$"):
            await install_webhook(client, TARGET, secret="s", insecure_ssl=False)
    fake_github.fake.hooks.clear()
    fake_github.fake.add_hook("repos/octo/hello", "https://GARM.example.com/other")
    async with client_for(fake_github) as client:
        with pytest.raises(ConflictError, match="controller ID or hostname"):
            await install_webhook(client, TARGET, secret="s", insecure_ssl=False)


async def test_install_tolerates_unrelated_hooks_and_failed_ping(fake_github: FakeGithubServer) -> None:
    fake_github.fake.add_hook("repos/octo/hello", "https://ci.example.org/hook")
    fake_github.fake.inject_error("POST", r"/pings$", 500, "ping failed")
    async with client_for(fake_github) as client:
        info = await install_webhook(client, TARGET, secret="s", insecure_ssl=True)
    assert info.insecure_ssl is True


async def test_list_404_becomes_bad_request(fake_github: FakeGithubServer) -> None:
    fake_github.fake.inject_error("GET", r"/hooks$", 404, "Not Found")
    async with client_for(fake_github) as client:
        with pytest.raises(BadRequestError, match="your PAT does not have access to manage webhooks"):
            await get_webhook_info(client, TARGET)


async def test_info_prefers_controller_hook_then_base_hook(fake_github: FakeGithubServer) -> None:
    fake = fake_github.fake
    async with client_for(fake_github) as client:
        with pytest.raises(NotFoundError, match=r"^hook not found$"):
            await get_webhook_info(client, TARGET)
        fake.add_hook("repos/octo/hello", TARGET.base_webhook_url + "/")
        assert (await get_webhook_info(client, TARGET)).url == TARGET.base_webhook_url + "/"
        fake.add_hook("repos/octo/hello", TARGET.controller_webhook_url.upper())
        assert (await get_webhook_info(client, TARGET)).url == TARGET.controller_webhook_url.upper()


async def test_uninstall_deletes_only_the_controller_hook(fake_github: FakeGithubServer) -> None:
    """Uninstall removes the controller hook (case and trailing ``/`` ignored); a lone base hook → 400."""
    fake = fake_github.fake
    base_id = fake.add_hook("repos/octo/hello", TARGET.base_webhook_url)
    async with client_for(fake_github) as client:
        with pytest.raises(BadRequestError, match=r"^base hook found \(.*\) and must be deleted manually$"):
            await uninstall_webhook(client, TARGET)
        hook_id = fake.add_hook("repos/octo/hello", TARGET.controller_webhook_url + "/")
        await uninstall_webhook(client, TARGET)
    assert list(fake.hooks["repos/octo/hello"]) == [base_id]
    assert fake.calls_to("DELETE", f"/hooks/{hook_id}")


async def test_uninstall_with_nothing_installed_is_fine(fake_github: FakeGithubServer) -> None:
    async with client_for(fake_github) as client:
        await uninstall_webhook(client, TARGET)
    assert not fake_github.fake.calls_to("DELETE", "")


async def test_empty_controller_url_is_rejected(fake_github: FakeGithubServer) -> None:
    target = WebhookTarget(controller_id=CONTROLLER_ID, base_webhook_url="", controller_webhook_url="")
    async with client_for(fake_github) as client:
        with pytest.raises(BadRequestError, match="controller webhook url is empty"):
            await install_webhook(client, target, secret="s", insecure_ssl=False)
    assert fake_github.fake.calls == []
