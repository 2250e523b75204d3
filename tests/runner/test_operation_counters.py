"""GARM's operation counters: ``garm_github_*`` per GitHub request (``garm@v0.1.5 util/util.go:44-406``)
and ``garm_runner_*`` per provider call (``garm@v0.1.5 runner/providers/external/external.go:84-310``)."""

from __future__ import annotations

import pytest

from pygarm.params.models import Provider as ProviderInfo
from pygarm.params.provider import BootstrapInstance, ProviderInstance
from pygarm.runner.github import GithubClient, GithubEndpointConfig, GithubEntity, GithubError, PATCredentials
from pygarm.runner.metrics import GarmCounters
from pygarm.runner.providers.counting import CountingProvider
from pygarm.runner.providers.errors import ProviderError
from pygarm.testing.fake_github import DEFAULT_PAT, FakeGithubServer


def _client(
    server: FakeGithubServer, entity: GithubEntity, counters: GarmCounters, token: str
) -> GithubClient:
    endpoint = GithubEndpointConfig(api_base_url=server.api_base_url, base_url=server.base_url)
    return GithubClient(endpoint, PATCredentials(token), entity, timeout=10, counters=counters)


async def test_github_requests_counted_with_operation_and_scope(fake_github: FakeGithubServer) -> None:
    counters = GarmCounters()
    async with _client(fake_github, GithubEntity.organization("octo-org"), counters, DEFAULT_PAT) as client:
        await client.list_runner_applications()
        await client.create_registration_token()
        await client.list_runner_groups()
    async with _client(
        fake_github, GithubEntity.repository("octo", "hello"), counters, "bad-token"
    ) as client:
        with pytest.raises(GithubError):
            await client.list_runner_applications()
    assert counters.github_operations == {
        ("ListEntityRunnerApplicationDownloads", "Organization"): 1,
        ("CreateEntityRegistrationToken", "Organization"): 1,
        ("ListOrganizationRunnerGroups", "Organization"): 1,
        ("ListEntityRunnerApplicationDownloads", "Repository"): 1,
    }
    assert counters.github_errors == {("ListEntityRunnerApplicationDownloads", "Repository"): 1}


class _Provider:
    """A provider whose delete succeeds and whose create fails."""

    name = "fake"
    disable_jit_config = False

    def as_params(self) -> ProviderInfo:
        return ProviderInfo(name="fake", type="external")

    async def create_instance(self, bootstrap: BootstrapInstance) -> ProviderInstance:
        raise ProviderError("provider binary failed")

    async def delete_instance(self, instance: str) -> None:
        return None

    async def get_instance(self, instance: str) -> ProviderInstance:
        raise NotImplementedError

    async def list_instances(self, pool_id: str) -> list[ProviderInstance]:
        return []

    async def remove_all_instances(self) -> None:
        return None

    async def stop_instance(self, instance: str) -> None:
        return None

    async def start_instance(self, instance: str) -> None:
        return None


async def test_provider_calls_counted_with_garms_operation_names() -> None:
    counters = GarmCounters()
    provider = CountingProvider(_Provider(), counters)
    assert provider.name == "fake" and provider.as_params().type == "external"
    with pytest.raises(ProviderError):
        await provider.create_instance(BootstrapInstance(name="garm-1", pool_id="p"))
    await provider.delete_instance("garm-1")
    await provider.list_instances("p")
    await provider.start_instance("garm-1")
    await provider.stop_instance("garm-1")
    assert counters.runner_operations == {
        ("CreateInstance", "fake"): 1,
        ("DeleteInstance", "fake"): 1,
        ("ListInstances", "fake"): 1,
        ("Start", "fake"): 1,
        ("Stop", "fake"): 1,
    }
    assert counters.runner_errors == {("CreateInstance", "fake"): 1}
