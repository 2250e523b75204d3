"""Fixtures for the lifecycle tests: the real app (both backends) with the fake GitHub, the executable test
provider and pool-manager loops shortened from seconds to a few hundred milliseconds.

``settings`` here overrides the root fixture, so ``app``, ``admin_client``, ``live_server`` and
``live_admin`` all run with the provider and the fast ``[pool_manager]`` timings. A test that needs other
timings sets them with ``@pytest.mark.pool_manager(idle_runner_age="…")``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pygarm.config import Settings
from pygarm.runner.pool import POOL_MANAGERS_SERVICE, PoolManagerRegistry
from pygarm.testing.fake_github import FakeGithubServer, running_fake_github
from tests.conftest import make_settings
from tests.lifecycle.support import FAST_POOL_MANAGER, EventRecorder, Garm, ProviderFiles


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pool_manager(**durations): override [pool_manager] settings")
    config.addinivalue_line("markers", "provider(**keys): extra [[provider]] keys (e.g. disable_jit_config)")
    config.addinivalue_line("markers", "provider_env(**vars): variables in pygarm's environment at start")


@pytest.fixture
def fake_github() -> Iterator[FakeGithubServer]:
    with running_fake_github() as server:
        yield server


@pytest.fixture
def provider_files(tmp_path: Path) -> ProviderFiles:
    return ProviderFiles.create(tmp_path)


def _marker_kwargs(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    marker = request.node.get_closest_marker(name)
    return dict(marker.kwargs) if marker is not None else {}


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    database_section: dict[str, Any],
    provider_files: ProviderFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    for name, value in _marker_kwargs(request, "provider_env").items():
        monkeypatch.setenv(name, value)  # before the app starts: providers copy the environment once
    timings = {**FAST_POOL_MANAGER, **_marker_kwargs(request, "pool_manager")}
    provider = provider_files.provider_section(**_marker_kwargs(request, "provider"))
    return make_settings(database_section, provider=[provider], pool_manager=timings)


@pytest.fixture
def registry(app: FastAPI) -> PoolManagerRegistry:
    found = app.state.ctx.services.get(POOL_MANAGERS_SERVICE)
    assert isinstance(found, PoolManagerRegistry), "the lifespan registers the pool managers"
    return found


@pytest.fixture
def events(app: FastAPI, registry: PoolManagerRegistry) -> EventRecorder:
    """Subscribed before the test acts, so it sees every change the test causes."""
    return EventRecorder(app.state.ctx.hub)


@pytest.fixture
async def garm(
    admin_client: httpx.AsyncClient, fake_github: FakeGithubServer, registry: PoolManagerRegistry
) -> AsyncIterator[Garm]:
    yield Garm(admin_client, fake_github.base_url)
