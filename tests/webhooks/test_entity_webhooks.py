"""``POST/GET/DELETE /api/v1/{repositories|organizations}/{id}/webhook`` against the fake GitHub
(docs/garm-protocol.md#rest-routes, docs/garm-protocol.md#github-calls hook rows), and the hook removal GARM
does when an entity is deleted."""

from __future__ import annotations

from typing import Any

import pytest

from pygarm.runner import webhook_management
from pygarm.store.entity_kinds import EntityKind
from tests.conftest import CONTROLLER_URLS
from tests.webhooks.conftest import WEBHOOK_SECRET, World

REPO_HOOKS = "repos/octo/hello"


def controller_url(world: World) -> str:
    return f"{CONTROLLER_URLS['webhook_url']}/{world.controller_id}"


async def test_install_get_uninstall_repository_hook(world: World) -> None:
    path = f"/api/v1/repositories/{world.repo_id}/webhook"
    response = await world.http.post(path, json={"insecure_ssl": True})
    assert response.status_code == 200, response.text
    info: dict[str, Any] = response.json()
    assert list(info) == ["id", "url", "events", "active", "insecure_ssl"]
    assert (info["url"], info["events"], info["active"], info["insecure_ssl"]) == (
        controller_url(world),
        ["workflow_job"],
        True,
        True,
    )
    (create,) = world.github.fake.calls_to("POST", f"/{REPO_HOOKS}/hooks")
    assert create.json()["config"] == {
        "content_type": "json",
        "insecure_ssl": "1",
        "secret": WEBHOOK_SECRET,
        "url": controller_url(world),
    }
    assert world.github.fake.calls_to("POST", f"/hooks/{info['id']}/pings")

    assert (await world.http.get(path)).json() == info
    again = await world.http.post(path, json={})
    assert (again.status_code, again.json()) == (
        409,
        {"error": "Conflict", "details": "hook already installed"},
    )

    response = await world.http.delete(path)
    assert (response.status_code, response.content) == (200, b"")
    assert world.github.fake.hooks[REPO_HOOKS] == {}
    missing = await world.http.get(path + "/")
    assert (missing.status_code, missing.json()) == (404, {"error": "Not Found", "details": "hook not found"})


async def test_base_hook_is_shown_but_not_deleted(world: World) -> None:
    base = CONTROLLER_URLS["webhook_url"]
    hook_id = world.github.fake.add_hook(REPO_HOOKS, base)
    path = f"/api/v1/repositories/{world.repo_id}/webhook"
    assert (await world.http.get(path)).json()["id"] == hook_id
    response = await world.http.delete(path)
    assert (response.status_code, response.json()) == (
        400,
        {"error": "Bad Request", "details": f"base hook found ({base}) and must be deleted manually"},
    )
    conflict = await world.http.post(path, json={})
    assert conflict.status_code == 409


async def test_organization_hook(world: World) -> None:
    org = (
        await world.http.post(
            "/api/v1/organizations",
            json={"name": "octo", "credentials_name": "fakecreds", "webhook_secret": "x"},
        )
    ).json()
    path = f"/api/v1/organizations/{org['id']}/webhook"
    assert (await world.http.post(path, json={})).status_code == 200
    assert world.github.fake.calls_to("POST", "/orgs/octo/hooks")
    assert (await world.http.delete(path)).status_code == 200


async def test_invalid_body_unknown_entity_and_no_access(world: World) -> None:
    path = f"/api/v1/repositories/{world.repo_id}/webhook"
    response = await world.http.post(path, content=b"{nope")
    assert (response.status_code, response.json()["details"]) == (400, "invalid request")
    unknown = await world.http.get("/api/v1/repositories/6b0f1a3c-54a1-4f4e-8a0b-9a6c2b1d0e7f/webhook")
    assert unknown.status_code == 404
    world.github.fake.inject_error("GET", "/hooks$", 404)
    response = await world.http.get(path)
    assert (response.status_code, response.json()["details"]) == (
        400,
        "repository not found or your PAT does not have access to manage webhooks",
    )


async def test_enterprises_have_no_webhook_route(world: World) -> None:
    response = await world.http.get("/api/v1/enterprises/6b0f1a3c-54a1-4f4e-8a0b-9a6c2b1d0e7f/webhook")
    assert (response.status_code, response.json()) == (
        404,
        {"error": "Not found", "details": "Resource not found"},
    )


async def test_routes_require_admin(world: World) -> None:
    response = await world.http.get(
        f"/api/v1/repositories/{world.repo_id}/webhook", headers={"Authorization": ""}
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("keep", "pools", "removed"), [(False, False, True), (True, False, False), (False, True, False)]
)
async def test_uninstall_before_delete(world: World, keep: bool, pools: bool, removed: bool) -> None:
    """GARM's ``DELETE /repositories/{id}?keepWebhook=``: the hook goes unless kept; an entity with pools
    (whose delete will fail) keeps it."""
    world.github.fake.add_hook(REPO_HOOKS, controller_url(world))
    if not pools:
        assert (await world.http.delete(f"/api/v1/pools/{world.pool_id}")).status_code == 200
    ctx = world.app.state.ctx
    await webhook_management.uninstall_before_delete(
        ctx.store, ctx.settings, EntityKind.REPOSITORY, world.repo_id, keep_webhook=keep
    )
    assert (world.github.fake.hooks[REPO_HOOKS] == {}) is removed


async def test_uninstall_before_delete_logs_github_failures(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """GARM logs a failed uninstall and deletes the entity anyway; the log line has no secret."""
    assert (await world.http.delete(f"/api/v1/pools/{world.pool_id}")).status_code == 200
    world.github.fake.inject_error("GET", "/hooks$", 500)
    ctx = world.app.state.ctx
    await webhook_management.uninstall_before_delete(
        ctx.store, ctx.settings, EntityKind.REPOSITORY, world.repo_id, keep_webhook=False
    )
    assert "failed to uninstall the webhook" in caplog.text
    assert WEBHOOK_SECRET not in caplog.text and "ghp_fake" not in caplog.text
