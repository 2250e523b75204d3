"""docs/garm-protocol.md#end-to-end end to end against a live pygarm (uvicorn on 127.0.0.1, both backends):
the fake GitHub, the test provider, GitHub's webhooks, the runner's callbacks, and a GARM client subscribed to
``/api/v1/ws/events`` with ``{"send-everything":true}`` that must see the jobs and instances live in
GARM's order. The pool manager loops run every 150 ms instead of 5 s.

Where pygarm differs on purpose, the assertion says so: a completed job's purge is a ``job/delete``
(GARM purges silently), and a job's ``runner_name`` shows the linked runner as soon as it is linked.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect

from pygarm.params.gojson import ZERO_UUID
from pygarm.testing.fake_github import FakeGithubServer
from tests.lifecycle.support import (
    EventRecorder,
    FrameLog,
    Garm,
    ProviderFiles,
    WebsocketEvents,
    eventually,
    post_webhook,
    workflow_job,
)
from tests.live import HTTP_TIMEOUT_S, LiveServer

pytestmark = pytest.mark.timeout(90)

JOB_ID = 1001


class Scenario:
    """A pygarm (live or in-process), an admin HTTP client, an event stream, and the fakes."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        events: FrameLog,
        github: FakeGithubServer,
        provider: ProviderFiles,
        runner_client: Callable[[str], httpx.AsyncClient],
    ) -> None:
        self.http = http
        self.garm = Garm(http, github.base_url)
        self.events = events
        self.github = github
        self.provider = provider
        self.runner_client = runner_client
        self.controller_id = ""

    async def prepare(self) -> None:
        # docs/garm-protocol.md#end-to-end steps 2-4 (backoff 0, endpoint, credentials)
        await self.garm.github_setup()
        self.controller_id = (await self.garm.call("GET", "/controller"))["controller_id"]

    async def webhook(self, action: str, **fields: Any) -> None:
        body = workflow_job(action, JOB_ID, self.github.base_url, **fields)
        response = await post_webhook(self.http, self.controller_id, body)
        assert response.status_code == 200, response.text


@pytest.fixture
async def live_scenario(
    live_admin: tuple[LiveServer, str], fake_github: FakeGithubServer, provider_files: ProviderFiles
) -> AsyncIterator[Scenario]:
    """A live server and a GARM client on ``/api/v1/ws/events`` with ``{"send-everything":true}``."""
    live, token = live_admin
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=live.base_url, headers=headers, timeout=10) as http:
        base = live.base_url
        urls = {
            "metadata_url": f"{base}/api/v1/metadata",
            "callback_url": f"{base}/api/v1/callbacks",
            "webhook_url": f"{base}/webhooks",
        }
        # docs/garm-protocol.md#end-to-end: URLs before subscribing
        response = await http.put("/api/v1/controller", json=urls)
        assert response.status_code == 200, response.text
        ws_url = live.ws_url + "/api/v1/ws/events"
        async with connect(ws_url, additional_headers=headers, compression=None, open_timeout=5) as ws:
            await ws.send('{"send-everything":true}')
            events = WebsocketEvents(ws)

            def runner_client(token: str) -> httpx.AsyncClient:
                return httpx.AsyncClient(
                    timeout=HTTP_TIMEOUT_S, base_url=base, headers={"Authorization": f"Bearer {token}"}
                )

            state = Scenario(http, events, fake_github, provider_files, runner_client)
            await state.prepare()
            try:
                yield state
            finally:
                await events.close()


