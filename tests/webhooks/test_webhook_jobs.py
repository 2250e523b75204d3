"""``HandleWorkflowJob`` (docs/garm-protocol.md#handling-a-job, docs/garm-protocol.md#job-records): what
``in_progress`` and ``completed`` do to runners and jobs, in GARM's event order
(docs/garm-protocol.md#end-to-end steps 11-12), and pygarm's refusal to let late or repeated deliveries move a
job or a runner backwards."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from pygarm.params.gojson import ZERO_UUID
from tests.api.entity_support import ChangeLog
from tests.webhooks.conftest import World, job_payload, make_instance, send

RUNNER = "garm-runner0001"


def kinds(changes: list[Any]) -> list[tuple[str, str]]:
    return [(c.entity_type.value, c.operation.value) for c in changes]


def payloads(changes: list[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(c.payload) for c in changes]


async def deliver(world: World, action: str, job_id: int, **kw: Any) -> None:
    response = await send(world.http, job_payload(world, action, job_id, **kw))
    assert response.status_code == 200, response.text
    assert response.content == b""


class FakeManager:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[str] = []
        self.fail = fail

    async def ensure_min_idle(self, pool_id: str) -> None:
        self.calls.append(pool_id)
        if self.fail:
            raise RuntimeError("provider exploded")


class FakeRegistry:
    """The pool-manager registry's face the webhook handler uses (``get``) plus ``status``."""

    def __init__(self, managers: dict[str, FakeManager]) -> None:
        self.managers = managers

    def get(self, entity_id: str) -> FakeManager | None:
        return self.managers.get(entity_id)

    def status(self, *args: Any) -> None:
        return None


def install_registry(world: World, **managers: FakeManager) -> None:
    world.app.state.ctx.services["pool_managers"] = FakeRegistry(dict(managers))


async def test_lifecycle_events_in_garm_order(world: World) -> None:
    """docs/garm-protocol.md#end-to-end steps 11-12: in_progress → instance/update(active), job/update;
    completed → instance/update(terminated), instance/update(pending_delete), job/update(completed)."""
    manager = FakeManager()
    install_registry(world, **{world.repo_id: manager})
    log = ChangeLog(world.app)
    await deliver(world, "queued", 1001)
    await make_instance(world, RUNNER, labels=("in_response_to_job:1001",))
    await log.mark()

    await deliver(world, "in_progress", 1001, runner_name=RUNNER)
    changes = await log.new()
    assert kinds(changes) == [("instance", "update"), ("job", "update")]
    instance, job = payloads(changes)
    assert (instance["name"], instance["runner_status"], instance["status"]) == (RUNNER, "active", "running")
    assert (job["id"], job["status"], job["action"], job["runner_id"]) == (
        1001,
        "in_progress",
        "in_progress",
        7,
    )
    assert (job["runner_group_id"], job["runner_group_name"]) == (1, "Default")
    assert job["LockedBy"] == ZERO_UUID
    # the refill of docs/garm-protocol.md#handling-a-job (ensure-min-idle for the runner's pool)
    assert manager.calls == [world.pool_id]

    await deliver(world, "completed", 1001, runner_name=RUNNER)
    changes = await log.new()
    assert kinds(changes) == [("instance", "update"), ("instance", "update"), ("job", "update")]
    terminated, pending_delete, job = payloads(changes)
    assert (terminated["runner_status"], terminated["status"]) == ("terminated", "running")
    assert terminated["job"]["id"] == 1001
    assert (pending_delete["runner_status"], pending_delete["status"]) == ("terminated", "pending_delete")
    assert (job["status"], job["conclusion"], job["runner_name"]) == ("completed", "success", RUNNER)
    assert job["CompletedAt"] == "2024-05-01T10:05:00Z"
    assert manager.calls == [world.pool_id]


async def test_completed_without_runner_only_updates_the_job(world: World) -> None:
    log = ChangeLog(world.app)
    await deliver(world, "queued", 1002)
    await log.mark()
    await deliver(world, "completed", 1002, conclusion="cancelled")
    changes = await log.new()
    assert kinds(changes) == [("job", "update")]
    assert payloads(changes)[0]["conclusion"] == "cancelled"


