"""One delivery and one runner callback over real sockets (uvicorn as ``pygarm serve`` runs it), so that
the empty 200s, raw bodies and headers are what a real GitHub and a real runner see."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from pygarm.runner.instance_token import InstanceTokenService
from pygarm.store.instances import CreateInstanceParams
from pygarm.testing.fake_github import DEFAULT_PAT, FakeGithubServer
from tests.conftest import TEST_JWT_SECRET
from tests.webhooks.conftest import WEBHOOK_SECRET, sign


async def test_delivery_and_callback_over_http(
    live_admin: tuple[Any, str], fake_github: FakeGithubServer
) -> None:
    live, token = live_admin
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as http:
        auth = {"Authorization": f"Bearer {token}"}
        endpoint = {
            "name": "fakegh",
            "api_base_url": fake_github.api_base_url,
            "upload_base_url": fake_github.api_base_url,
            "base_url": fake_github.base_url,
        }
        assert (await http.post("/api/v1/github/endpoints", json=endpoint, headers=auth)).status_code == 200
        creds = {"name": "c", "endpoint": "fakegh", "auth_type": "pat", "pat": {"oauth2_token": DEFAULT_PAT}}
        assert (await http.post("/api/v1/github/credentials", json=creds, headers=auth)).status_code == 200
        repo_body = {
            "owner": "octo",
            "name": "hello",
            "credentials_name": "c",
            "webhook_secret": WEBHOOK_SECRET,
        }
        repo = (await http.post("/api/v1/repositories", json=repo_body, headers=auth)).json()

        ping = await http.post("/webhooks/", content=b"{}", headers={"X-GitHub-Event": "ping"})
        assert (ping.status_code, ping.content) == (200, b"")

        body = orjson.dumps(
            {
                "action": "queued",
                "workflow_job": {
                    "id": 77,
                    "html_url": f"{fake_github.base_url}/octo/hello/actions/runs/1/job/77",
                },
                "repository": {"name": "hello", "owner": {"login": "octo"}},
            }
        )
        headers = {
            "X-GitHub-Event": "workflow_job",
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-Hub-Signature-256": sign(body),
        }
        delivered = await http.post("/webhooks", content=body, headers=headers)
        assert (delivered.status_code, delivered.content) == (200, b"")
        bad = await http.post(
            "/webhooks", content=body, headers={**headers, "X-Hub-Signature-256": "sha256=00"}
        )
        assert (bad.status_code, bad.json()) == (401, {"error": "Not Authorized", "details": ""})

        pool_body = {
            "provider_name": "fake",
            "max_runners": 1,
            "min_idle_runners": 0,
            "image": "i",
            "flavor": "f",
            "os_type": "linux",
            "os_arch": "amd64",
            "tags": ["linux"],
            "enabled": False,
        }
        pool = await http.post(f"/api/v1/repositories/{repo['id']}/pools", json=pool_body, headers=auth)
        assert pool.status_code == 200, pool.text
        late = await http.post("/webhooks", content=body, headers=headers)  # now a pool matches… but
        assert late.status_code == 200  # the pool is disabled, so the job is still not recorded
        assert (await http.get("/api/v1/jobs", headers=auth)).json() == []
        # The store's writer thread serves any event loop, so the test writes the runner directly.
        store = live.app.state.ctx.store
        params = CreateInstanceParams(name="garm-live1", status="running", runner_status="pending")
        await store.create_instance(pool.json()["id"], params)
        instance_token = InstanceTokenService(TEST_JWT_SECRET).mint(
            instance_id="",
            instance_name="garm-live1",
            pool_id=pool.json()["id"],
            scope="repository",
            entity="octo/hello",
            create_attempt=0,
            bootstrap_timeout_minutes=0,
        )
        status = await http.post(
            "/api/v1/callbacks/status",
            json={"status": "installing", "message": "hi"},
            headers={"Authorization": f"Bearer {instance_token}"},
        )
        assert (status.status_code, status.content) == (200, b"")
        instance = (await http.get("/api/v1/instances/garm-live1", headers=auth)).json()
        assert instance["runner_status"] == "installing"
