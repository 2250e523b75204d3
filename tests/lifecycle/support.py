"""Helpers for the lifecycle tests: the test provider's config and records, the GARM setup steps of
docs/garm-protocol.md#end-to-end over REST, an in-process event recorder, and polling with a deadline.

The test provider re-reads its config file on every run, so tests change its knobs (``fail_create``,
``hang``…) while the server runs by rewriting the file with :meth:`ProviderFiles.set_knobs`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import orjson
import pytest
from websockets.asyncio.client import ClientConnection

import pygarm.testing.test_provider
from pygarm.events.filters import EVERYTHING
from pygarm.events.hub import Hub, Subscription
from pygarm.params.models import Job
from pygarm.runner.pool import PoolManagerRegistry
from pygarm.store.store import Store

TEST_PROVIDER = Path(pygarm.testing.test_provider.__file__)
PAT = "ghp_fake"
WEBHOOK_SECRET = "s3cret"

FAST_POOL_MANAGER = {
    "enabled": True,
    "consolidate_interval": "150ms",
    "scale_down_interval": "300ms",
    "reaper_interval": "1h",
    "tools_interval": "1h",
    "backoff_interval": "200ms",
    "idle_runner_age": "500ms",
    "stale_job_age": "1h",
    "job_lock_timeout": "1h",
    "orphan_runner_age": "1h",
    "provider_timeout": "20s",
}
"""Loops every 150 ms instead of 5 s; the reaper and tools refresh out of the way; idle age 0.5 s."""

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 15.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``probe`` until it returns something other than ``None``/``False``; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}")
        await asyncio.sleep(interval)


@dataclass
class ProviderFiles:
    """The test provider's config file and state directory."""

    config_file: Path
    state_dir: Path

    @classmethod
    def create(cls, root: Path) -> ProviderFiles:
        files = cls(config_file=root / "provider.json", state_dir=root / "provider-state")
        files.state_dir.mkdir(parents=True)
        files.set_knobs()
        return files

    def set_knobs(self, **knobs: str) -> None:
        self.config_file.write_text(json.dumps({"state_dir": str(self.state_dir), **knobs}))

    def provider_section(self, **extra: Any) -> dict[str, Any]:
        return {
            "name": "fake",
            "provider_type": "external",
            "description": "test provider",
            "external": {
                "provider_executable": str(TEST_PROVIDER),
                "config_file": str(self.config_file),
                "environment_variables": ["TEST_PROVIDER_"],
            },
            **extra,
        }

    def invocations(self, command: str | None = None) -> list[dict[str, Any]]:
        """Every recorded run, oldest first: ``command``, ``environ`` (ordered pairs), ``stdin``."""
        directory = self.state_dir / "invocations"
        if not directory.exists():
            return []
        records = [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]
        return [r for r in records if command is None or r["command"] == command]


def token_claims(bootstrap_stdin: str) -> dict[str, Any]:
    """The instance JWT's claims from a ``CreateInstance`` stdin, unverified (the server checks it)."""
    token = json.loads(bootstrap_stdin)["instance-token"]
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def fault_text(instance: dict[str, Any]) -> str:
    return base64.b64decode(instance.get("provider_fault") or "").decode()


class FrameLog:
    """Decoded event frames in arrival order, with the queries the lifecycle tests ask of them."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        return self.frames

    def of(self, entity_type: str, *, name: str | None = None) -> list[dict[str, Any]]:
        frames = [f for f in self.drain() if f["entity-type"] == entity_type]
        if name is not None:
            frames = [f for f in frames if f["payload"].get("name") == name]
        return frames

    def instance_trail(self, name: str) -> list[str]:
        """``create:pending_create``, ``update:creating``, …, ``delete``: one instance's history."""
        trail = []
        for frame in self.of("instance", name=name):
            operation = frame["operation"]
            trail.append(
                operation if operation == "delete" else f"{operation}:{frame['payload'].get('status')}"
            )
        return trail

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = 15.0, what: str = ""
    ) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            return next((f for f in self.drain() if predicate(f)), None)

        return await eventually(probe, timeout=timeout, what=what)


class EventRecorder(FrameLog):
    """Every change the hub dispatches from now on (an in-process subscriber)."""

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.subscription: Subscription = hub.subscribe("lifecycle-test", queue_limit=100_000)
        self.subscription.set_filter(EVERYTHING)

    def drain(self) -> list[dict[str, Any]]:
        while (delivery := self.subscription.pop()) is not None:
            self.frames.append(orjson.loads(delivery.text))
        return self.frames


class WebsocketEvents(FrameLog):
    """Frames read from ``/api/v1/ws/events`` by a background task, as a GARM client receives them."""

    def __init__(self, ws: ClientConnection) -> None:
        super().__init__()
        self._task = asyncio.get_running_loop().create_task(self._read(ws))

    async def _read(self, ws: ClientConnection) -> None:
        async for message in ws:
            self.frames.append(json.loads(message))

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.wait([self._task])