async def test_runner_of_another_controller_only_updates_the_job(world: World) -> None:
    """docs/garm-protocol.md#handling-a-job: an unknown ``runner_name`` stops the action part; the job is
    still recorded."""
    log = ChangeLog(world.app)
    await deliver(world, "queued", 1003)
    await log.mark()
    await deliver(world, "in_progress", 1003, runner_name="someone-elses-runner")
    await deliver(world, "completed", 1003, runner_name="someone-elses-runner")
    assert kinds(await log.new()) == [("job", "update"), ("job", "update")]


async def test_in_progress_first_records_the_job(world: World) -> None:
    """A job pygarm never saw queued is recorded by its first delivery if a pool matches."""
    await make_instance(world, RUNNER)
    log = ChangeLog(world.app)
    await log.mark()
    await deliver(world, "in_progress", 1004, runner_name=RUNNER)
    assert kinds(await log.new()) == [("instance", "update"), ("job", "create")]


async def test_late_queued_does_not_requeue(world: World) -> None:
    """Out of order: a ``queued`` after ``in_progress`` leaves job and runner as they are, no event."""
    await make_instance(world, RUNNER)
    await deliver(world, "queued", 1005)
    await deliver(world, "in_progress", 1005, runner_name=RUNNER)
    log = ChangeLog(world.app)
    await log.mark()
    await deliver(world, "queued", 1005)
    assert await log.new() == []
    jobs = (await world.http.get("/api/v1/jobs")).json()
    assert [(j["id"], j["status"]) for j in jobs] == [(1005, "in_progress")]
    assert (await world.http.get(f"/api/v1/instances/{RUNNER}")).json()["runner_status"] == "active"


async def test_late_in_progress_does_not_revive_a_finished_runner(world: World) -> None:
    """Out of order: ``in_progress`` after ``completed`` changes nothing and refills nothing."""
    manager = FakeManager()
    install_registry(world, **{world.repo_id: manager})
    await make_instance(world, RUNNER)
    await deliver(world, "queued", 1006)
    await deliver(world, "completed", 1006, runner_name=RUNNER)
    log = ChangeLog(world.app)
    await log.mark()
    await deliver(world, "in_progress", 1006, runner_name=RUNNER)
    await deliver(world, "queued", 1006)
    assert await log.new() == []
    assert manager.calls == []
    instance = (await world.http.get(f"/api/v1/instances/{RUNNER}")).json()
    assert (instance["runner_status"], instance["status"]) == ("terminated", "pending_delete")
    assert (await world.http.get("/api/v1/jobs")).json()[0]["status"] == "completed"


async def test_repeated_deliveries_emit_nothing_new(world: World) -> None:
    await make_instance(world, RUNNER)
    await deliver(world, "in_progress", 1007, runner_name=RUNNER)
    log = ChangeLog(world.app)
    await log.mark()
    await deliver(world, "in_progress", 1007, runner_name=RUNNER)
    assert kinds(await log.new()) == []  # neither the job nor the runner changes (issue 8 #6)
    await deliver(world, "completed", 1007, runner_name=RUNNER)
    assert len(await log.new()) == 3
    await deliver(world, "completed", 1007, runner_name=RUNNER)
    assert kinds(await log.new()) == []


async def test_queued_for_a_purged_completed_job_is_ignored(world: World) -> None:
    """Completed jobs are purged within seconds (docs/garm-protocol.md#job-records); a ``queued`` arriving
    later must not bring the job back (it would get a runner of its own)."""
    await deliver(world, "queued", 1008)
    await deliver(world, "completed", 1008)
    assert await world.store.delete_completed_jobs() == 1
    log = ChangeLog(world.app)
    await log.mark()
    await deliver(world, "queued", 1008)
    assert await log.new() == []
    assert (await world.http.get("/api/v1/jobs")).json() == []


