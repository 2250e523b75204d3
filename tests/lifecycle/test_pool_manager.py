"""Pool managers against the real app (both backends), the fake GitHub and the test provider, with the
loops shortened to 150 ms (docs/garm-protocol.md#pool-managers, docs/garm-protocol.md#job-queue,
docs/garm-protocol.md#other-scenarios).

Each test drives GARM's flows through REST and the store, and asserts what GARM would emit and call:
instance and job events in order, provider invocations, GitHub calls.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pygarm.runner.pool import PoolManagerRegistry, creation, deletion, jobqueue
from pygarm.runner.pool.core import utcnow
from pygarm.runner.pool.scaling import is_reapable_idle
from pygarm.store.instances import UpdateInstanceParams
from pygarm.testing.fake_github import FakeGithubServer
from tests.lifecycle.support import (
    EventRecorder,
    Garm,
    PassCounter,
    ProviderFiles,
    eventually,
    fault_text,
    only_instance,
    queue_job,
    setup_running_repo,
    store_of,
    token_claims,
)

pytestmark = pytest.mark.timeout(90)


async def test_min_idle_then_delete_runner(
    garm: Garm,
    registry: PoolManagerRegistry,
    events: EventRecorder,
    fake_github: FakeGithubServer,
    provider_files: ProviderFiles,
) -> None:
    """docs/garm-protocol.md#other-scenarios (a): min-idle creates a runner; deleting it unregisters it from
    GitHub, the delete loop removes it, and min-idle replaces it."""
    repo = await setup_running_repo(garm)
    pool = await garm.create_pool(repo["id"], min_idle_runners=1)
    first = await only_instance(garm, pool["id"], "running")
    assert events.instance_trail(first["name"]) == [
        "create:pending_create",
        "update:creating",
        "update:running",
    ]
    created = events.of("instance", name=first["name"])[0]["payload"]
    assert (created["runner_status"], created.get("job")) == ("pending", None)
    assert first["agent_id"] > 0  # JIT runner id
    detail = await garm.instance(first["name"])
    assert detail["provider_id"] == f"prov-{first['name']}"
    assert detail["addresses"] == [{"address": "10.0.0.5", "type": "private"}]

    manager = registry.get(repo["id"])
    assert manager is not None
    await manager.delete_runner(first["name"], force=False, bypass_gh_unauthorized=False)
    assert fake_github.fake.calls_to("DELETE", f"/repos/octo/hello/actions/runners/{first['agent_id']}")
    await events.wait_for(
        lambda f: f["entity-type"] == "instance" and f["operation"] == "delete", what="instance/delete"
    )
    assert events.instance_trail(first["name"])[3:] == ["update:pending_delete", "update:deleting", "delete"]

    async def replacement() -> dict[str, Any] | None:
        found = await garm.instances(pool["id"])
        return found[0] if found and found[0]["name"] != first["name"] else None

    await eventually(replacement, what="min-idle to replace the runner")
    deletes = provider_files.invocations("DeleteInstance")
    assert [dict(d["environ"])["GARM_INSTANCE_ID"] for d in deletes] == [f"prov-{first['name']}"]


async def test_provider_failure_is_retried_six_times(
    garm: Garm,
    registry: PoolManagerRegistry,
    events: EventRecorder,
    provider_files: ProviderFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/garm-protocol.md#other-scenarios (b), docs/garm-protocol.md#retrying-failed-creates: create fails
    → error with the fault; retried while create_attempt < 5, so 6 creates (JWT create_attempt 0..5) and a
    DeleteInstance by name after each failure and before each retry."""
    retry_loop = PassCounter(monkeypatch, creation, "retry_failed_instances")
    min_idle_loop = PassCounter(monkeypatch, creation, "ensure_min_idle_runners")
    provider_files.set_knobs(fail_create="simulated failure")
    repo = await setup_running_repo(garm)
    pool = await garm.create_pool(repo["id"], min_idle_runners=1)

    async def six_creates() -> list[dict[str, Any]] | None:
        creates = provider_files.invocations("CreateInstance")
        return creates if len(creates) >= 6 else None

    creates = await eventually(six_creates, timeout=30, what="6 CreateInstance calls")
    instance = await only_instance(garm, pool["id"], "error")
    await retry_loop.more(3)  # several more passes of the loops that could create: nothing more happens
    await min_idle_loop.more(3)
    assert len(provider_files.invocations("CreateInstance")) == 6
    assert [token_claims(c["stdin"])["create_attempt"] for c in creates] == [0, 1, 2, 3, 4, 5]
    deletes = provider_files.invocations("DeleteInstance")
    assert len(deletes) == 11
    assert {dict(d["environ"])["GARM_INSTANCE_ID"] for d in deletes} == {instance["name"]}
    detail = await garm.instance(instance["name"])
    assert detail["status"] == "error"
    fault = fault_text(detail)
    assert fault.startswith("creating instance: provider binary ")
    assert "stderr: simulated failure\n: exit status 1" in fault
    trail = events.instance_trail(instance["name"])
    assert trail[:3] == ["create:pending_create", "update:creating", "update:error"]
    assert trail.count("update:creating") == 6 and trail.count("update:pending_create") == 5
    assert trail[-1] == "update:error"