@pytest.fixture
async def local_scenario(
    app: FastAPI,
    admin_client: httpx.AsyncClient,
    events: EventRecorder,
    fake_github: FakeGithubServer,
    provider_files: ProviderFiles,
) -> Scenario:
    """The same in-process: the ASGI app and an in-process hub subscriber (no sockets but GitHub's)."""

    def runner_client(token: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9997", headers=headers)

    state = Scenario(admin_client, events, fake_github, provider_files, runner_client)
    await state.prepare()
    return state


def _kinds(frames: list[dict[str, Any]]) -> list[str]:
    return [f"{f['entity-type']}/{f['operation']}" for f in frames]


# The idle runner must wait for its job: with the fast loops' 0.5 s idle age, a loaded machine delivered the
# in_progress webhook after scale-down had already removed the runner.
WAITING_RUNNER = pytest.mark.pool_manager(idle_runner_age="1h")


@WAITING_RUNNER
async def test_section_6_2_live(live_scenario: Scenario) -> None:
    await run_section_6_2(live_scenario)


@WAITING_RUNNER
async def test_section_6_2_in_process(local_scenario: Scenario) -> None:
    await run_section_6_2(local_scenario)


async def run_section_6_2(scenario: Scenario) -> None:
    garm, events, fake = scenario.garm, scenario.events, scenario.github.fake
    await events.wait_for(
        lambda f: f["entity-type"] == "github_credentials", what="github_credentials/create"
    )
    assert _kinds(events.drain())[-3:] == [
        "controller/update",
        "github_endpoint/create",
        "github_credentials/create",
    ]

    # Step 5: the repository; its pool manager fetches the tools and runs.
    repo = await garm.create_repo()
    await eventually(lambda: garm.repo_running(repo["id"]), what="the pool manager to run")
    assert fake.calls_to("GET", "/api/v3/repos/octo/hello/actions/runners/downloads")
    # Step 6: the pool.
    await garm.create_pool(repo["id"], tags=["self-hosted", "linux", "x64"])
    await events.wait_for(lambda f: f["entity-type"] == "pool", what="pool/create")

    # Step 7: GitHub queues job 1001.
    await scenario.webhook("queued")
    created = await events.wait_for(lambda f: f["entity-type"] == "job", what="job/create")
    assert created["operation"] == "create"
    assert (created["payload"]["status"], created["payload"]["LockedBy"]) == ("queued", ZERO_UUID)
    assert created["payload"]["repo_id"] == repo["id"]

    # Steps 8-9: the job consumer locks it, asks GitHub for a JIT config and creates the runner; the
    # add-pending loop has the provider create the machine.
    running = await events.wait_for(
        lambda f: f["entity-type"] == "instance" and f["payload"].get("status") == "running", what="running"
    )
    name = running["payload"]["name"]
    assert running["payload"]["provider_id"] == f"prov-{name}"
    assert fake.calls_to("POST", "/api/v3/repos/octo/hello/actions/runners/generate-jitconfig")
    instance_created = events.of("instance", name=name)[0]["payload"]
    assert (instance_created["status"], instance_created["runner_status"]) == ("pending_create", "pending")
    assert instance_created["agent_id"] > 0
    locked = next(f for f in events.of("job") if f["operation"] == "update")["payload"]
    assert locked["LockedBy"] == repo["id"]
    order = _kinds(events.drain())
    assert order.index("job/update") < order.index("instance/create")

    # Step 10: the runner reports in with the instance token it got on stdin.
    create_call = scenario.provider.invocations("CreateInstance")[0]
    bootstrap = json.loads(create_call["stdin"])
    assert bootstrap["jit_config_enabled"] is True and bootstrap["labels"] is None
    async with scenario.runner_client(bootstrap["instance-token"]) as runner:
        answer = await runner.post(
            "/api/v1/callbacks/status", json={"status": "installing", "message": "downloading"}
        )
        assert answer.status_code == 200, answer.text
        answer = await runner.get("/api/v1/metadata/credentials/runner")
        assert answer.status_code == 200, answer.text
        system = {"os_name": "Ubuntu", "os_version": "22.04", "agent_id": None}
        assert (await runner.post("/api/v1/callbacks/system-info", json=system)).status_code == 200
        idle = {"status": "idle", "message": "runner successfully installed"}
        assert (await runner.post("/api/v1/callbacks/status", json=idle)).status_code == 200
        after = await runner.post("/api/v1/callbacks/status", json=idle)
        assert after.status_code == 401
    idle_frame = await events.wait_for(
        lambda f: f["entity-type"] == "instance" and f["payload"].get("runner_status") == "idle", what="idle"
    )
    assert len(idle_frame["payload"]["status_messages"]) == 2

    # Step 11: the runner takes the job.
    await scenario.webhook("in_progress", runner_name=name, runner_id=instance_created["agent_id"])
    await events.wait_for(
        lambda f: f["entity-type"] == "job" and f["payload"]["status"] == "in_progress", what="in_progress"
    )
    # Step 12: the job completes.
    await scenario.webhook(
        "completed", runner_name=name, runner_id=instance_created["agent_id"], conclusion="success"
    )
    # Step 13: the purge (pygarm: job/delete) and the provider delete.
    await events.wait_for(
        lambda f: f["entity-type"] == "instance" and f["operation"] == "delete", what="delete"
    )
    await events.wait_for(
        lambda f: f["entity-type"] == "job" and f["operation"] == "delete", what="job/delete"
    )

    assert events.instance_trail(name) == [
        "create:pending_create",
        "update:creating",
        "update:running",
        "update:running",  # installing (runner_status); status stays running
        "update:running",  # system-info: os_name
        "update:running",  # idle
        "update:running",  # in_progress: active
        "update:running",  # completed: terminated
        "update:pending_delete",
        "update:deleting",
        "delete",
    ]
    runner_statuses = [f["payload"].get("runner_status") for f in events.of("instance", name=name)[:-1]]
    assert runner_statuses == [
        "pending",
        "pending",
        "pending",
        "installing",
        "installing",
        "idle",
        "active",
        "terminated",
        "terminated",
        "terminated",
    ]
    job_frames = events.of("job")
    assert [(f["operation"], f["payload"]["status"]) for f in job_frames] == [
        ("create", "queued"),
        ("update", "queued"),
        ("update", "in_progress"),
        ("update", "completed"),
        ("delete", "completed"),
    ]
    frames = events.drain()
    order = _kinds(frames)
    # GARM's per-webhook order (docs/garm-protocol.md#handling-a-job): instance updates first, then the job's.
    active_at = next(i for i, f in enumerate(frames) if f["payload"].get("runner_status") == "active")
    assert active_at < next(i for i, f in enumerate(frames) if f["payload"].get("status") == "in_progress")
    pending_delete_at = next(
        i for i, f in enumerate(frames) if f["payload"].get("status") == "pending_delete"
    )
    completed_at = next(
        i for i, f in enumerate(frames) if f["entity-type"] == "job" and f["payload"]["status"] == "completed"
    )
    assert pending_delete_at < completed_at < order.index("instance/delete")
    deletes = scenario.provider.invocations("DeleteInstance")
    assert [dict(d["environ"])["GARM_INSTANCE_ID"] for d in deletes] == [f"prov-{name}"]


async def test_min_idle_and_rest_delete(live_scenario: Scenario) -> None:
    """docs/garm-protocol.md#other-scenarios (a): a pool update to ``min_idle_runners: 1`` creates a runner;
    ``DELETE /instances/<name>`` unregisters it from GitHub and the pool manager removes it and creates a new
    one."""
    scenario = live_scenario
    garm, events, fake = scenario.garm, scenario.events, scenario.github.fake
    repo = await garm.create_repo()
    await eventually(lambda: garm.repo_running(repo["id"]), what="running")
    pool = await garm.create_pool(repo["id"])
    await garm.call("PUT", f"/pools/{pool['id']}", {"min_idle_runners": 1})
    running = await events.wait_for(
        lambda f: f["entity-type"] == "instance" and f["payload"].get("status") == "running", what="running"
    )
    name, agent_id = running["payload"]["name"], running["payload"]["agent_id"]
    assert events.instance_trail(name) == ["create:pending_create", "update:creating", "update:running"]
    await garm.call("DELETE", f"/instances/{name}")
    assert fake.calls_to("DELETE", f"/api/v3/repos/octo/hello/actions/runners/{agent_id}")
    await events.wait_for(
        lambda f: f["entity-type"] == "instance" and f["operation"] == "delete", what="delete"
    )
    assert events.instance_trail(name)[3:] == ["update:pending_delete", "update:deleting", "delete"]
    await events.wait_for(
        lambda f: (
            f["entity-type"] == "instance" and f["operation"] == "create" and f["payload"]["name"] != name
        ),
        what="the replacement",
    )
