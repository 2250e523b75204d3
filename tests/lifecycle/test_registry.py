"""The registry and the manager's life around its entity (docs/garm-protocol.md#pool-managers): started on
create, refreshed on credentials changes, stopped on delete, one code path for every entity kind,
recovery from a dropped hub subscription, what runs while a manager is stopped, and the timeout reaper.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pygarm.errors import ConflictError
from pygarm.events.mailbox import CloseCause
from pygarm.runner.pool import PoolManagerRegistry, deletion
from pygarm.store.instances import CreateInstanceParams, UpdateInstanceParams
from pygarm.testing.fake_github import FakeGithubServer
from tests.lifecycle.support import (
    EventRecorder,
    Garm,
    PassCounter,
    ProviderFiles,
    eventually,
    only_instance,
    setup_running_repo,
    token_claims,
)

pytestmark = pytest.mark.timeout(90)


async def test_manager_follows_its_entity(
    garm: Garm, registry: PoolManagerRegistry, fake_github: FakeGithubServer
) -> None:
    """docs/garm-protocol.md#start-and-running-state: started on create, running after the tools fetch, new
    client on a credentials update, stopped on delete."""
    await garm.github_setup()
    repo = await garm.create_repo()
    running = await eventually(lambda: garm.repo_running(repo["id"]), what="running")
    assert running["pool_manager_status"] == {"running": True}
    assert fake_github.fake.calls_to("GET", "/repos/octo/hello/actions/runners/downloads")
    assert registry.status(repo["id"]).running

    credentials = await garm.call("GET", "/github/credentials")
    creds_id = credentials[0]["id"]
    await garm.call("PUT", f"/github/credentials/{creds_id}", {"pat": {"oauth2_token": "ghp_revoked"}})

    async def stopped() -> dict[str, Any] | None:
        body: dict[str, Any] = await garm.call("GET", f"/repositories/{repo['id']}")
        return body if not body["pool_manager_status"]["running"] else None

    status = (await eventually(stopped, what="401 to stop the manager"))["pool_manager_status"]
    assert "401" in status["failure_reason"]
    manager = registry.get(repo["id"])
    assert manager is not None
    with pytest.raises(ConflictError, match="pool manager is not running for octo/hello"):
        await manager.delete_runner("garm-none", force=False, bypass_gh_unauthorized=False)

    await garm.call("PUT", f"/github/credentials/{creds_id}", {"pat": {"oauth2_token": "ghp_fake"}})
    await eventually(lambda: garm.repo_running(repo["id"]), what="running again")

    await garm.call("DELETE", f"/repositories/{repo['id']}")

    async def gone() -> bool:
        return registry.get(repo["id"]) is None

    await eventually(gone, what="the manager to stop")


@pytest.mark.parametrize(
    ("collection", "body", "api_prefix", "repo_url_path", "scope"),
    [
        ("organizations", {"name": "octo-org"}, "/orgs/octo-org", "/octo-org", "organization"),
        ("enterprises", {"name": "octo-ent"}, "/enterprises/octo-ent", "/enterprises/octo-ent", "enterprise"),
    ],
)
async def test_one_code_path_for_organizations_and_enterprises(
    garm: Garm,
    fake_github: FakeGithubServer,
    provider_files: ProviderFiles,
    collection: str,
    body: dict[str, str],
    api_prefix: str,
    repo_url_path: str,
    scope: str,
) -> None:
    """docs/garm-protocol.md#pool-managers: the same manager serves every entity kind; only GitHub paths,
    ``repo_url`` and the token's scope differ."""
    await garm.github_setup()
    entity = await garm.call(
        "POST", f"/{collection}", {**body, "credentials_name": "fakecreds", "webhook_secret": "s3cret"}
    )

    async def running() -> bool:
        found = await garm.call("GET", f"/{collection}/{entity['id']}")
        return bool(found["pool_manager_status"]["running"])

    await eventually(running, what="the manager to run")
    pool_body = {
        "provider_name": "fake",
        "max_runners": 1,
        "min_idle_runners": 1,
        "image": "img",
        "flavor": "f",
        "os_type": "linux",
        "os_arch": "arm64",
        "tags": ["self-hosted"],
        "enabled": True,
    }
    pool = await garm.call("POST", f"/{collection}/{entity['id']}/pools", pool_body)
    await only_instance(garm, pool["id"], "running")
    assert fake_github.fake.calls_to("GET", f"/api/v3{api_prefix}/actions/runners/downloads")
    assert fake_github.fake.calls_to("POST", f"/api/v3{api_prefix}/actions/runners/generate-jitconfig")
    stdin = provider_files.invocations("CreateInstance")[0]["stdin"]
    assert json.loads(stdin)["repo_url"] == garm.github_base_url + repo_url_path
    assert json.loads(stdin)["arch"] == "arm64"
    claims = token_claims(stdin)
    assert (claims["scope"], claims["entity"]) == (scope, body["name"])


