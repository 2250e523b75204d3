"""``garm_webhook_received``: one count per ``workflow_job`` delivery that reaches dispatch, with GARM's
``valid``/``reason`` labels (``garm@v0.1.5 apiserver/controllers/controllers.go:98-138``)."""

from __future__ import annotations

from typing import Any

import pytest

from pygarm.config import Settings
from tests.api.entity_support import PROVIDERS
from tests.api.metrics_support import scrape
from tests.conftest import make_settings
from tests.webhooks.conftest import World, job_payload, send


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(
        database_section,
        provider=PROVIDERS,
        default={"enable_webhook_management": True},
        metrics={"enable": True},
    )


async def test_each_outcome_counted_once_under_garms_name(world: World) -> None:
    http = world.http
    assert (await send(http, job_payload(world, "queued", 4001))).status_code == 200
    assert (await send(http, job_payload(world, "queued", 4002), secret="wrong")).status_code == 401
    assert (await send(http, job_payload(world, "queued", 4003), signature="")).status_code == 401
    stranger = job_payload(world, "queued", 4004)
    stranger["repository"]["name"] = "not-ours"
    assert (await send(http, stranger)).status_code == 200  # owner unknown: 200, empty body
    assert (await send(http, job_payload(world, "queued", 4005), target="bogus")).status_code == 400
    assert (await send(http, b"{not json")).status_code == 400
    # not counted: other events, and URLs of another controller
    assert (await send(http, job_payload(world, "queued", 4006), event="ping")).status_code == 200
    foreign = "/webhooks/00000000-0000-0000-0000-000000000001"
    assert (await send(http, job_payload(world, "queued", 4007), path=foreign)).status_code == 200

    families = await scrape(http, world.app)
    family = families["garm_webhook_received"]
    assert "garm_webhook_received_total" not in families
    assert (family.type, family.help) == ("counter", "The total number of webhooks received")
    assert {sample[0] for sample in family.samples} == {"garm_webhook_received"}
    assert sorted((labels["valid"], labels["reason"], value) for labels, value in family.series()) == [
        ("false", "owner_unknown", 1.0),
        ("false", "signature_invalid", 2.0),
        ("false", "unknown", 2.0),
        ("true", "", 1.0),
    ]


async def test_github_calls_of_the_api_routes_are_counted(world: World) -> None:
    """Webhook management talks to GitHub from a REST route: GARM counts those calls too
    (``garm@v0.1.5 util/util.go:44-160``)."""
    path = f"/api/v1/repositories/{world.repo_id}/webhook"
    assert (await world.http.post(path, json={"insecure_ssl": False})).status_code == 200
    assert (await world.http.get(path)).status_code == 200
    families = await scrape(world.http, world.app)
    family = families["garm_github_operations_total"]
    assert (family.type, family.help) == ("counter", "Total number of github operation attempts")
    counted = {
        labels["operation"]: value for labels, value in family.series() if labels["scope"] == "Repository"
    }
    assert counted["CreateHook"] == 1.0 and counted["PingHook"] == 1.0
    assert counted["ListHooks"] >= 2.0  # install looks first, and so does the GET
    assert "garm_github_errors_total" not in families
