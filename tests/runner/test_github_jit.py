"""JIT configuration and the registration-token fallback (docs/garm-protocol.md#jit-configuration,
docs/garm-protocol.md#other-scenarios (c))."""

from __future__ import annotations

import base64
import json

import pytest

from pygarm.errors import NotFoundError
from pygarm.runner.github import (
    GithubClient,
    GithubEndpointConfig,
    GithubEntity,
    GithubError,
    PATCredentials,
    decode_jit_config,
    get_jit_config,
    jit_config_or_none,
)
from pygarm.testing.fake_github import DEFAULT_PAT, FakeGithubServer

REPO = GithubEntity.repository("octo", "hello")
ORG = GithubEntity.organization("octo-org")
LABELS = ["self-hosted", "linux", "runner-controller-id:c", "runner-pool-id:p"]


def client_for(server: FakeGithubServer, entity: GithubEntity = REPO) -> GithubClient:
    endpoint = GithubEndpointConfig(api_base_url=server.api_base_url, base_url=server.base_url)
    return GithubClient(endpoint, PATCredentials(DEFAULT_PAT), entity, timeout=10)


async def test_jit_config_decodes_runner_files(fake_github: FakeGithubServer) -> None:
    """docs/garm-protocol.md#jit-configuration: base64 → JSON map; keys keep their leading dot, values stay
    base64 file contents."""
    async with client_for(fake_github) as client:
        config = await get_jit_config(client, instance_name="garm-abc", labels=LABELS)
    assert sorted(config.files) == [".credentials", ".credentials_rsaparams", ".runner"]
    runner_file = json.loads(base64.b64decode(config.files[".runner"]))
    assert runner_file["agentName"] == "garm-abc"
    assert runner_file["agentId"] == config.runner_id
    assert config.runner_name == "garm-abc"
    assert ".credentials" not in repr(config)  # runner credentials stay out of logs


async def test_repo_pools_always_use_default_group(fake_github: FakeGithubServer) -> None:
    """docs/garm-protocol.md#jit-configuration: ``runner_group_id`` is 1 for repositories even when the pool
    names a group."""
    async with client_for(fake_github) as client:
        await get_jit_config(client, instance_name="garm-abc", labels=LABELS, runner_group="gpu")
    (call,) = fake_github.fake.calls
    assert call.json()["runner_group_id"] == 1


async def test_org_group_is_looked_up_by_exact_name(fake_github: FakeGithubServer) -> None:
    """docs/garm-protocol.md#github-calls, docs/garm-protocol.md#jit-configuration: org pools with
    ``github-runner-group`` list the groups and use the matching ID."""
    group_id = fake_github.fake.add_runner_group("orgs/octo-org", "gpu")
    async with client_for(fake_github, ORG) as client:
        await get_jit_config(client, instance_name="garm-abc", labels=LABELS, runner_group="gpu")
        with pytest.raises(NotFoundError, match="runner group GPU not found"):
            await get_jit_config(client, instance_name="garm-def", labels=LABELS, runner_group="GPU")
    (jit_call,) = fake_github.fake.calls_to("POST", "/generate-jitconfig")
    assert jit_call.json()["runner_group_id"] == group_id
    assert fake_github.fake.calls[0].path == "/api/v3/orgs/octo-org/actions/runner-groups"


async def test_fallback_to_registration_token_when_jit_fails(fake_github: FakeGithubServer) -> None:
    """docs/garm-protocol.md#other-scenarios (c): JIT answers 404 → no JIT config; the runner then registers
    with a registration token."""
    fake_github.fake.jit_failure_status = 404
    async with client_for(fake_github) as client:
        assert await jit_config_or_none(client, instance_name="garm-abc", labels=LABELS) is None
        token = await client.create_registration_token()
    assert token.token == "FAKE-REG-TOKEN"
    assert [c.path.rsplit("/", 1)[-1] for c in fake_github.fake.calls] == [
        "generate-jitconfig",
        "registration-token",
    ]


async def test_fallback_also_on_unauthorized_and_missing_group(fake_github: FakeGithubServer) -> None:
    """GARM falls back on *any* JIT failure (``garm@v0.1.5 runner/pool/pool.go:729-736``)."""
    fake_github.fake.jit_failure_status = 401
    async with client_for(fake_github) as client:
        assert await jit_config_or_none(client, instance_name="a", labels=LABELS) is None
    fake_github.fake.jit_failure_status = None
    async with client_for(fake_github, ORG) as client:
        assert await jit_config_or_none(client, instance_name="b", labels=LABELS, runner_group="none") is None
        assert await jit_config_or_none(client, instance_name="c", labels=LABELS) is not None


async def test_undecodable_config_removes_the_registered_runner(fake_github: FakeGithubServer) -> None:
    """docs/garm-protocol.md#jit-configuration: a JIT answer that fails to decode → the GitHub runner is
    deleted, then fallback."""
    fake_github.fake.jit_bad_encoding = True
    async with client_for(fake_github) as client:
        with pytest.raises(GithubError, match="failed to decode JIT config"):
            await get_jit_config(client, instance_name="garm-abc", labels=LABELS)
        assert await jit_config_or_none(client, instance_name="garm-def", labels=LABELS) is None
    deletes = fake_github.fake.calls_to("DELETE", "")
    assert len(deletes) == 2
    assert fake_github.fake.runners["repos/octo/hello"] == {}


@pytest.mark.parametrize(
    "encoded",
    ["!!!", base64.b64encode(b"not json").decode(), base64.b64encode(b'{".runner": 1}').decode()],
)
def test_decode_jit_config_rejects(encoded: str) -> None:
    with pytest.raises(ValueError):
        decode_jit_config(encoded)