async def test_concurrent_deliveries_end_in_the_latest_state(world: World) -> None:
    """Deliveries handled at the same time still cannot move the job backwards, whatever their order."""
    await make_instance(world, RUNNER)
    await deliver(world, "queued", 1009)
    await asyncio.gather(
        deliver(world, "queued", 1009),
        deliver(world, "completed", 1009, runner_name=RUNNER),
        deliver(world, "in_progress", 1009, runner_name=RUNNER),
        deliver(world, "queued", 1009),
    )
    assert (await world.http.get("/api/v1/jobs")).json()[0]["status"] == "completed"
    instance = (await world.http.get(f"/api/v1/instances/{RUNNER}")).json()
    assert (instance["runner_status"], instance["status"]) == ("terminated", "pending_delete")


async def test_completed_does_not_undo_a_deletion_in_progress(world: World) -> None:
    await make_instance(world, RUNNER, status="deleting")
    log = ChangeLog(world.app)
    await log.mark()
    await deliver(world, "completed", 1010, runner_name=RUNNER)
    changes = await log.new()
    assert kinds(changes) == [("instance", "update"), ("job", "create")]
    assert (payloads(changes)[0]["runner_status"], payloads(changes)[0]["status"]) == (
        "terminated",
        "deleting",
    )


async def test_in_progress_on_another_jobs_runner_unlocks_that_job(world: World) -> None:
    """docs/garm-protocol.md#handling-a-job step 4: the runner was created for job A but took job B; A, still
    queued, is unlocked (``BreakLockJobIsQueued``) right after B's ``job/update``."""
    await deliver(world, "queued", 2001)
    await deliver(world, "queued", 2002)
    await world.store.lock_job(2001, world.repo_id)
    await make_instance(world, RUNNER, labels=("in_response_to_job:2001",))
    log = ChangeLog(world.app)
    await log.mark()
    await deliver(world, "in_progress", 2002, runner_name=RUNNER)
    changes = await log.new()
    assert kinds(changes) == [("instance", "update"), ("job", "update"), ("job", "update")]
    _, taken, released = payloads(changes)
    assert (taken["id"], taken["status"]) == (2002, "in_progress")
    assert (released["id"], released["status"], released["LockedBy"]) == (2001, "queued", ZERO_UUID)


async def test_failed_refill_does_not_fail_the_delivery(world: World) -> None:
    install_registry(world, **{world.repo_id: FakeManager(fail=True)})
    await make_instance(world, RUNNER)
    await deliver(world, "in_progress", 1011, runner_name=RUNNER)
    assert (await world.http.get(f"/api/v1/instances/{RUNNER}")).json()["runner_status"] == "active"


async def test_runner_of_another_entitys_pool_is_updated_but_not_refilled(world: World) -> None:
    """docs/garm-protocol.md#handling-a-job: the runner is found by name across entities, but only a pool of
    this entity is refilled; the organization's manager is not asked."""
    http = world.http
    org_body = {"name": "octo", "credentials_name": "fakecreds", "webhook_secret": "x"}
    org = (await http.post("/api/v1/organizations", json=org_body)).json()
    pool_body = {
        "provider_name": "fake",
        "max_runners": 2,
        "min_idle_runners": 0,
        "image": "i",
        "flavor": "f",
        "os_type": "linux",
        "os_arch": "amd64",
        "tags": ["self-hosted", "linux"],
        "enabled": True,
    }
    org_pool = (await http.post(f"/api/v1/organizations/{org['id']}/pools", json=pool_body)).json()
    repo_manager, org_manager = FakeManager(), FakeManager()
    install_registry(world, **{world.repo_id: repo_manager, org["id"]: org_manager})
    await world.store.create_instance(
        org_pool["id"],
        __import__("tests.api.test_instances_jobs", fromlist=["x"]).new_instance(
            "garm-org-runner", status="running"
        ),
    )
    await deliver(world, "in_progress", 1012, runner_name="garm-org-runner")
    assert (await http.get("/api/v1/instances/garm-org-runner")).json()["runner_status"] == "active"
    assert repo_manager.calls == [] and org_manager.calls == []