async def test_registration_token_fallback(
    app: FastAPI,
    garm: Garm,
    events: EventRecorder,
    fake_github: FakeGithubServer,
    provider_files: ProviderFiles,
) -> None:
    """docs/garm-protocol.md#other-scenarios (c): JIT fails (404) → agent_id 0, the provider gets labels and
    ``jit_config_enabled: false``, and the runner fetches one registration token from the metadata
    endpoint."""
    fake_github.fake.jit_failure_status = 404
    repo = await setup_running_repo(garm)
    pool = await garm.create_pool(repo["id"], min_idle_runners=1)
    instance = await only_instance(garm, pool["id"], "running")
    assert instance["agent_id"] == 0
    stdin = (await eventually(lambda: _first(provider_files, "CreateInstance")))["stdin"]
    bootstrap = json.loads(stdin)
    controller = await garm.call("GET", "/controller")
    assert bootstrap["labels"] == [
        "self-hosted",
        "linux",
        "x64",
        f"runner-controller-id:{controller['controller_id']}",
        f"runner-pool-id:{pool['id']}",
    ]
    assert bootstrap["jit_config_enabled"] is False

    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {bootstrap['instance-token']}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1:9997", headers=headers
    ) as runner:
        token = await runner.get("/api/v1/metadata/runner-registration-token/")
        assert (token.status_code, token.text) == (200, "FAKE-REG-TOKEN")
        assert fake_github.fake.calls_to("POST", "/repos/octo/hello/actions/runners/registration-token")
        assert (await runner.get("/api/v1/metadata/runner-registration-token/")).status_code == 401
        assert (await runner.get("/api/v1/metadata/credentials/runner")).status_code == 401
        idle = {"status": "idle", "message": "runner successfully installed", "agent_id": 777}
        assert (await runner.post("/api/v1/callbacks/status", json=idle)).status_code == 200
    final = await events.wait_for(
        lambda f: f["entity-type"] == "instance" and f["payload"].get("agent_id") == 777, what="agent_id 777"
    )
    assert final["payload"]["runner_status"] == "idle"


async def _first(files: ProviderFiles, command: str) -> dict[str, Any] | None:
    found = files.invocations(command)
    return found[0] if found else None


@pytest.mark.pool_manager(stale_job_age="500ms")  # <= idle age: the job is older than the runner
async def test_idle_scale_down_and_stale_job_delete(
    garm: Garm, registry: PoolManagerRegistry, events: EventRecorder, fake_github: FakeGithubServer
) -> None:
    """docs/garm-protocol.md#other-scenarios (d), docs/garm-protocol.md#producing-a-jobdelete: a queued job
    gets a runner (locked job, ``in_response_to_job`` label); the runner reports idle but never takes the job;
    past the idle age scale-down unregisters and removes it, and deletes the stale queued job
    (``job/delete``)."""
    repo = await setup_running_repo(garm)
    pool = await garm.create_pool(repo["id"], tags=["self-hosted", "slow"], max_runners=3)
    store = store_of(registry)
    await queue_job(store, repo["id"], 3001, ["self-hosted", "slow"])
    locked = await events.wait_for(
        lambda f: f["entity-type"] == "job" and f["payload"]["LockedBy"] == repo["id"], what="job lock"
    )
    assert locked["operation"] == "update" and locked["payload"]["status"] == "queued"
    instance = await only_instance(garm, pool["id"], "running")
    record = await store.get_instance_record(instance["name"])
    assert record.aditional_labels == ["in_response_to_job:3001"]
    jit = fake_github.fake.calls_to("POST", "/repos/octo/hello/actions/runners/generate-jitconfig")
    assert jit[0].json()["labels"][:2] == ["self-hosted", "slow"]

    await store.update_instance(instance["name"], UpdateInstanceParams(runner_status="idle"))
    deleted = await events.wait_for(
        lambda f: f["entity-type"] == "instance" and f["operation"] == "delete", what="scale-down"
    )
    assert deleted["payload"]["name"] == instance["name"]
    assert fake_github.fake.calls_to("DELETE", f"/repos/octo/hello/actions/runners/{instance['agent_id']}")
    assert events.instance_trail(instance["name"])[-3:] == [
        "update:pending_delete",
        "update:deleting",
        "delete",
    ]
    job_deletes = [f for f in events.of("job") if f["operation"] == "delete"]
    assert [f["payload"]["id"] for f in job_deletes] == [3001]


