"""The GitHub client against the fake GitHub with PAT credentials (docs/garm-protocol.md#github-api)."""

from __future__ import annotations

import json

import httpx
import pytest

from pygarm.runner.github import (
    GithubClient,
    GithubEndpointConfig,
    GithubEntity,
    GithubError,
    GithubNotFoundError,
    GithubTransportError,
    GithubUnauthorizedError,
    PATCredentials,
    next_page,
)
from pygarm.testing.fake_github import DEFAULT_PAT, DEFAULT_TOOLS, FakeGithubServer

REPO = GithubEntity.repository("octo", "hello")
ORG = GithubEntity.organization("octo-org")
ENTERPRISE = GithubEntity.enterprise("acme")


def client_for(
    server: FakeGithubServer, entity: GithubEntity = REPO, token: str = DEFAULT_PAT
) -> GithubClient:
    endpoint = GithubEndpointConfig(api_base_url=server.api_base_url, base_url=server.base_url)
    return GithubClient(endpoint, PATCredentials(token), entity, timeout=10)


async def test_headers_and_paths_match_go_github(fake_github: FakeGithubServer) -> None:
    """docs/garm-protocol.md#github-client: paths under ``/api/v3/``, Bearer PAT, v3 Accept, API version
    header."""
    async with client_for(fake_github) as client:
        await client.list_runner_applications()
    (call,) = fake_github.fake.calls
    assert (call.method, call.path) == ("GET", "/api/v3/repos/octo/hello/actions/runners/downloads")
    assert call.headers["authorization"] == f"Bearer {DEFAULT_PAT}"
    assert call.headers["accept"] == "application/vnd.github.v3+json"
    assert call.headers["x-github-api-version"] == "2022-11-28"
    assert call.headers["user-agent"].startswith("pygarm")


@pytest.mark.parametrize(
    ("entity", "prefix"),
    [(REPO, "repos/octo/hello"), (ORG, "orgs/octo-org"), (ENTERPRISE, "enterprises/acme")],
)
async def test_runner_calls_per_entity_kind(
    fake_github: FakeGithubServer, entity: GithubEntity, prefix: str
) -> None:
    """docs/garm-protocol.md#github-calls: one path prefix per entity kind for tools, tokens, JIT, list and
    remove."""
    async with client_for(fake_github, entity) as client:
        tools = await client.list_runner_applications()
        token = await client.create_registration_token()
        jit = await client.generate_jit_config(name="garm-x", labels=["linux"])
        runners = await client.list_runners()
        assert jit.runner is not None and jit.runner.id is not None
        await client.remove_runner(jit.runner.id)
    assert [t.model_dump(mode="json") for t in tools] == DEFAULT_TOOLS
    assert token.token == "FAKE-REG-TOKEN"
    assert [r.name for r in runners] == ["garm-x"]
    assert runners[0].status == "online"  # docs/garm-protocol.md#what-a-fake-github-must-serve item 4
    paths = [(c.method, c.path) for c in fake_github.fake.calls]
    assert paths == [
        ("GET", f"/api/v3/{prefix}/actions/runners/downloads"),
        ("POST", f"/api/v3/{prefix}/actions/runners/registration-token"),
        ("POST", f"/api/v3/{prefix}/actions/runners/generate-jitconfig"),
        ("GET", f"/api/v3/{prefix}/actions/runners"),
        ("DELETE", f"/api/v3/{prefix}/actions/runners/{jit.runner.id}"),
    ]


async def test_jit_request_body_is_go_githubs(fake_github: FakeGithubServer) -> None:
    """docs/garm-protocol.md#github-api: body field order name, runner_group_id, work_folder, labels; JSON +
    newline."""
    labels = ["self-hosted", "runner-controller-id:c", "runner-pool-id:p"]
    async with client_for(fake_github) as client:
        await client.generate_jit_config(name="garm-x", labels=labels)
    (call,) = fake_github.fake.calls_to("POST", "/generate-jitconfig")
    assert call.body == (
        b'{"name":"garm-x","runner_group_id":1,"work_folder":"_work","labels":'
        b'["self-hosted","runner-controller-id:c","runner-pool-id:p"]}\n'
    )
    assert call.headers["content-type"] == "application/json"


async def test_registration_token_has_no_body(fake_github: FakeGithubServer) -> None:
    async with client_for(fake_github) as client:
        await client.create_registration_token()
    (call,) = fake_github.fake.calls
    assert call.body == b"" and "content-type" not in call.headers


async def test_list_runners_follows_pagination(fake_github: FakeGithubServer) -> None:
    """docs/garm-protocol.md#github-client: ``per_page=100`` first, then ``page=N`` from ``Link: rel="next"``
    until there is none."""
    fake = fake_github.fake
    fake.page_size = 2
    for index in range(5):
        fake.add_runner("repos/octo/hello", f"r{index}")
    async with client_for(fake_github) as client:
        runners = await client.list_runners()
    assert [r.name for r in runners] == ["r0", "r1", "r2", "r3", "r4"]
    assert [c.query for c in fake.calls] == [
        {"per_page": "100"},
        {"page": "2", "per_page": "100"},
        {"page": "3", "per_page": "100"},
    ]


