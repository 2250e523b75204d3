"""Repositories, organizations and enterprises through the REST API (docs/garm-protocol.md#entity-shapes,
docs/garm-protocol.md#route-rules, docs/garm-protocol.md#which-operations-emit-events).

Every test that does not depend on the kind runs for all three kinds (one code path,
docs/design.md#one-code-path-for-three-entity-kinds), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from pygarm.config import Settings
from pygarm.params.models import PoolManagerStatus
from pygarm.store.tables import enterprises, organizations, repositories
from tests.api.entity_support import (
    ALL_KINDS,
    ENTERPRISE,
    KIND_IDS,
    ORG,
    PROVIDERS,
    REPO,
    ChangeLog,
    Kind,
    assert_event_is_get,
    create_credentials,
    create_endpoint,
    create_entity,
    create_pool,
    install_pool_managers,
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


@kinds
async def test_create_shape_and_event(
    app: FastAPI, admin_client: httpx.AsyncClient, creds: str, kind: Kind
) -> None:
    """docs/garm-protocol.md#repository, docs/garm-protocol.md#organization-and-enterprise key order;
    docs/garm-protocol.md#which-operations-emit-events: one ``<kind>/create`` whose payload is the GET body;
    no secret (docs/garm-protocol.md#secrets)."""
    log = ChangeLog(app)
    await log.mark()
    response = await admin_client.post(f"/api/v1/{kind.collection}", json=kind.create_body(creds))
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == kind.keys
    assert body["pool_balancing_type"] == "roundrobin"
    assert body["pool_manager_status"] == {"running": False}
    assert body["credentials_name"] == creds and body["credentials"]["name"] == creds
    assert body["credentials_id"] == body["credentials"]["id"]
    assert body["credentials"]["endpoint"]["name"] == "github.com"
    assert body["credentials"]["api_base_url"] == "https://api.github.com/"
    assert body["endpoint"]["name"] == "github.com"
    payload = await assert_event_is_get(
        log, admin_client, kind.entity_type, "create", f"/api/v1/{kind.collection}/{body['id']}"
    )
    assert payload == response.content[:-1]
    assert b"hook-secret-1" not in payload and b"webhook_secret" not in payload


@kinds
async def test_list_is_null_when_empty(admin_client: httpx.AsyncClient, creds: str, kind: Kind) -> None:
    """docs/garm-protocol.md#empty-bodies-and-null-lists: an empty entity list is ``null``; a listed entity
    has no ``pool`` key."""
    response = await admin_client.get(f"/api/v1/{kind.collection}")
    assert response.status_code == 200 and response.content == b"null\n"
    created = await create_entity(admin_client, kind, creds)
    response = await admin_client.get(f"/api/v1/{kind.collection}/")
    assert [list(item) for item in response.json()] == [kind.keys]
    assert response.json()[0]["id"] == created["id"]


@pytest.mark.parametrize(
    ("kind", "drop", "details"),
    [
        (REPO, "owner", "missing owner"),
        (REPO, "name", "missing repo name"),
        (ORG, "name", "missing org name"),
        (ENTERPRISE, "name", "missing enterprise name"),
        (REPO, "credentials_name", "missing credentials name"),
        (ORG, "webhook_secret", "missing secret"),
    ],
    ids=["owner", "repo-name", "org-name", "enterprise-name", "credentials", "secret"],
)
async def test_create_validation(
    admin_client: httpx.AsyncClient, creds: str, kind: Kind, drop: str, details: str
) -> None:
    """docs/garm-protocol.md#request-bodies messages; ``missing secret`` is 400 here (GARM: 500, a documented
    deviation)."""
    body = kind.create_body(creds)
    del body[drop]
    response = await admin_client.post(f"/api/v1/{kind.collection}", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "details": details}


@kinds
async def test_create_rejects_bad_input(admin_client: httpx.AsyncClient, creds: str, kind: Kind) -> None:
    """docs/garm-protocol.md#request-bodies balancer check, docs/garm-protocol.md#route-rules unknown
    credentials, docs/garm-protocol.md#json-encoding decoding errors; nothing is created."""
    cases = [
        (kind.create_body(creds, pool_balancer_type="random"), "invalid pool balancer type"),
        (kind.create_body("nope"), "credentials nope not defined"),
        ({**kind.create_body(creds), "name": 7}, "invalid request"),
        ({**kind.create_body(creds), "name": "n" * 256}, "name is too long (at most 255 characters)"),
    ]
    for body, details in cases:
        response = await admin_client.post(f"/api/v1/{kind.collection}", json=body)
        assert response.status_code == 400, body
        assert response.json() == {"error": "Bad Request", "details": details}
    response = await admin_client.post(f"/api/v1/{kind.collection}", content=b"{broken")
    assert response.json() == {"error": "Bad Request", "details": "invalid request"}
    assert (await admin_client.get(f"/api/v1/{kind.collection}")).content == b"null\n"


async def test_create_decodes_like_go(admin_client: httpx.AsyncClient, creds: str) -> None:
    """docs/garm-protocol.md#json-encoding: keys match case-insensitively, unknown keys are ignored, ``null``
    leaves a field unset."""
    response = await admin_client.post(
        "/api/v1/organizations",
        json={"NAME": "Case-Org", "Credentials_Name": creds, "webhook_secret": "s", "extra": 1,
              "pool_balancer_type": None},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Case-Org" and response.json()["pool_balancing_type"] == "roundrobin"


@kinds
async def test_duplicates_are_per_endpoint_and_case_insensitive(
    admin_client: httpx.AsyncClient, creds: str, kind: Kind
) -> None:
    """docs/garm-protocol.md#route-rules: same name (any case) on the same endpoint → 409; another endpoint
    may reuse it."""
    await create_entity(admin_client, kind, creds)
    shouted = {key: value.upper() for key, value in kind.body.items()}
    response = await admin_client.post(
        f"/api/v1/{kind.collection}", json={**kind.create_body(creds), **shouted}
    )
    assert response.status_code == 409
    display = f"{shouted['owner']}/{shouted['name']}" if "owner" in shouted else shouted["name"]
    assert response.json() == {"error": "Conflict", "details": f"{kind.entity_type} {display} already exists"}
    await create_endpoint(admin_client, "ghes.example.com")
    other = await create_credentials(admin_client, "ghes-pat", "ghes.example.com")
    created = await create_entity(admin_client, kind, other)
    assert created["endpoint"]["name"] == "ghes.example.com"
    assert len((await admin_client.get(f"/api/v1/{kind.collection}")).json()) == 2


@kinds
async def test_get_by_id(admin_client: httpx.AsyncClient, creds: str, kind: Kind) -> None:
    """docs/garm-protocol.md#error-mapping: malformed ID → 400 ``invalid request``; unknown → 404
    ``not found``; Go's other UUID spellings (upper case, no dashes) find the entity."""
    created = await create_entity(admin_client, kind, creds)
    response = await admin_client.get(f"/api/v1/{kind.collection}/not-a-uuid")
    assert response.status_code == 400
    assert response.json() == {"error": "Bad Request", "details": "invalid request"}
    response = await admin_client.get(f"/api/v1/{kind.collection}/00000000-0000-0000-0000-000000000001")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found", "details": "not found"}
    for spelling in (created["id"].upper(), created["id"].replace("-", "")):
        response = await admin_client.get(f"/api/v1/{kind.collection}/{spelling}")
        assert response.status_code == 200 and response.json()["id"] == created["id"]


@kinds
async def test_get_includes_pools(admin_client: httpx.AsyncClient, creds: str, kind: Kind) -> None:
    """docs/garm-protocol.md#repository: ``GET /<entity>/{id}`` fills ``pool`` (right after ``name``), in list
    rendering."""
    created = await create_entity(admin_client, kind, creds)
    pool = await create_pool(admin_client, kind, created["id"], extra_specs={"a": 1})
    body = (await admin_client.get(f"/api/v1/{kind.collection}/{created['id']}")).json()
    assert list(body)[: list(body).index("pool")] == kind.keys[: kind.keys.index("name") + 1]
    assert [p["id"] for p in body["pool"]] == [pool["id"]]
    assert "extra_specs" not in body["pool"][0]
    assert body["pool"][0][f"{kind.pool_prefix}_id"] == created["id"]


@kinds
async def test_update(app: FastAPI, admin_client: httpx.AsyncClient, creds: str, kind: Kind) -> None:
    """docs/garm-protocol.md#request-bodies UpdateEntityParams: empty = unchanged; one ``<kind>/update`` ==
    GET; the new secret is what the webhook check reads."""
    created = await create_entity(admin_client, kind, creds)
    path = f"/api/v1/{kind.collection}/{created['id']}"
    await create_pool(admin_client, kind, created["id"])
    second = await create_credentials(admin_client, "gh-pat-2")
    log = ChangeLog(app)
    await log.mark()
    response = await admin_client.put(
        path, json={"pool_balancer_type": "pack", "credentials_name": second, "webhook_secret": "rotated"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pool_balancing_type"] == "pack" and body["credentials_name"] == second
    assert body["credentials"]["name"] == second and len(body["pool"]) == 1
    await assert_event_is_get(log, admin_client, kind.entity_type, "update", path)
    secret = await store_of(app).get_entity_webhook_secret(kind.enum, created["id"])
    assert secret == "rotated"
    response = await admin_client.put(path, json={})
    assert response.json()["pool_balancing_type"] == "pack" and response.json()["credentials_name"] == second
    await assert_event_is_get(log, admin_client, kind.entity_type, "update", path)


@kinds
async def test_update_errors(app: FastAPI, admin_client: httpx.AsyncClient, creds: str, kind: Kind) -> None:
    """docs/garm-protocol.md#route-rules: credentials of another endpoint → 400 ``invalid request``; bad
    balancer → 400; unknown credentials or entity → 404; failures emit nothing."""
    created = await create_entity(admin_client, kind, creds)
    path = f"/api/v1/{kind.collection}/{created['id']}"
    await create_endpoint(admin_client, "ghes.example.com")
    other = await create_credentials(admin_client, "ghes-pat", "ghes.example.com")
    log = ChangeLog(app)
    await log.mark()
    cases = [
        (path, {"credentials_name": other}, 400, "invalid request"),
        (path, {"pool_balancer_type": "fifo"}, 400, "invalid pool balancer type: fifo"),
        (path, {"credentials_name": "missing"}, 404, "not found"),
        (f"/api/v1/{kind.collection}/00000000-0000-0000-0000-000000000002", {}, 404, "not found"),
        (path, {"webhook_secret": 5}, 400, "invalid request"),
    ]
    for target, body, status, details in cases:
        response = await admin_client.put(target, json=body)
        assert response.status_code == status, body
        assert response.json()["details"] == details
    assert await log.new() == []


@kinds
async def test_delete(app: FastAPI, admin_client: httpx.AsyncClient, creds: str, kind: Kind) -> None:
    """docs/garm-protocol.md#route-rules: with pools → 400 ``<short> has pools defined (<ids>)``; otherwise
    200 empty and one ``<kind>/delete`` carrying the full object as GET showed it last
    (docs/garm-protocol.md#which-operations-emit-events)."""
    created = await create_entity(admin_client, kind, creds)
    path = f"/api/v1/{kind.collection}/{created['id']}"
    pools = [await create_pool(admin_client, kind, created["id"]) for _ in range(2)]
    response = await admin_client.delete(path)
    assert response.status_code == 400
    ids = ", ".join(pool["id"] for pool in pools)
    assert response.json() == {"error": "Bad Request", "details": f"{kind.short} has pools defined ({ids})"}
    for pool in pools:
        assert (await admin_client.delete(f"/api/v1/pools/{pool['id']}")).status_code == 200
    last = await admin_client.get(path)
    log = ChangeLog(app)
    await log.mark()
    response = await admin_client.delete(path + "?keepWebhook=true")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-type"] == "application/json"
    change = await log.single(kind.entity_type, "delete")
    assert change.payload == last.content[:-1]
    assert (await admin_client.get(path)).status_code == 404
    assert (await admin_client.delete(path)).status_code == 404


@kinds
async def test_webhook_secret_sealed_at_rest(
    app: FastAPI, admin_client: httpx.AsyncClient, creds: str, kind: Kind
) -> None:
    """docs/garm-protocol.md#secrets: the secret is not stored in clear and never appears in a body or an
    event."""
    created = await create_entity(admin_client, kind, creds, webhook_secret="very-secret-hook")
    table = {"repositories": repositories, "organizations": organizations, "enterprises": enterprises}[
        kind.collection
    ]
    raw = await store_of(app).db.read(lambda conn: conn.execute(select(table.c.webhook_secret)).scalar_one())
    assert b"very-secret-hook" not in bytes(raw)
    assert await store_of(app).get_entity_webhook_secret(kind.enum, created["id"]) == "very-secret-hook"
    bodies = [(await admin_client.get(f"/api/v1/{kind.collection}")).content]
    bodies += [change.payload for change in await store_of(app).db.read_changes_after(0, 1000)]
    assert all(b"very-secret-hook" not in body for body in bodies)


async def test_html_escaping_in_names(admin_client: httpx.AsyncClient, creds: str) -> None:
    """docs/garm-protocol.md#json-encoding: Go escapes ``<``, ``>`` and ``&`` in strings."""
    response = await admin_client.post(
        "/api/v1/organizations", json={"name": "a<b>&c", "credentials_name": creds, "webhook_secret": "s"}
    )
    assert b'"name":"a\\u003cb\\u003e\\u0026c"' in response.content
    assert orjson.loads(response.content)["name"] == "a<b>&c"


@kinds
async def test_live_pool_manager_status(
    app: FastAPI, admin_client: httpx.AsyncClient, creds: str, kind: Kind
) -> None:
    """docs/garm-protocol.md#pool-manager-status: REST shows the pool manager's live state; events keep
    ``{"running": false}``."""
    created = await create_entity(admin_client, kind, creds)
    install_pool_managers(
        app, {created["id"]: PoolManagerStatus(running=False, failure_reason="bad <token>")}
    )
    path = f"/api/v1/{kind.collection}/{created['id']}"
    expected = {"running": False, "failure_reason": "bad <token>"}
    assert (await admin_client.get(path)).json()["pool_manager_status"] == expected
    assert (await admin_client.get(f"/api/v1/{kind.collection}")).json()[0]["pool_manager_status"] == expected
    log = ChangeLog(app)
    await log.mark()
    response = await admin_client.put(path, json={})
    assert response.json()["pool_manager_status"] == expected
    change = await log.single(kind.entity_type, "update")
    assert orjson.loads(change.payload)["pool_manager_status"] == {"running": False}