async def test_completed_job_purge_emits_job_delete(
    garm: Garm, registry: PoolManagerRegistry, events: EventRecorder
) -> None:
    """pygarm rule: every removal of a job row is a ``job/delete``, including the consumer's purge of
    completed jobs (GARM purges silently, docs/garm-protocol.md#job-records)."""
    repo = await setup_running_repo(garm)
    await garm.create_pool(repo["id"])
    store = store_of(registry)
    await queue_job(store, repo["id"], 4001, ["self-hosted"])
    await events.wait_for(lambda f: f["entity-type"] == "instance" and f["operation"] == "create")
    await queue_job(store, repo["id"], 4001, ["self-hosted"], action="completed", status="completed")
    deleted = await events.wait_for(
        lambda f: f["entity-type"] == "job" and f["operation"] == "delete", what="the purge"
    )
    assert deleted["payload"]["id"] == 4001
    assert deleted["payload"]["status"] == "completed"
    assert await store.list_all_jobs() == []


@pytest.mark.pool_manager(provider_timeout="1s")
async def test_hung_provider_is_killed_and_recorded(
    garm: Garm, registry: PoolManagerRegistry, provider_files: ProviderFiles
) -> None:
    """pygarm bounds provider runs: a CreateInstance that hangs is killed after the timeout and the
    instance goes to ``error`` with the timeout in ``provider_fault``."""
    provider_files.set_knobs(hang="60")
    repo = await setup_running_repo(garm)
    pool = await garm.create_pool(repo["id"], min_idle_runners=1)
    instance = await only_instance(garm, pool["id"], "error")
    fault = fault_text(await garm.instance(instance["name"]))
    assert fault.startswith("creating instance: provider binary ")
    assert "timed out after 1s; process group killed" in fault
    provider_files.set_knobs()  # let the retries succeed
    await only_instance(garm, pool["id"], "running")


@pytest.mark.pool_manager(consolidate_interval="1h")  # the test runs the job queue pass itself
@pytest.mark.parametrize(("balancer", "expected"), [("pack", [2, 0]), ("roundrobin", [1, 1])])
async def test_balancer_spreads_or_packs_jobs(
    garm: Garm, registry: PoolManagerRegistry, balancer: str, expected: list[int]
) -> None:
    """docs/garm-protocol.md#job-queue: in one pass, ``pack`` fills the highest-priority pool first;
    ``roundrobin`` alternates."""
    repo = await setup_running_repo(garm)
    await garm.call("PUT", f"/repositories/{repo['id']}", {"pool_balancer_type": balancer})
    high = await garm.create_pool(repo["id"], priority=10, tags=["self-hosted"])
    low = await garm.create_pool(repo["id"], priority=1, tags=["self-hosted"])
    manager = registry.get(repo["id"])
    assert manager is not None
    store = manager.core.store
    await queue_job(store, repo["id"], 5001, ["self-hosted"])
    await queue_job(store, repo["id"], 5002, ["self-hosted"])

    async def balancer_applied() -> bool:
        return manager.entity.pool_balancing_type == balancer

    await eventually(balancer_applied, what="the manager to see the balancer type")
    await jobqueue.consume_queued_jobs(manager.core)
    counts = [await store.pool_instance_count(pool["id"]) for pool in (high, low)]
    assert counts == expected
    assert {job.locked_by for job in await store.list_all_jobs()} == {repo["id"]}


async def test_min_idle_three_fills_tops_up_and_scales_down_to_three(
    garm: Garm, registry: PoolManagerRegistry
) -> None:
    """``min_idle_runners = 3`` with the loops running: three runners; two turning busy are replaced (five
    rows, three idle); once all five are idle and old, scale-down removes the surplus and keeps exactly
    three (docs/garm-protocol.md#minimum-idle-runners, docs/garm-protocol.md#scale-down)."""
    repo = await setup_running_repo(garm)
    pool = await garm.create_pool(repo["id"], min_idle_runners=3, max_runners=6)
    store = store_of(registry)

    async def running(count: int) -> list[dict[str, Any]] | None:
        found = await garm.instances(pool["id"])
        ok = len(found) == count and all(i["status"] == "running" for i in found)
        return found if ok else None

    first = await eventually(lambda: running(3), what="three runners")
    for instance in first[:2]:
        await store.update_instance(instance["name"], UpdateInstanceParams(runner_status="active"))
    five = await eventually(lambda: running(5), what="two more runners for the two busy ones")
    assert {i["name"] for i in first} < {i["name"] for i in five}
    assert sorted(i["runner_status"] for i in five) == ["active", "active", "pending", "pending", "pending"]

    for instance in five:
        await store.update_instance(instance["name"], UpdateInstanceParams(runner_status="idle"))
    kept = await eventually(lambda: running(3), timeout=30, what="scale-down to three")
    assert {i["runner_status"] for i in kept} == {"idle"}
    assert {i["name"] for i in kept} < {i["name"] for i in five}

    # The three left are idle and old enough to reap, yet a scale-down pass keeps them all.
    manager = registry.get(repo["id"])
    assert manager is not None
    idle_age = manager.core.timings.idle_runner_age

    async def all_reapable() -> bool:
        records = await store.list_instance_records(pool_id=pool["id"])
        return all(is_reapable_idle(r.instance, utcnow(), idle_age) for r in records)

    await eventually(all_reapable, what="the three to pass the idle age")
    await deletion.scale_down(manager.core)
    assert {i["name"] for i in await garm.instances(pool["id"])} == {i["name"] for i in kept}
