"""GARM v0.1.5's ``garm_*`` families: names, types, help texts, labels and values
(docs/observability.md#garm-families, ``garm@v0.1.5 metrics/*.go``, ``garm@v0.1.5 runner/metrics/*.go``),
with GARM's three bugs fixed (docs/compatibility.md#metrics)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pygarm.config import Settings
from pygarm.store.instances import CreateInstanceParams
from tests.api.entity_support import (
    ENTERPRISE,
    ORG,
    PROVIDERS,
    REPO,
    create_credentials,
    create_entity,
    create_pool,
    store_of,
)
from tests.api.metrics_support import Family, collect_now, scrape
from tests.conftest import CONTROLLER_URLS, make_settings

# (type, help, label names in declaration order) exactly as garm@v0.1.5 metrics/*.go declares them
GARM_FAMILIES: dict[str, tuple[str, str, list[str]]] = {
    "garm_health": (
        "gauge",
        "Health of the garm",
        ["metadata_url", "callback_url", "webhook_url", "controller_webhook_url", "controller_id"],
    ),
    "garm_provider_info": ("gauge", "Info of the organization", ["name", "type", "description"]),
    "garm_organization_info": ("gauge", "Info of the organization", ["name", "id"]),
    "garm_organization_pool_manager_status": (
        "gauge",
        "Status of the organization pool manager",
        ["name", "id", "running"],
    ),
    "garm_enterprise_info": ("gauge", "Info of the enterprise", ["name", "id"]),
    "garm_enterprise_pool_manager_status": (
        "gauge",
        "Status of the enterprise pool manager",
        ["name", "id", "running"],
    ),
    "garm_repository_info": ("gauge", "Info of the enterprise", ["name", "id"]),
    "garm_repository_pool_manager_status": (
        "gauge",
        "Status of the enterprise pool manager",
        ["name", "id", "running"],
    ),
    "garm_pool_info": (
        "gauge",
        "Info of the pool",
        [
            "id",
            "image",
            "flavor",
            "prefix",
            "os_type",
            "os_arch",
            "tags",
            "provider",
            "pool_owner",
            "pool_type",
        ],
    ),
    "garm_pool_status": ("gauge", "Status of the pool", ["id", "enabled"]),
    "garm_pool_max_runners": ("gauge", "Maximum number of runners in the pool", ["id"]),
    "garm_pool_min_idle_runners": ("gauge", "Minimum number of idle runners in the pool", ["id"]),
    "garm_pool_bootstrap_timeout": ("gauge", "Runner bootstrap timeout in the pool", ["id"]),
    "garm_runner_status": (
        "gauge",
        "Status of the instance",
        ["name", "status", "runner_status", "pool_owner", "pool_type", "pool_id", "provider"],
    ),
}


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(database_section, provider=PROVIDERS, metrics={"enable": True, "period": "1h"})


def assert_declared(family: Family) -> None:
    kind, help_text, labels = GARM_FAMILIES[family.name]
    assert (family.type, family.help) == (kind, help_text), family.name
    for order in family.label_order:
        assert order == sorted(labels), family.name  # the exposition sorts label names, as Go does


async def test_fresh_server_exposes_health_and_providers(app: FastAPI, client: httpx.AsyncClient) -> None:
    families = await scrape(client, app)
    garm = {name: family for name, family in families.items() if name.startswith("garm_")}
    assert list(garm) == ["garm_health", "garm_provider_info"]
    for family in garm.values():
        assert_declared(family)
    controller_id = (await store_of(app).get_controller_info()).controller_id
    assert garm["garm_health"].series() == [
        (
            {
                "callback_url": "",
                "controller_id": controller_id,
                "controller_webhook_url": controller_id,
                "metadata_url": "",
                "webhook_url": "",
            },
            1.0,
        )
    ]
    assert garm["garm_provider_info"].series() == [
        ({"description": "", "name": "fake", "type": "external"}, 1.0),
        ({"description": "local", "name": "lxd_local", "type": "external"}, 1.0),
    ]
    names = list(families)
    assert names == sorted(names)  # families sorted by name, as client_golang does


async def test_entities_pools_and_runners(app: FastAPI, admin_client: httpx.AsyncClient) -> None:
    """Each kind in its own families (GARM puts repositories into ``garm_enterprise_*``), pools with
    GARM's labels, runners naming their provider (GARM leaves it empty), health following the URLs."""
    http = admin_client
    credentials = await create_credentials(http)
    repo = await create_entity(http, REPO, credentials)
    org = await create_entity(http, ORG, credentials)
    ent = await create_entity(http, ENTERPRISE, credentials)
    repo_pool = await create_pool(http, REPO, repo["id"], runner_prefix="rp")
    org_pool = await create_pool(http, ORG, org["id"], provider_name="fake", enabled=False, max_runners=3)
    ent_pool = await create_pool(http, ENTERPRISE, ent["id"], tags=["b", "a"])
    instance = await store_of(app).create_instance(
        repo_pool["id"],
        CreateInstanceParams(name="rp-0001", status="running", runner_status="idle", os_type="linux"),
    )
    await collect_now(app)
    families = await scrape(http, app)
    garm = {name: family for name, family in families.items() if name.startswith("garm_")}
    assert sorted(garm) == sorted(GARM_FAMILIES)
    for family in garm.values():
        assert_declared(family)

    assert garm["garm_repository_info"].series() == [({"id": repo["id"], "name": "hello-world"}, 1.0)]
    assert garm["garm_organization_info"].series() == [({"id": org["id"], "name": "octo-org"}, 1.0)]
    assert garm["garm_enterprise_info"].series() == [({"id": ent["id"], "name": "octo-ent"}, 1.0)]
    assert garm["garm_repository_pool_manager_status"].series() == [
        ({"id": repo["id"], "name": "hello-world", "running": "false"}, 0.0)  # no pool managers here
    ]
    pools = {labels["id"]: labels for labels, _value in garm["garm_pool_info"].series()}
    assert pools[repo_pool["id"]] == {
        "id": repo_pool["id"],
        "image": "ubuntu:22.04",
        "flavor": "default",
        "prefix": "rp",
        "os_type": "linux",
        "os_arch": "amd64",
        "tags": "self-hosted,linux,x64",
        "provider": "lxd_local",
        "pool_owner": "octo-org/hello-world",
        "pool_type": "repository",
    }
    assert (pools[org_pool["id"]]["pool_owner"], pools[org_pool["id"]]["pool_type"]) == (
        "octo-org",
        "organization",
    )
    assert (pools[ent_pool["id"]]["pool_owner"], pools[ent_pool["id"]]["prefix"]) == ("octo-ent", "garm")
    assert pools[ent_pool["id"]]["tags"] == "b,a"  # the pool's tag order
    assert ({"id": org_pool["id"], "enabled": "false"}, 0.0) in garm["garm_pool_status"].series()
    assert ({"id": org_pool["id"]}, 3.0) in garm["garm_pool_max_runners"].series()
    assert ({"id": repo_pool["id"]}, 1.0) in garm["garm_pool_min_idle_runners"].series()
    assert ({"id": repo_pool["id"]}, 20.0) in garm["garm_pool_bootstrap_timeout"].series()
    assert garm["garm_runner_status"].series() == [
        (
            {
                "name": instance.name,
                "status": "running",
                "runner_status": "idle",
                "pool_owner": "octo-org/hello-world",
                "pool_type": "repository",
                "pool_id": repo_pool["id"],
                "provider": "lxd_local",
            },
            1.0,
        )
    ]
    controller = (await http.get("/api/v1/controller")).json()
    assert garm["garm_health"].series() == [
        (
            {
                "callback_url": CONTROLLER_URLS["callback_url"],
                "controller_id": controller["controller_id"],
                "controller_webhook_url": controller["controller_webhook_url"],
                "metadata_url": CONTROLLER_URLS["metadata_url"],
                "webhook_url": CONTROLLER_URLS["webhook_url"],
            },
            1.0,
        )
    ]

    # A deleted object's series goes with the next round; health follows PUT /controller.
    await store_of(app).delete_instance(instance.name)
    assert (await http.delete(f"/api/v1/pools/{org_pool['id']}")).status_code == 200
    response = await http.put("/api/v1/controller", json={"webhook_url": "https://garm.example/hooks"})
    assert response.status_code == 200, response.text
    await collect_now(app)
    garm = await scrape(http, app)
    assert "garm_runner_status" not in garm
    assert org_pool["id"] not in {labels["id"] for labels, _value in garm["garm_pool_info"].series()}
    (health, _one), *_rest = garm["garm_health"].series()
    assert health["webhook_url"] == "https://garm.example/hooks"
    assert health["controller_webhook_url"] == f"https://garm.example/hooks/{controller['controller_id']}"


class TestPeriod:
    @pytest.fixture
    def settings(self, database_section: dict[str, Any]) -> Settings:
        return make_settings(
            database_section, provider=PROVIDERS, metrics={"enable": True, "period": "100ms"}
        )

    async def test_loop_refreshes_within_a_period(
        self, app: FastAPI, admin_client: httpx.AsyncClient
    ) -> None:
        """No explicit collection: the loop picks a change up by itself."""
        credentials = await create_credentials(admin_client)
        repo = await create_entity(admin_client, REPO, credentials)
        pool = await create_pool(admin_client, REPO, repo["id"])
        response = await admin_client.put(f"/api/v1/pools/{pool['id']}", json={"max_runners": 9})
        assert response.status_code == 200
        async with asyncio.timeout(10):
            while True:
                families = await scrape(admin_client, app)
                series = families.get("garm_pool_max_runners")
                if series is not None and ({"id": pool["id"]}, 9.0) in series.series():
                    break
                await asyncio.sleep(0.05)