def test_next_page_parsing() -> None:
    """go-github's ``NextPage``: the ``page`` query of the ``rel="next"`` link, else 0."""
    header = '<https://x/r?page=3&per_page=2>; rel="next", <https://x/r?page=9>; rel="last"'
    assert next_page(header) == 3
    assert next_page('<https://x/r?page=9>; rel="last"') == 0
    assert next_page('<https://x/r?after=abc>; rel="next"') == 0  # cursor pagination ends the loop
    assert next_page("") == 0


async def test_unauthorized_maps_to_github_unauthorized_error(fake_github: FakeGithubServer) -> None:
    """docs/garm-protocol.md#github-calls: a 401 is recognisable (the pool manager stops the entity on it);
    the PAT is not in the text."""
    async with client_for(fake_github, token="ghp_wrong_secret") as client:
        with pytest.raises(GithubUnauthorizedError) as caught:
            await client.list_runners()
    assert caught.value.status == 401
    assert "Bad credentials" in str(caught.value)
    assert "ghp_wrong_secret" not in str(caught.value)
    fake_github.fake.unauthorized = True
    async with client_for(fake_github) as client:
        with pytest.raises(GithubUnauthorizedError):
            await client.list_runner_applications()


async def test_remove_missing_runner_is_not_found(fake_github: FakeGithubServer) -> None:
    """docs/garm-protocol.md#github-calls Remove runner: 404 is distinguishable (GARM tolerates it)."""
    async with client_for(fake_github) as client:
        with pytest.raises(GithubNotFoundError) as caught:
            await client.remove_runner(424242)
    assert caught.value.status == 404


async def test_other_statuses_and_202_are_errors(fake_github: FakeGithubServer) -> None:
    """docs/garm-protocol.md#github-client: success is 2xx except 202; 422 and 500 are plain GithubErrors
    carrying the status."""
    fake = fake_github.fake
    fake.inject_error("DELETE", r"/actions/runners/\d+$", 422, "runner busy", times=1)
    fake.inject_error("POST", r"/registration-token$", 202, "accepted", times=1)
    async with client_for(fake_github) as client:
        with pytest.raises(GithubError) as caught:
            await client.remove_runner(1)
        assert type(caught.value) is GithubError and caught.value.status == 422
        assert "runner busy" in str(caught.value)
        with pytest.raises(GithubError) as accepted:
            await client.create_registration_token()
        assert accepted.value.status == 202


async def test_unreachable_github_is_a_transport_error() -> None:
    endpoint = GithubEndpointConfig(api_base_url="http://127.0.0.1:9/")  # discard port: nothing listens
    async with GithubClient(endpoint, PATCredentials("ghp_x"), REPO, timeout=5) as client:
        with pytest.raises(GithubTransportError) as caught:
            await client.list_runners()
    assert caught.value.status is None


async def test_runner_groups_only_for_org_and_enterprise(fake_github: FakeGithubServer) -> None:
    fake_github.fake.add_runner_group("orgs/octo-org", "gpu")
    async with client_for(fake_github, ORG) as client:
        groups = await client.list_runner_groups()
    assert [g.name for g in groups] == ["Default", "gpu"]
    async with client_for(fake_github, REPO) as client:
        with pytest.raises(GithubError):
            await client.list_runner_groups()


async def test_malformed_answer_is_a_github_error() -> None:
    """A 2xx answer of the wrong shape is an error, never an exception from the decoder."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"runner": {"id": "not-a-number"}})

    endpoint = GithubEndpointConfig(api_base_url="http://127.0.0.1:1/")
    client = GithubClient(endpoint, PATCredentials("ghp_x"), REPO, transport=httpx.MockTransport(handler))
    async with client:
        with pytest.raises(GithubError, match="unexpected response shape"):
            await client.generate_jit_config(name="n", labels=[])


async def test_hook_body_and_enterprise_refusal(fake_github: FakeGithubServer) -> None:
    """docs/garm-protocol.md#github-calls Create hook: go-github's body (config keys sorted, as Go marshals a
    map)."""
    async with client_for(fake_github) as client:
        hook = await client.create_hook(url="http://c/webhooks/x", secret="s3cret", insecure_ssl=True)
    (call,) = fake_github.fake.calls
    assert call.path == "/api/v3/repos/octo/hello/hooks"
    assert json.loads(call.body) == {
        "name": "web",
        "config": {
            "content_type": "json",
            "insecure_ssl": "1",
            "secret": "s3cret",
            "url": "http://c/webhooks/x",
        },
        "events": ["workflow_job"],
        "active": True,
    }
    assert call.body.startswith(b'{"name":"web","config":{"content_type":"json","insecure_ssl":"1",')
    assert hook.url == "http://c/webhooks/x" and hook.insecure_ssl
    assert "s3cret" not in repr(hook)
    async with client_for(fake_github, ENTERPRISE) as client:
        with pytest.raises(GithubError, match=r"^invalid entity type$"):
            await client.list_hooks()
