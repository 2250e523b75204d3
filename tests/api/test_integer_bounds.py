"""Integers the database or the code cannot hold are refused with 400 and change nothing, on SQLite and
PostgreSQL (issue 8 #4): ``minimum_job_age_backoff`` of 2^63 answered 500 on SQLite and 2^31 on
PostgreSQL; 86,400,000,000,000 was stored on SQLite and then broke every job-queue pass."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pygarm.config import Settings, parse_go_duration
from tests.api.entity_support import POOL_BODY, PROVIDERS, REPO, ChangeLog, create_credentials, create_entity
from tests.conftest import make_settings

INVALID = {"error": "Bad Request", "details": "invalid request"}
NOT_FOUND = {"error": "Not Found", "details": "not found"}
OUT_OF_RANGE: list[Any] = [2**31, 2**63, 2**64, 86_400_000_000_000, -1, 1.5, "5", True]
"""Beyond int4 (PostgreSQL's column), beyond int64 (SQLite's), beyond uint64, the value that broke the
job queue, and values Go's decoder refuses for an unsigned field."""
POOL_INTEGERS = ["max_runners", "min_idle_runners", "runner_bootstrap_timeout", "priority"]


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(database_section, provider=PROVIDERS)


async def test_controller_backoff_out_of_range_is_400_and_changes_nothing(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    before = (await admin_client.get("/api/v1/controller-info")).json()
    log = ChangeLog(app)
    await log.mark()
    for value in OUT_OF_RANGE:
        response = await admin_client.put("/api/v1/controller", json={"minimum_job_age_backoff": value})
        assert (response.status_code, response.json()) == (400, INVALID), value
    assert await log.new() == []
    assert (await admin_client.get("/api/v1/controller-info")).json() == before


async def test_controller_backoff_at_the_column_maximum_is_stored(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.put("/api/v1/controller", json={"minimum_job_age_backoff": 2**31 - 1})
    assert response.status_code == 200, response.text
    assert response.json()["minimum_job_age_backoff"] == 2**31 - 1


async def test_every_pool_integer_out_of_range_is_400_on_create_and_update(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    creds = await create_credentials(admin_client)
    repo = await create_entity(admin_client, REPO, creds)
    created = await admin_client.post(f"/api/v1/repositories/{repo['id']}/pools", json=POOL_BODY)
    assert created.status_code == 200, created.text
    pool = created.json()
    log = ChangeLog(app)
    await log.mark()
    for field in POOL_INTEGERS:
        for value in OUT_OF_RANGE:
            body = {**POOL_BODY, field: value}
            response = await admin_client.post(f"/api/v1/repositories/{repo['id']}/pools", json=body)
            assert (response.status_code, response.json()["details"]) == (400, "invalid request"), (
                field,
                value,
            )
            for path in (
                f"/api/v1/pools/{pool['id']}",
                f"/api/v1/repositories/{repo['id']}/pools/{pool['id']}",
            ):
                response = await admin_client.put(path, json={field: value})
                assert (response.status_code, response.json()) == (400, INVALID), (path, field, value)
    assert await log.new() == []
    assert (await admin_client.get(f"/api/v1/pools/{pool['id']}")).json() == pool


@pytest.mark.parametrize("credentials_id", [str(2**31), str(2**63), str(2**64 - 1)])
async def test_credentials_ids_no_column_can_hold_are_not_found(
    app: FastAPI, admin_client: httpx.AsyncClient, credentials_id: str
) -> None:
    """``strconv.ParseUint`` accepts them (GARM), but no row can have them: 404 like any unknown ID,
    where SQLite's driver used to overflow (500)."""
    await create_credentials(admin_client)
    log = ChangeLog(app)
    await log.mark()
    path = f"/api/v1/github/credentials/{credentials_id}"
    for method, body in (("GET", None), ("PUT", {"description": "x"}), ("DELETE", None)):
        response = await admin_client.request(method, path, json=body)
        if method == "DELETE":
            assert response.status_code in (204, 404), response.text
        else:
            assert (response.status_code, response.json()) == (404, NOT_FOUND), method
    assert await log.new() == []


@pytest.mark.parametrize("duration", ["2562048h", "9999999999999h", "10000000000s"])
def test_durations_beyond_gos_range_are_config_errors(duration: str) -> None:
    """Go's ``ParseDuration`` refuses more than int64 nanoseconds (2562047h); such a retention used to fail
    the change-log pruner every hour (``datetime - timedelta`` overflow)."""
    with pytest.raises(ValueError, match="at most 2562047h"):
        parse_go_duration(duration)
    assert parse_go_duration("2562047h") == 2562047 * 3600


def test_an_events_queue_limit_beyond_reason_is_a_config_error() -> None:
    from pygarm.config import ConfigError, parse_settings
    from tests.conftest import TEST_JWT_SECRET, TEST_PASSPHRASE

    data: dict[str, Any] = {
        "jwt_auth": {"secret": TEST_JWT_SECRET},
        "database": {
            "backend": "sqlite3",
            "passphrase": TEST_PASSPHRASE,
            "sqlite3": {"db_file": "/x/garm.db"},
        },
        "events": {"queue_limit": 2**63},
    }
    with pytest.raises(ConfigError, match=r"events\.queue_limit: .*1000000"):
        parse_settings(data)
