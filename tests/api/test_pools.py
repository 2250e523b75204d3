"""Pools through the REST API (docs/garm-protocol.md#entity-shapes, docs/garm-protocol.md#rest-routes,
docs/garm-protocol.md#error-mapping), for every entity kind and on both backends. Tags are compared as sets
(docs/garm-protocol.md#pool).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pygarm.config import Settings
from pygarm.store.instances import CreateInstanceParams
from tests.api.entity_support import (
    ALL_KINDS,
    KIND_IDS,
    ORG,
    POOL_BODY,
    POOL_KEYS,
    PROVIDERS,
    REPO,
    ChangeLog,
    Kind,
    assert_event_is_get,
    create_credentials,
    create_entity,
    create_pool,
    store_of,
)
from tests.conftest import make_settings

kinds = pytest.mark.parametrize("kind", ALL_KINDS, ids=KIND_IDS)


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(database_section, provider=PROVIDERS)


@pytest.fixture
async def creds(admin_client: httpx.AsyncClient) -> str:
    return await create_credentials(admin_client)


def tag_names(pool: dict[str, Any]) -> set[str]:
    return {tag["name"] for tag in pool["tags"]}


def pool_keys(kind: Kind) -> list[str]:
    return [key.replace("<entity>", kind.pool_prefix) for key in POOL_KEYS]


@kinds
async def test_create_shape_defaults_and_event(
    app: FastAPI, admin_client: httpx.AsyncClient, creds: str, kind: Kind
) -> None:
    """docs/garm-protocol.md#pool key order; ``runner_prefix`` defaults to ``garm`` and the stored bootstrap
    timeout is 20 for every kind (docs/garm-protocol.md#pool); one ``pool/create`` whose payload is
    ``GET /pools/{id}`` and the entity route."""
    entity = await create_entity(admin_client, kind, creds)
    log = ChangeLog(app)
    await log.mark()
    response = await admin_client.post(
        f"/api/v1/{kind.collection}/{entity['id']}/pools", json={**POOL_BODY, "extra_specs": {"disk": 20}}
    )
    assert response.status_code == 200, response.text
    pool = response.json()
    assert list(pool) == pool_keys(kind)
    assert pool["runner_prefix"] == "garm" and pool["runner_bootstrap_timeout"] == 20
    assert pool["instances"] == [] and pool["extra_specs"] == {"disk": 20}
    assert tag_names(pool) == {"self-hosted", "linux", "x64"}
    assert pool[f"{kind.pool_prefix}_id"] == entity["id"]
    display = f"{entity['owner']}/{entity['name']}" if "owner" in entity else entity["name"]
    assert pool[f"{kind.pool_prefix}_name"] == display
    payload = await assert_event_is_get(log, admin_client, "pool", "create", f"/api/v1/pools/{pool['id']}")
    assert payload == response.content[:-1]
    entity_route = await admin_client.get(f"/api/v1/{kind.collection}/{entity['id']}/pools/{pool['id']}")
    assert entity_route.content == response.content


async def test_create_keeps_given_values(admin_client: httpx.AsyncClient, creds: str) -> None:
    """docs/garm-protocol.md#request-bodies: every CreatePoolParams field lands in the pool."""
    entity = await create_entity(admin_client, ORG, creds)
    pool = await create_pool(
        admin_client,
        ORG,
        entity["id"],
        runner_prefix="ci",
        runner_bootstrap_timeout=7,
        priority=3,
        **{"github-runner-group": "grp", "os_type": "windows", "os_arch": "arm64", "enabled": False},
    )
    assert (pool["runner_prefix"], pool["runner_bootstrap_timeout"], pool["priority"]) == ("ci", 7, 3)
    assert (pool["github-runner-group"], pool["os_type"], pool["os_arch"]) == ("grp", "windows", "arm64")
    assert pool["enabled"] is False and "extra_specs" not in pool


@pytest.mark.parametrize(
    ("changes", "details"),
    [
        ({"provider_name": ""}, "missing provider"),
        ({"min_idle_runners": 6}, "min_idle_runners cannot be larger than max_runners"),
        ({"max_runners": 0, "min_idle_runners": 0}, "max_runners cannot be 0"),
        ({"tags": []}, "missing tags"),
        ({"flavor": ""}, "missing flavor"),
        ({"image": ""}, "missing image"),
        ({"os_type": "macos"}, "invalid OS type macos"),
        ({"os_arch": "i386"}, "invalid OS architecture i386"),
        ({"provider_name": "openstack"}, "no such provider openstack"),
        ({"max_runners": -1}, "invalid request"),
        ({"max_runners": 2.5}, "invalid request"),
        ({"tags": "linux"}, "invalid request"),
        ({"enabled": "yes"}, "invalid request"),
        ({"max_runners": 2**31}, "invalid request"),
        ({"tags": ["linux", "x" * 65]}, "tag is too long (at most 64 characters)"),
        ({"runner_prefix": "p" * 65}, "runner_prefix is too long (at most 64 characters)"),
    ],
)
@kinds
async def test_create_validation(
    app: FastAPI,
    admin_client: httpx.AsyncClient,
    creds: str,
    kind: Kind,
    changes: dict[str, Any],
    details: str,
) -> None:
    """docs/garm-protocol.md#route-rules, docs/garm-protocol.md#request-bodies messages, all 400 (GARM answers
    500 for several: documented deviation, docs/garm-protocol.md#error-mapping); values the columns cannot
    hold are refused alike on both backends."""
    entity = await create_entity(admin_client, kind, creds)
    log = ChangeLog(app)
    await log.mark()
    response = await admin_client.post(
        f"/api/v1/{kind.collection}/{entity['id']}/pools", json={**POOL_BODY, **changes}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "details": details}
    assert await log.new() == []


@kinds
async def test_unknown_entity(admin_client: httpx.AsyncClient, kind: Kind) -> None:
    """Unknown entity → 404, malformed ID → 400 (GARM: 500 on the repo/enterprise create route)."""
    base = f"/api/v1/{kind.collection}"
    unknown = "00000000-0000-0000-0000-00000000000a"
    assert (await admin_client.post(f"{base}/{unknown}/pools", json=POOL_BODY)).status_code == 404
    assert (await admin_client.post(f"{base}/bogus/pools", json=POOL_BODY)).status_code == 400
    response = await admin_client.get(f"{base}/{unknown}/pools")
    assert response.status_code == 404 and response.json() == {"error": "Not Found", "details": "not found"}


@kinds
async def test_lists(admin_client: httpx.AsyncClient, creds: str, kind: Kind) -> None:
    """docs/garm-protocol.md#rest-routes: pool lists are ``[]`` when empty; docs/garm-protocol.md#pool: lists
    omit ``extra_specs`` and show no instances."""
    assert (await admin_client.get("/api/v1/pools")).content == b"[]\n"
    entity = await create_entity(admin_client, kind, creds)
    path = f"/api/v1/{kind.collection}/{entity['id']}/pools"
    assert (await admin_client.get(path)).content == b"[]\n"
    created = [await create_pool(admin_client, kind, entity["id"], extra_specs={"n": n}) for n in range(2)]
    for listed in ((await admin_client.get(path)).json(), (await admin_client.get("/api/v1/pools/")).json()):
        assert [pool["id"] for pool in listed] == [pool["id"] for pool in created]
        assert all("extra_specs" not in pool and pool["instances"] == [] for pool in listed)
        assert [list(pool) for pool in listed] == [[k for k in pool_keys(kind) if k != "extra_specs"]] * 2


@kinds
async def test_entity_scoping(admin_client: httpx.AsyncClient, creds: str, kind: Kind) -> None:
    """A pool is reachable only under its own entity; unknown pool under an entity → 404 (GARM: 500)."""
    first = await create_entity(admin_client, kind, creds)
    second = await create_entity(admin_client, kind, creds, name="second")
    pool = await create_pool(admin_client, kind, first["id"])
    wrong = f"/api/v1/{kind.collection}/{second['id']}/pools/{pool['id']}"
    assert (await admin_client.get(wrong)).status_code == 404
    assert (await admin_client.put(wrong, json={"max_runners": 9})).status_code == 404
    assert (await admin_client.delete(wrong)).status_code == 404
    response = await admin_client.get(f"/api/v1/{kind.collection}/{first['id']}/pools/not-a-uuid")
    assert response.status_code == 400 and response.json()["details"] == "invalid request"
    assert (await admin_client.get(f"/api/v1/pools/{pool['id']}")).json()["max_runners"] == 5


@kinds
async def test_update_pointer_semantics(
    app: FastAPI, admin_client: httpx.AsyncClient, creds: str, kind: Kind
) -> None:
    """docs/garm-protocol.md#request-bodies UpdatePoolParams: absent = unchanged, explicit zero/false applied,
    tags replace the set only when non-empty; both routes emit one ``pool/update`` == GET."""
    entity = await create_entity(admin_client, kind, creds)
    pool = await create_pool(admin_client, kind, entity["id"], priority=4, extra_specs={"a": 1})
    path = f"/api/v1/pools/{pool['id']}"
    entity_path = f"/api/v1/{kind.collection}/{entity['id']}/pools/{pool['id']}"
    log = ChangeLog(app)
    await log.mark()
    response = await admin_client.put(path, json={"enabled": False, "priority": 0, "tags": ["gpu", "Linux"]})
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["enabled"] is False and updated["priority"] == 0
    assert tag_names(updated) == {"gpu", "linux"}  # "Linux" reuses the existing tag "linux"
    assert (updated["max_runners"], updated["image"], updated["extra_specs"]) == (5, "ubuntu:22.04", {"a": 1})
    await assert_event_is_get(log, admin_client, "pool", "update", path)
    response = await admin_client.put(
        entity_path,
        json={"tags": [], "image": "", "max_runners": 8, "runner_prefix": "ci", "extra_specs": {"b": 2},
              "github-runner-group": "g", "runner_bootstrap_timeout": 0, "os_type": "windows"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    updated = response.json()
    assert tag_names(updated) == {"gpu", "linux"} and updated["image"] == "ubuntu:22.04"
    assert (updated["max_runners"], updated["runner_prefix"], updated["extra_specs"]) == (8, "ci", {"b": 2})
    assert (updated["github-runner-group"], updated["runner_bootstrap_timeout"]) == ("g", 20)
    assert updated["os_type"] == "windows"
    await assert_event_is_get(log, admin_client, "pool", "update", entity_path)


@kinds
async def test_update_errors(app: FastAPI, admin_client: httpx.AsyncClient, creds: str, kind: Kind) -> None:
    """docs/garm-protocol.md#route-rules: min > max (effective values) → 400; ``PUT /pools/{id}`` with
    bootstrap 0 → 400 (only that route); unknown pool → 404; failures emit nothing."""
    entity = await create_entity(admin_client, kind, creds)
    pool = await create_pool(admin_client, kind, entity["id"])
    path = f"/api/v1/pools/{pool['id']}"
    entity_path = f"/api/v1/{kind.collection}/{entity['id']}/pools/{pool['id']}"
    log = ChangeLog(app)
    await log.mark()
    cases = [
        (path, {"max_runners": 0}, 400, "min_idle_runners cannot be larger than max_runners"),
        (entity_path, {"min_idle_runners": 6}, 400, "min_idle_runners cannot be larger than max_runners"),
        (path, {"runner_bootstrap_timeout": 0}, 400, "runner_bootstrap_timeout cannot be 0"),
        (path, {"os_arch": "sparc"}, 400, "invalid OS architecture sparc"),
        (path, {"max_runners": "3"}, 400, "invalid request"),
        (
            "/api/v1/pools/00000000-0000-0000-0000-00000000000b",
            {"runner_bootstrap_timeout": 0},
            404,
            "not found",
        ),
        ("/api/v1/pools/x", {}, 400, "invalid request"),
    ]
    for target, body, status, details in cases:
        response = await admin_client.put(target, json=body)
        assert (response.status_code, response.json()["details"]) == (status, details), body
    assert await log.new() == []
    response = await admin_client.put(path, json={"min_idle_runners": 0, "max_runners": 0})
    assert response.status_code == 200 and response.json()["max_runners"] == 0


async def test_update_unknown_key_is_ignored_null_is_unchanged(
    admin_client: httpx.AsyncClient, creds: str
) -> None:
    """docs/garm-protocol.md#json-encoding: unknown keys are ignored and ``null`` pointers mean
    "unchanged"."""
    entity = await create_entity(admin_client, REPO, creds)
    pool = await create_pool(admin_client, REPO, entity["id"])
    response = await admin_client.put(
        f"/api/v1/pools/{pool['id']}", json={"max_runners": None, "ENABLED": False, "whatever": [1]}
    )
    assert response.status_code == 200
    assert response.json()["max_runners"] == 5 and response.json()["enabled"] is False


@kinds
async def test_delete(app: FastAPI, admin_client: httpx.AsyncClient, creds: str, kind: Kind) -> None:
    """docs/garm-protocol.md#route-rules: runners block deletion (``pool has runners`` /
    ``pool has runners: <ids>``); a delete is 200 empty with one ``pool/delete`` carrying the last state (a
    superset of GARM's ID-only payload, docs/garm-protocol.md#delete-payloads); ``DELETE /pools/{id}`` of an
    unknown pool is 200 and emits nothing."""
    entity = await create_entity(admin_client, kind, creds)
    pool = await create_pool(admin_client, kind, entity["id"])
    path = f"/api/v1/pools/{pool['id']}"
    entity_path = f"/api/v1/{kind.collection}/{entity['id']}/pools/{pool['id']}"
    store = store_of(app)
    instance = await store.create_instance(
        pool["id"], CreateInstanceParams(name="garm-abc", status="running")
    )
    response = await admin_client.delete(path)
    assert response.status_code == 400 and response.json()["details"] == "pool has runners"
    response = await admin_client.delete(entity_path)
    assert response.status_code == 400 and response.json()["details"] == f"pool has runners: {instance.id}"
    await store.delete_instance(instance.name)
    last = await admin_client.get(path)
    log = ChangeLog(app)
    await log.mark()
    target = entity_path if kind is ORG else path
    response = await admin_client.delete(target)
    assert response.status_code == 200 and response.content == b""
    change = await log.single("pool", "delete")
    assert change.payload == last.content[:-1]
    assert (await admin_client.get(path)).status_code == 404
    response = await admin_client.delete(path)
    assert response.status_code == 200 and response.content == b""
    assert await log.new() == []
    assert (await admin_client.delete(entity_path)).status_code == 404


async def test_tags_shared_between_pools(admin_client: httpx.AsyncClient, creds: str) -> None:
    """docs/garm-protocol.md#tag: tags are rows of their own, matched case-insensitively; a repeated tag is
    linked once."""
    entity = await create_entity(admin_client, REPO, creds)
    first = await create_pool(admin_client, REPO, entity["id"], tags=["Linux", "gpu", "GPU"])
    second = await create_pool(admin_client, REPO, entity["id"], tags=["linux"])
    assert tag_names(first) == {"Linux", "gpu"}
    assert second["tags"] == [tag for tag in first["tags"] if tag["name"] == "Linux"]


@kinds
async def test_find_pools_matching_all_tags(
    app: FastAPI, admin_client: httpx.AsyncClient, creds: str, kind: Kind
) -> None:
    """docs/garm-protocol.md#job-queue: enabled pools whose tags cover the labels, highest priority first."""
    entity = await create_entity(admin_client, kind, creds)
    low = await create_pool(admin_client, kind, entity["id"], tags=["linux", "x64"], priority=1)
    high = await create_pool(admin_client, kind, entity["id"], tags=["linux", "x64", "gpu"], priority=9)
    await create_pool(admin_client, kind, entity["id"], tags=["linux", "x64"], enabled=False)
    store = store_of(app)
    found = await store.find_pools_matching_all_tags(kind.enum, entity["id"], ["X64", "linux"])
    assert [pool.id for pool in found] == [high["id"], low["id"]]
    assert [p.id for p in await store.find_pools_matching_all_tags(kind.enum, entity["id"], ["gpu"])] == [
        high["id"]
    ]
    assert await store.find_pools_matching_all_tags(kind.enum, entity["id"], []) == []