class Garm:
    """The docs/garm-protocol.md#end-to-end setup steps over REST, against the fake GitHub."""

    def __init__(self, http: httpx.AsyncClient, github_base_url: str) -> None:
        self.http = http
        self.github_base_url = github_base_url

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        response = await self.http.request(method, "/api/v1" + path, json=body)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    async def github_setup(self) -> None:
        """docs/garm-protocol.md#end-to-end steps 2-4: no job-age backoff, the fake GitHub endpoint and PAT
        credentials."""
        await self.call("PUT", "/controller", {"minimum_job_age_backoff": 0})
        base = self.github_base_url
        await self.call(
            "POST",
            "/github/endpoints",
            {"name": "fakegh", "api_base_url": base + "/", "upload_base_url": base + "/", "base_url": base},
        )
        await self.call(
            "POST",
            "/github/credentials",
            {"name": "fakecreds", "endpoint": "fakegh", "auth_type": "pat", "pat": {"oauth2_token": PAT}},
        )

    async def create_repo(self, owner: str = "octo", name: str = "hello", **extra: Any) -> dict[str, Any]:
        body = {
            "owner": owner,
            "name": name,
            "credentials_name": "fakecreds",
            "webhook_secret": WEBHOOK_SECRET,
        }
        repo: dict[str, Any] = await self.call("POST", "/repositories", {**body, **extra})
        return repo

    async def create_pool(self, repo_id: str, **overrides: Any) -> dict[str, Any]:
        body = {
            "provider_name": "fake",
            "max_runners": 2,
            "min_idle_runners": 0,
            "image": "ubuntu:22.04",
            "flavor": "small",
            "os_type": "linux",
            "os_arch": "amd64",
            "tags": ["self-hosted", "linux", "x64"],
            "enabled": True,
            **overrides,
        }
        pool: dict[str, Any] = await self.call("POST", f"/repositories/{repo_id}/pools", body)
        return pool

    async def repo_running(self, repo_id: str) -> dict[str, Any] | None:
        repo: dict[str, Any] = await self.call("GET", f"/repositories/{repo_id}")
        return repo if repo["pool_manager_status"]["running"] else None

    async def instances(self, pool_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self.call("GET", f"/pools/{pool_id}/instances")
        return found

    async def instance(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.call("GET", f"/instances/{name}")
        return found


def workflow_job(
    action: str,
    job_id: int,
    github_base_url: str,
    *,
    labels: list[str] | None = None,
    runner_name: str = "",
    runner_id: int = 0,
    conclusion: str = "",
) -> dict[str, Any]:
    """A GitHub ``workflow_job`` webhook body for ``octo/hello``
    (docs/garm-protocol.md#workflow-job-payload)."""
    return {
        "action": action,
        "workflow_job": {
            "id": job_id,
            "run_id": 55,
            "status": action,
            "conclusion": conclusion or None,
            "name": "build",
            "labels": labels or ["self-hosted", "linux"],
            "html_url": f"{github_base_url}/octo/hello/actions/runs/55/job/{job_id}",
            "runner_id": runner_id or None,
            "runner_name": runner_name or None,
            "runner_group_id": 1 if runner_name else None,
            "runner_group_name": "Default" if runner_name else None,
            "started_at": "2024-07-01T10:00:00Z",
            "completed_at": "2024-07-01T10:05:00Z" if action == "completed" else None,
        },
        "repository": {"name": "hello", "full_name": "octo/hello", "owner": {"login": "octo"}},
        "sender": {"login": "octo"},
    }


async def post_webhook(
    http: httpx.AsyncClient, controller_id: str, body: dict[str, Any], secret: str = WEBHOOK_SECRET
) -> httpx.Response:
    """Deliver a signed ``workflow_job`` to ``/webhooks/<controller_id>`` as GitHub does."""
    raw = json.dumps(body).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "workflow_job",
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-Hub-Signature-256": signature,
    }
    return await http.post(f"/webhooks/{controller_id}", content=raw, headers=headers)


# --- shared steps of the pool-manager tests -------------------------------------------------------


def store_of(registry: PoolManagerRegistry) -> Store:
    manager = next(iter(registry), None)
    assert manager is not None
    return manager.core.store


async def setup_running_repo(garm: Garm) -> dict[str, Any]:
    await garm.github_setup()
    repo = await garm.create_repo()
    await eventually(lambda: garm.repo_running(repo["id"]), what="the pool manager to run")
    return repo


async def queue_job(store: Store, repo_id: str, job_id: int, labels: list[str], **fields: Any) -> Job:
    job = Job(
        id=job_id,
        run_id=55,
        action=fields.pop("action", "queued"),
        status=fields.pop("status", "queued"),
        name="build",
        labels=labels,
        repository_name="hello",
        repository_owner="octo",
        repo_id=repo_id,
        **fields,
    )
    return await store.create_or_update_job(job)


async def only_instance(garm: Garm, pool_id: str, status: str | None = None) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        found = await garm.instances(pool_id)
        if len(found) == 1 and (status is None or found[0]["status"] == status):
            return found[0]
        return None

    return await eventually(probe, what=f"one instance in {status or 'any'} status")


class PassCounter:
    """Counts the passes of one pool-manager loop function: a test that must see that "nothing more
    happens" waits for a few more passes instead of a fixed time. Install it before the manager starts
    (the manager takes its loop functions when it starts)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
        self.passes = 0
        original = getattr(module, name)

        async def counted(core: Any) -> None:
            try:
                await original(core)
            finally:
                self.passes += 1

        monkeypatch.setattr(module, name, counted)

    async def more(self, count: int = 3, timeout: float = 15.0) -> None:
        """Wait until ``count`` more passes have finished."""
        target = self.passes + count
        await eventually(self._reached(target), timeout=timeout, what=f"{count} more loop passes")

    def _reached(self, target: int) -> Callable[[], Awaitable[bool]]:
        async def probe() -> bool:
            return self.passes >= target

        return probe