async def test_registry_recovers_from_a_closed_subscription(
    garm: Garm, registry: PoolManagerRegistry
) -> None:
    """If the hub drops the registry as a slow consumer, it subscribes again and re-lists the entities,
    so an entity created meanwhile still gets its manager."""
    await garm.github_setup()
    subscription = registry._subscription
    assert subscription is not None
    subscription.close(CloseCause.SLOW_CONSUMER)
    repo = await garm.create_repo()
    await eventually(lambda: garm.repo_running(repo["id"]), what="a manager for the new repository")
    assert registry._subscription is not subscription


async def test_only_the_delete_loop_runs_while_stopped(
    garm: Garm,
    registry: PoolManagerRegistry,
    events: EventRecorder,
    fake_github: FakeGithubServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/garm-protocol.md#pool-managers: a manager that cannot reach GitHub is not running; min-idle does
    nothing, but runners marked for deletion are still removed."""
    delete_loop = PassCounter(monkeypatch, deletion, "delete_pending_instances")
    fake_github.fake.unauthorized = True
    await garm.github_setup()
    repo = await garm.create_repo()

    async def failed() -> dict[str, Any] | None:
        body: dict[str, Any] = await garm.call("GET", f"/repositories/{repo['id']}")
        return body if body["pool_manager_status"].get("failure_reason") else None

    status = (await eventually(failed, what="the tools fetch to fail"))["pool_manager_status"]
    assert status["running"] is False and "401 Bad credentials" in status["failure_reason"]
    pool = await garm.create_pool(repo["id"], min_idle_runners=1)
    manager = registry.get(repo["id"])
    assert manager is not None
    store = manager.core.store
    await store.create_instance(
        pool["id"], CreateInstanceParams(name="garm-manual000001", status="running", runner_status="idle")
    )
    await store.update_instance("garm-manual000001", UpdateInstanceParams(status="pending_delete"))
    await events.wait_for(
        lambda f: f["operation"] == "delete" and f["entity-type"] == "instance", what="delete"
    )
    await delete_loop.more(3)  # the loops that run while stopped ran several times since
    assert await garm.instances(pool["id"]) == []
    assert [f["payload"]["name"] for f in events.of("instance") if f["operation"] == "create"] == [
        "garm-manual000001"
    ]


@pytest.mark.pool_manager(reaper_interval="300ms", orphan_runner_age="500ms")
async def test_reaper_reconciles_with_github(
    garm: Garm, registry: PoolManagerRegistry, events: EventRecorder, fake_github: FakeGithubServer
) -> None:
    """docs/garm-protocol.md#cleanup: an offline runner of ours without an instance is unregistered from
    GitHub; an instance whose runner GitHub no longer knows is marked ``pending_delete`` and removed."""
    fake = fake_github.fake
    repo = await setup_running_repo(garm)
    pool = await garm.create_pool(repo["id"], min_idle_runners=1, max_runners=1)
    instance = await only_instance(garm, pool["id"], "running")
    controller = await garm.call("GET", "/controller")
    ghost = fake.add_runner(
        "repos/octo/hello",
        "garm-ghost0000001",
        labels=[f"runner-controller-id:{controller['controller_id']}"],
        status="offline",
    )
    foreign = fake.add_runner(
        "repos/octo/hello", "someone-else", labels=["runner-controller-id:x"], status="offline"
    )

    async def ghost_removed() -> bool:
        return bool(fake.calls_to("DELETE", f"/repos/octo/hello/actions/runners/{ghost}"))

    await eventually(ghost_removed, what="the orphaned GitHub runner to be removed")
    assert not fake.calls_to("DELETE", f"/repos/octo/hello/actions/runners/{foreign}")  # not ours

    store = registry.get(repo["id"]).core.store  # type: ignore[union-attr]
    await store.update_instance(instance["name"], UpdateInstanceParams(runner_status="idle"))  # installed
    with fake._lock:
        fake.runners["repos/octo/hello"].pop(instance["agent_id"])  # GitHub forgets the runner
    await events.wait_for(
        lambda f: f["entity-type"] == "instance" and f["operation"] == "delete", what="the orphan to go"
    )
    assert events.instance_trail(instance["name"])[-3:] == [
        "update:pending_delete",
        "update:deleting",
        "delete",
    ]
