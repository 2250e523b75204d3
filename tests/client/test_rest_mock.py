"""Both REST faces against canned GARM answers (``httpx.MockTransport``): one suite, run on each face."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from pygarm.client import APIError, AsyncGarmClient, ConnectError, GarmClient
from pygarm.params.models import ControllerInfo, Repository

Handler = Callable[[httpx.Request], httpx.Response]


class Face:
    """Calls a client method on the sync or the async face and returns the result either way."""

    def __init__(self, client: GarmClient | AsyncGarmClient) -> None:
        self.client = client

    async def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, name)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result


@pytest.fixture(params=["sync", "async"])
def face_factory(request: pytest.FixtureRequest) -> Callable[..., Face]:
    def make(handler: Handler, token: str | None = "tok", base_url: str = "http://garm.test:9997") -> Face:
        if request.param == "sync":
            return Face(GarmClient(base_url, token, transport=httpx.MockTransport(handler)))
        return Face(AsyncGarmClient(base_url, token, transport=httpx.MockTransport(handler)))

    return make


def go_json(value: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, content=orjson.dumps(value) + b"\n", headers={"Content-Type": "application/json"}
    )


async def test_requests_carry_the_token_under_the_api_prefix(face_factory: Callable[..., Face]) -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return go_json(None)

    face = face_factory(handler, base_url="https://garm.test/prefix/")
    assert await face("list_repositories") == []
    assert str(requests[0].url) == "https://garm.test/prefix/api/v1/repositories"
    assert requests[0].headers["Authorization"] == "Bearer tok"


async def test_login_sends_no_token_and_keeps_the_new_one(face_factory: Callable[..., Face]) -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.url.path == "/api/v1/auth/login":
            return go_json({"token": "new"})
        return go_json({"controller_id": "00000000-0000-0000-0000-000000000001"})

    face = face_factory(handler, token=None)
    assert await face("login", "admin", "pw") == "new"
    assert "Authorization" not in requests[0].headers
    assert orjson.loads(requests[0].content) == {"username": "admin", "password": "pw"}
    info = await face("get_controller")
    assert isinstance(info, ControllerInfo)
    assert requests[1].headers["Authorization"] == "Bearer new"


async def test_update_sends_only_given_fields(face_factory: Callable[..., Face]) -> None:
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(orjson.loads(request.content))
        return go_json({"id": "r1", "owner": "o", "name": "n"})

    face = face_factory(handler)
    repo = await face("update_repository", "r1", pool_balancer_type="pack")
    assert isinstance(repo, Repository)
    assert bodies == [{"pool_balancer_type": "pack"}]


async def test_api_error_carries_garm_error_and_details(face_factory: Callable[..., Face]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return go_json({"error": "Conflict", "details": "repository o/n already exists"}, status=409)

    face = face_factory(handler)
    with pytest.raises(APIError) as info:
        await face("get_repository", "r1")
    assert (info.value.status, info.value.error, info.value.details) == (
        409,
        "Conflict",
        "repository o/n already exists",
    )


async def test_plain_text_unauthorized(face_factory: Callable[..., Face]) -> None:
    face = face_factory(lambda request: httpx.Response(401, text="Unauthorized\n"))
    with pytest.raises(APIError, match=r"Unauthorized \(HTTP 401\)"):
        await face("list_pools")


async def test_unreachable_server_is_a_connect_error(face_factory: Callable[..., Face]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    face = face_factory(handler)
    with pytest.raises(ConnectError, match=r"cannot reach http://garm\.test:9997: connection refused"):
        await face("list_jobs")


async def test_deletes_tolerate_empty_bodies(face_factory: Callable[..., Face]) -> None:
    face = face_factory(lambda request: httpx.Response(204))
    assert await face("delete_github_credentials", 3) is None
    assert await face("delete_instance", "r-1", force_remove=True) is None


def test_faces_have_the_same_route_methods() -> None:
    def routes(cls: type) -> set[str]:
        return {name for name in dir(cls) if not name.startswith("_")}

    assert routes(GarmClient) - {"close"} == routes(AsyncGarmClient) - {"aclose"}
    assert len(routes(GarmClient)) > 60
