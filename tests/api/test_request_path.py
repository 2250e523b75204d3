"""The request path's shortcuts (docs/performance.md#the-per-update-cost): GARM's REST routes are served
without FastAPI's per-request dependency solver (api/fastroute.py), in the same order of checks, and
anything else keeps FastAPI's handler; a write's REST body is its change-log payload's bytes, encoded
once (params/gojson.py)."""

from __future__ import annotations

import gc
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from pygarm.api.fastroute import FastRoute, plan
from pygarm.config import Settings
from pygarm.params import gojson
from pygarm.params.models import Tag
from tests.api.entity_support import (
    PROVIDERS,
    REPO,
    ChangeLog,
    create_credentials,
    create_entity,
    create_pool,
)
from tests.conftest import initialize, make_settings


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(database_section, provider=PROVIDERS)


def test_every_rest_route_is_served_by_the_planned_handler(app: FastAPI) -> None:
    """A new route whose parameters the plan does not know would silently fall back to FastAPI's
    slower handler: this names it."""
    routes = [route for route in app.routes if isinstance(route, FastRoute)]
    assert len(routes) > 150
    assert [f"{sorted(route.methods or ())} {route.path}" for route in routes if not route.fast] == []


async def test_the_chain_answers_as_before_on_a_planned_route(client: httpx.AsyncClient) -> None:
    """The URLs check before the token (409 before 401), then the token, then the route, as GARM's
    middlewares."""
    path = "/api/v1/pools/6f1c2a7e-1111-4b2c-9d3e-000000000001"
    response = await client.get(path)
    assert response.status_code == 409
    assert response.json()["error"] == "urls_required"
    token = await initialize(client)
    response = await client.put(path, json={"max_runners": 1})
    assert (response.status_code, response.json()) == (401, {"error": "Authentication failed", "details": ""})
    response = await client.put(path, json={"max_runners": 1}, headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.json()) == (404, {"error": "Not Found", "details": "not found"})


async def _who(request: Request) -> str:
    return request.headers.get("x-who", "nobody")


Who = Annotated[str, Depends(_who)]


def _toy_app() -> FastAPI:
    toy = FastAPI()
    toy.router.route_class = FastRoute

    @toy.get("/planned/{name}")
    async def planned(name: str, who: Who) -> Response:
        return PlainTextResponse(f"{name} for {who}")

    @toy.get("/query/{name}")
    async def with_query(name: str, who: Who, count: int) -> Response:
        return PlainTextResponse(f"{name} x{count} for {who}")

    return toy


async def test_an_endpoint_the_plan_does_not_cover_keeps_fastapis_handler() -> None:
    toy = _toy_app()
    fast = {route.path: route.fast for route in toy.routes if isinstance(route, FastRoute)}
    assert fast == {"/planned/{name}": True, "/query/{name}": False}
    transport = httpx.ASGITransport(app=toy)
    async with httpx.AsyncClient(transport=transport, base_url="http://toy") as http:
        response = await http.get("/planned/a%20b", headers={"x-who": "me"})
        assert (response.status_code, response.text) == (200, "a b for me")
        response = await http.get("/query/a", params={"count": "2"}, headers={"x-who": "me"})
        assert (response.status_code, response.text) == (200, "a x2 for me")
        response = await http.get("/query/a", params={"count": "two"})
        assert response.status_code == 422  # still validated by FastAPI


def test_plan_refuses_what_it_cannot_fill() -> None:
    async def with_default(name: str, flag: bool = False) -> Response:
        return Response()

    def synchronous(name: str) -> Response:
        return Response()

    async def returns_data(name: str) -> dict[str, str]:
        return {}

    async def twice(first: Who, second: Who) -> Response:
        return Response()

    for endpoint in (with_default, synchronous, returns_data, twice):
        assert plan(endpoint, {"name"}) is None, endpoint.__name__


async def test_a_pool_update_answers_with_its_change_payload(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    credentials = await create_credentials(admin_client)
    entity = await create_entity(admin_client, REPO, credentials)
    pool = await create_pool(admin_client, REPO, entity["id"])
    log = ChangeLog(app)
    await log.mark()
    response = await admin_client.put(
        f"/api/v1/pools/{pool['id']}", json={"image": "a<b>&c", "max_runners": 7}
    )
    assert response.status_code == 200, response.text
    change = await log.single("pool", "update")
    assert response.content == change.payload + b"\n"
    assert b"a\\u003cb\\u003e\\u0026c" in response.content  # Go's HTML escaping, as before
    assert response.json()["max_runners"] == 7


def test_an_encoding_is_reused_once_and_not_kept_past_its_value() -> None:
    tag = Tag(id="t1", name="gpu")
    encoded = gojson.dumps_for_reuse(tag)
    assert encoded == b'{"id":"t1","name":"gpu"}'
    assert gojson.dumps(tag) is encoded
    assert gojson.dumps(tag) == encoded and gojson.dumps(tag) is not encoded  # handed out once
    other = Tag(id="t2", name="arm")
    gojson.dumps_for_reuse(other)
    key = id(other)
    del other
    gc.collect()
    assert key not in gojson._for_reuse
