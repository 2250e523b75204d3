"""Fixtures for the webhook, callback and metadata tests: the real app on both backends, a fake GitHub on
loopback registered as a GitHub endpoint, a repository with a webhook secret and a pool, and helpers to
sign and send ``workflow_job`` deliveries and to mint instance tokens.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from pygarm.config import Settings
from pygarm.runner.instance_token import InstanceTokenService
from pygarm.store.instances import CreateInstanceParams
from pygarm.store.store import Store
from pygarm.testing.fake_github import DEFAULT_PAT, FakeGithubServer, running_fake_github
from tests.api.entity_support import PROVIDERS, store_of
from tests.conftest import TEST_JWT_SECRET, make_settings

WEBHOOK_SECRET = "s3cret-hook"
OWNER = "octo"
REPO_NAME = "hello"
LABELS = ["self-hosted", "linux"]


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(database_section, provider=PROVIDERS, default={"enable_webhook_management": True})


@pytest.fixture
def fake_github() -> Iterator[FakeGithubServer]:
    with running_fake_github() as server:
        yield server


@dataclass
class World:
    """An initialized app whose repository ``octo/hello`` lives on the fake GitHub endpoint."""

    app: FastAPI
    http: httpx.AsyncClient
    github: FakeGithubServer
    repo_id: str
    pool_id: str
    controller_id: str

    @property
    def store(self) -> Store:
        return store_of(self.app)

    @property
    def base_url(self) -> str:
        return self.github.base_url


async def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def world(app: FastAPI, admin_client: httpx.AsyncClient, fake_github: FakeGithubServer) -> World:
    http = admin_client
    await _ok(
        await http.post(
            "/api/v1/github/endpoints",
            json={
                "name": "fakegh",
                "api_base_url": fake_github.api_base_url,
                "upload_base_url": fake_github.api_base_url,
                "base_url": fake_github.base_url,
            },
        )
    )
    await _ok(
        await http.post(
            "/api/v1/github/credentials",
            json={
                "name": "fakecreds",
                "endpoint": "fakegh",
                "auth_type": "pat",
                "pat": {"oauth2_token": DEFAULT_PAT},
            },
        )
    )
    repo = await _ok(
        await http.post(
            "/api/v1/repositories",
            json={
                "owner": OWNER,
                "name": REPO_NAME,
                "credentials_name": "fakecreds",
                "webhook_secret": WEBHOOK_SECRET,
            },
        )
    )
    pool = await _ok(
        await http.post(
            f"/api/v1/repositories/{repo['id']}/pools",
            json={
                "provider_name": "fake",
                "max_runners": 5,
                "min_idle_runners": 0,
                "image": "ubuntu:22.04",
                "flavor": "small",
                "os_type": "linux",
                "os_arch": "amd64",
                "tags": ["self-hosted", "linux", "x64"],
                "enabled": True,
            },
        )
    )
    controller = await _ok(await http.get("/api/v1/controller"))
    return World(app, http, fake_github, repo["id"], pool["id"], controller["controller_id"])


def job_payload(
    world: World,
    action: str,
    job_id: int,
    *,
    status: str | None = None,
    runner_name: str = "",
    labels: list[str] | None = None,
    **details: Any,
) -> dict[str, Any]:
    """A ``workflow_job`` delivery shaped like GitHub's, for ``octo/hello`` on the fake endpoint."""
    workflow_job: dict[str, Any] = {
        "id": job_id,
        "run_id": 55,
        "html_url": f"{world.base_url}/{OWNER}/{REPO_NAME}/actions/runs/55/job/{job_id}",
        "status": status or action,
        "conclusion": "success" if action == "completed" else None,
        "started_at": "2024-05-01T10:00:00Z",
        "completed_at": "2024-05-01T10:05:00Z" if action == "completed" else None,
        "name": "build",
        "labels": LABELS if labels is None else labels,
        "runner_id": 7 if runner_name else None,
        "runner_name": runner_name or None,
        "runner_group_id": 1 if runner_name else None,
        "runner_group_name": "Default" if runner_name else None,
        **details,
    }
    return {
        "action": action,
        "workflow_job": workflow_job,
        "repository": {
            "id": 1,
            "name": REPO_NAME,
            "full_name": f"{OWNER}/{REPO_NAME}",
            "owner": {"login": OWNER},
        },
        "sender": {"login": "someone"},
    }


def sign(body: bytes, secret: str = WEBHOOK_SECRET, algorithm: str = "sha256") -> str:
    digest = hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).hexdigest()
    return f"{algorithm}={digest}"


async def send(
    http: httpx.AsyncClient,
    payload: dict[str, Any] | bytes,
    *,
    path: str = "/webhooks",
    event: str | None = "workflow_job",
    target: str | None = "repository",
    signature: str | None = None,
    secret: str = WEBHOOK_SECRET,
    method: str = "POST",
) -> httpx.Response:
    """Deliver like GitHub does; ``signature=None`` signs the body with ``secret``, ``""`` sends none."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    headers = {"Content-Type": "application/json"}
    if event is not None:
        headers["X-GitHub-Event"] = event
    if target is not None:
        headers["X-GitHub-Hook-Installation-Target-Type"] = target
    sig = sign(body, secret) if signature is None else signature
    if sig:
        headers["X-Hub-Signature-256"] = sig
    return await http.request(method, path, content=body, headers=headers)


async def make_instance(
    world: World,
    name: str,
    *,
    status: str = "running",
    runner_status: str = "pending",
    labels: tuple[str, ...] = (),
    jit: dict[str, str] | None = None,
    create_attempt: int = 0,
    pool_id: str | None = None,
) -> None:
    """An instance as a pool manager would leave it, written through the store (``instance/create``)."""
    await world.store.create_instance(
        pool_id or world.pool_id,
        CreateInstanceParams(
            name=name,
            os_type="linux",
            os_arch="amd64",
            status=status,
            runner_status=runner_status,
            aditional_labels=labels,
            jit_configuration=jit,
            create_attempt=create_attempt,
        ),
    )


def instance_token(world: World, name: str, *, create_attempt: int = 0, secret: str = TEST_JWT_SECRET) -> str:
    return InstanceTokenService(secret).mint(
        instance_id="ignored",
        instance_name=name,
        pool_id=world.pool_id,
        scope="repository",
        entity=f"{OWNER}/{REPO_NAME}",
        create_attempt=create_attempt,
        bootstrap_timeout_minutes=20,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
