"""Input no backend can store, and paths no route should match (issue 8 #3, #11), on SQLite and
PostgreSQL: 400 (NUL) or GARM's 404 (other control characters), and nothing changed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pygarm.config import Settings
from tests.api.entity_support import POOL_BODY, PROVIDERS, REPO, ChangeLog, create_credentials, create_entity
from tests.conftest import make_settings

INVALID = {"error": "Bad Request", "details": "invalid request"}
NOT_FOUND = {"error": "Not found", "details": "Resource not found"}


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(database_section, provider=PROVIDERS)


async def test_nul_in_login_username_is_400_unauthenticated(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    response = await client.post("/api/v1/auth/login", json={"username": "ad\x00min", "password": "x"})
    assert (response.status_code, response.json()) == (400, INVALID)


async def test_nul_in_any_string_of_a_body_is_400_and_changes_nothing(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    creds = await create_credentials(admin_client)
    repo = await create_entity(admin_client, REPO, creds)
    log = ChangeLog(app)
    await log.mark()
    pools = f"/api/v1/repositories/{repo['id']}/pools"
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/v1/repositories", REPO.create_body(creds, name="a\x00b")),
        ("PUT", f"/api/v1/repositories/{repo['id']}", {"credentials_name": "x\x00"}),
        ("POST", pools, {**POOL_BODY, "image": "ubuntu\x00"}),
        ("POST", pools, {**POOL_BODY, "flavor": "\x00"}),
        ("POST", pools, {**POOL_BODY, "tags": ["ok", "t\x00g"]}),
        ("POST", pools, {**POOL_BODY, "extra_specs": {"k\x00": 1}}),
        ("POST", "/api/v1/github/endpoints", {"name": "e", "description": "d\x00", "base_url": "https://x"}),
    ]
    for method, path, body in cases:
        response = await admin_client.request(method, path, json=body)
        assert (response.status_code, response.json()) == (400, INVALID), (method, path, body)
    assert await log.new() == []


@pytest.mark.parametrize("path", ["/api/v1/instances/a%00b", "/api/v1/repositories/%00", "/webhooks/%00"])
async def test_nul_in_a_path_is_400(admin_client: httpx.AsyncClient, path: str) -> None:
    response = await admin_client.get(path)
    assert (response.status_code, response.json()) == (400, INVALID)


@pytest.mark.parametrize("suffix", ["%0A", "%0D", "%09", "%1F", "%7F", "x%0A"])
async def test_control_character_in_a_path_matches_no_route(
    app: FastAPI, admin_client: httpx.AsyncClient, client: httpx.AsyncClient, suffix: str
) -> None:
    """Starlette's route regex ends in ``$``, which also matches before a final newline: the list and the
    create handler used to answer ``/api/v1/repositories/%0A``."""
    creds = await create_credentials(admin_client)
    log = ChangeLog(app)
    await log.mark()
    for collection in ("repositories", "pools", "users", "github/endpoints"):
        response = await admin_client.get(f"/api/v1/{collection}/{suffix}")
        assert (response.status_code, response.json()) == (404, NOT_FOUND), collection
    created = await admin_client.post(f"/api/v1/repositories/{suffix}", json=REPO.create_body(creds))
    assert (created.status_code, created.json()) == (404, NOT_FOUND)
    anonymous = await client.get(f"/api/v1/repositories/{suffix}")
    assert anonymous.status_code == 404
    assert await log.new() == []
