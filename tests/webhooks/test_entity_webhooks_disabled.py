"""Without ``[default] enable_webhook_management`` the webhook routes do not exist
(docs/garm-protocol.md#rest-routes): the admin chain, then the catch-all 404; and deleting an entity never
touches its hooks."""

from __future__ import annotations

from typing import Any

import pytest

from pygarm.config import Settings
from pygarm.runner import webhook_management
from pygarm.store.entity_kinds import EntityKind
from tests.api.entity_support import PROVIDERS
from tests.conftest import make_settings
from tests.webhooks.conftest import World


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(database_section, provider=PROVIDERS)


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_routes_answer_the_catch_all_404(world: World, method: str) -> None:
    response = await world.http.request(method, f"/api/v1/repositories/{world.repo_id}/webhook", json={})
    assert (response.status_code, response.json()) == (
        404,
        {"error": "Not found", "details": "Resource not found"},
    )
    assert world.github.fake.calls_to(method, "/hooks") == []


async def test_delete_leaves_hooks_alone(world: World) -> None:
    world.github.fake.add_hook("repos/octo/hello", "http://127.0.0.1:9997/webhooks/x")
    ctx = world.app.state.ctx
    await webhook_management.uninstall_before_delete(
        ctx.store, ctx.settings, EntityKind.REPOSITORY, world.repo_id, keep_webhook=False
    )
    assert world.github.fake.calls == [c for c in world.github.fake.calls if "hooks" not in c.path]
