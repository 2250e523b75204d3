"""Instances and jobs: the store the runner lifecycle uses, and the REST routes that read and mark them
(docs/garm-protocol.md#entity-shapes, docs/garm-protocol.md#route-rules,
docs/garm-protocol.md#which-operations-emit-events, docs/garm-protocol.md#pool-managers,
docs/garm-protocol.md#job-records). No pool manager exists yet, so the instances and jobs are written through
the store directly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from pygarm.config import Settings
from pygarm.errors import ConflictError, NotFoundError
from pygarm.params.gojson import ZERO_UUID
from pygarm.params.models import Address, Job, PoolManagerStatus
from pygarm.store.instances import CreateInstanceParams, NewStatusMessage, UpdateInstanceParams
from tests.api.entity_support import (
    INSTANCE_FULL_KEYS,
    JOB_KEYS,
    ORG,
    PROVIDERS,
    REPO,
    ChangeLog,
    assert_event_is_get,
    create_credentials,
    create_entity,
    create_pool,
    install_pool_managers,
    store_of,
)
from tests.conftest import make_settings


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(database_section, provider=PROVIDERS)


@pytest.fixture
async def setup(admin_client: httpx.AsyncClient) -> dict[str, Any]:
    """A repository with one pool."""
    creds = await create_credentials(admin_client)
    repo = await create_entity(admin_client, REPO, creds)
    pool = await create_pool(admin_client, REPO, repo["id"])
    return {"repo": repo, "pool": pool, "creds": creds}


def new_instance(
    name: str = "garm-AbC123", status: str = "pending_create", **kw: Any
) -> CreateInstanceParams:
    return CreateInstanceParams(
        name=name, status=status, runner_status="pending", os_type="linux", os_arch="amd64", **kw
    )


def workflow_job(job_id: int, repo_id: str, **changes: Any) -> Job:
    fields: dict[str, Any] = {
        "id": job_id,
        "run_id": 99,
        "action": "queued",
        "status": "queued",
        "name": "build",
        "repository_name": "hello-world",
        "repository_owner": "octo-org",
        "labels": ["self-hosted", "linux"],
        "repo_id": repo_id,
    }
    fields.update(changes)
    return Job(**fields)


async def test_instance_create_update_events(
    app: FastAPI, admin_client: httpx.AsyncClient, setup: dict[str, Any]
) -> None:
    """docs/garm-protocol.md#which-operations-emit-events: ``instance/create`` and each ``instance/update``
    carry what ``GET /instances/{name}`` shows; docs/garm-protocol.md#instance: the full rendering has
    addresses and status messages, in Go key order."""
    store = store_of(app)
    path = "/api/v1/instances/garm-AbC123"
    log = ChangeLog(app)
    await log.mark()
    created = await store.create_instance(
        setup["pool"]["id"], new_instance(jit_configuration={".runner": "c2VjcmV0"}, aditional_labels=["x:1"])
    )
    await assert_event_is_get(log, admin_client, "instance", "create", path)
    assert created.status == "pending_create" and created.pool_id == setup["pool"]["id"]
    await store.update_instance(
        "garm-AbC123",
        UpdateInstanceParams(
            provider_id="prov-1",
            os_name="ubuntu",
            os_version="22.04",
            status="running",
            provider_fault=b"boom",
            addresses=[Address(address="10.0.0.5", type="private")],
        ),
        status_message=NewStatusMessage(message="booting"),
    )
    payload = await assert_event_is_get(log, admin_client, "instance", "update", path)
    body = (await admin_client.get(path)).json()
    assert list(body) == [key for key in INSTANCE_FULL_KEYS if key != "job"]
    assert body["addresses"] == [{"address": "10.0.0.5", "type": "private"}]
    assert body["provider_fault"] == "Ym9vbQ=="  # []byte → base64 (docs/garm-protocol.md#json-encoding)
    assert [m["message"] for m in body["status_messages"]] == ["booting"]
    assert list(body["status_messages"][0]) == ["created_at", "message", "event_type", "event_level"]
    assert b"c2VjcmV0" not in payload and b".runner" not in payload
    # Zero values leave fields alone, the fault is always overwritten, addresses replaced only if given.
    updated = await store.update_instance("garm-AbC123", UpdateInstanceParams(runner_status="idle"))
    assert (updated.status, updated.provider_id, updated.provider_fault) == ("running", "prov-1", None)
    assert updated.addresses == [Address(address="10.0.0.5", type="private")]
    await assert_event_is_get(log, admin_client, "instance", "update", path)
    await store.add_instance_status_message("garm-AbC123", NewStatusMessage(message="idle now"))
    await assert_event_is_get(log, admin_client, "instance", "update", path)
    record = await store.get_instance_record("garm-AbC123")
    assert record.jit_configuration == {".runner": "c2VjcmV0"} and record.aditional_labels == ["x:1"]
    assert (record.provider_name, record.runner_bootstrap_timeout) == ("lxd_local", 20)


async def test_instance_lists(app: FastAPI, admin_client: httpx.AsyncClient, setup: dict[str, Any]) -> None:
    """docs/garm-protocol.md#rest-routes: lists are ``[]`` when empty and omit addresses/status messages; the
    entity list 404s for an unknown entity; the pool list does not check the pool (as GARM)."""
    store = store_of(app)
    pool_path = f"/api/v1/pools/{setup['pool']['id']}/instances"
    repo_path = f"/api/v1/repositories/{setup['repo']['id']}/instances"
    for path in ("/api/v1/instances", pool_path, repo_path):
        assert (await admin_client.get(path)).content == b"[]\n"
    await store.create_instance(setup["pool"]["id"], new_instance("garm-1"))
    await store.create_instance(setup["pool"]["id"], new_instance("garm-2"))
    await store.update_instance(
        "garm-1", UpdateInstanceParams(addresses=[Address(address="1.2.3.4", type="public")]),
        status_message=NewStatusMessage(message="hi"),
    )  # fmt: skip
    for path in ("/api/v1/instances", pool_path, repo_path):
        listed = (await admin_client.get(path)).json()
        assert [item["name"] for item in listed] == ["garm-1", "garm-2"]
        assert all("addresses" not in item and "status_messages" not in item for item in listed)
    unknown = "00000000-0000-0000-0000-00000000000c"
    assert (await admin_client.get(f"/api/v1/pools/{unknown}/instances")).content == b"[]\n"
    assert (await admin_client.get(f"/api/v1/organizations/{unknown}/instances")).status_code == 404
    assert (await admin_client.get("/api/v1/pools/nope/instances")).status_code == 400
    org = await create_entity(admin_client, ORG, setup["creds"])
    assert (await admin_client.get(f"/api/v1/organizations/{org['id']}/instances")).content == b"[]\n"
    response = await admin_client.get("/api/v1/instances/garm-404")
    assert response.status_code == 404 and response.json() == {"error": "Not Found", "details": "not found"}


async def test_instance_uniqueness(app: FastAPI, setup: dict[str, Any]) -> None:
    """docs/garm-protocol.md#runner-names-and-labels, docs/garm-protocol.md#provider-create: names and
    provider IDs are unique; an unknown pool is 404."""
    store = store_of(app)
    await store.create_instance(setup["pool"]["id"], new_instance("garm-1"))
    await store.create_instance(setup["pool"]["id"], new_instance("garm-2"))
    with pytest.raises(ConflictError):
        await store.create_instance(setup["pool"]["id"], new_instance("garm-1"))
    await store.update_instance("garm-1", UpdateInstanceParams(provider_id="p-1"))
    with pytest.raises(ConflictError):
        await store.update_instance("garm-2", UpdateInstanceParams(provider_id="p-1"))
    with pytest.raises(NotFoundError):
        await store.create_instance("00000000-0000-0000-0000-00000000000d", new_instance("garm-3"))
    with pytest.raises(NotFoundError):
        await store.update_instance("garm-3", UpdateInstanceParams(status="running"))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?bypassGHUnauthorized=true", "pending_delete"),
        ("?bypassGHUnauthorized=1&forceRemove=T", "pending_force_delete"),
        ("?bypassGHUnauthorized=True&forceRemove=yes", "pending_delete"),
        ("?bypassGHUnauthorized=t&bypassGHUnauthorized=false&forceRemove=TRUE", "pending_force_delete"),
    ],
)
async def test_delete_route_marks(
    app: FastAPI, admin_client: httpx.AsyncClient, setup: dict[str, Any], query: str, expected: str
) -> None:
    """docs/garm-protocol.md#rest-routes: ``DELETE /instances/{name}`` marks the runner (one
    ``instance/update`` == GET) and answers 200 empty; flags are read with ``strconv.ParseBool`` on the first
    value (invalid = false)."""
    store = store_of(app)
    await store.create_instance(setup["pool"]["id"], new_instance(status="running"))
    log = ChangeLog(app)
    await log.mark()
    response = await admin_client.delete("/api/v1/instances/garm-AbC123" + query)
    assert response.status_code == 200 and response.content == b""
    payload = await assert_event_is_get(
        log, admin_client, "instance", "update", "/api/v1/instances/garm-AbC123"
    )
    assert (await store.get_instance("garm-AbC123")).status == expected
    assert b'"status":"' + expected.encode() + b'"' in payload


async def test_delete_route_checks(
    app: FastAPI, admin_client: httpx.AsyncClient, setup: dict[str, Any]
) -> None:
    """docs/garm-protocol.md#route-rules: unknown → 404; wrong status → 400 with GARM's list; no running pool
    manager → 409 unless ``bypassGHUnauthorized`` (pygarm has no pool managers yet); failures emit nothing."""
    store = store_of(app)
    await store.create_instance(setup["pool"]["id"], new_instance("garm-new", status="pending_create"))
    await store.create_instance(setup["pool"]["id"], new_instance("garm-err", status="error"))
    log = ChangeLog(app)
    await log.mark()
    response = await admin_client.delete("/api/v1/instances/garm-none?bypassGHUnauthorized=true")
    assert response.status_code == 404
    response = await admin_client.delete("/api/v1/instances/garm-new?bypassGHUnauthorized=true")
    assert response.status_code == 400
    assert response.json()["details"] == (
        "runner must be in one of the following states: "
        '"running, error, pending_force_delete, pending_delete"'
    )
    response = await admin_client.delete("/api/v1/instances/garm-err")
    assert response.status_code == 409
    repo = setup["repo"]
    assert response.json() == {
        "error": "Conflict",
        "details": f"pool manager is not running for {repo['owner']}/{repo['name']}",
    }
    assert await log.new() == []


async def test_store_delete_instance(
    app: FastAPI, admin_client: httpx.AsyncClient, setup: dict[str, Any]
) -> None:
    """docs/garm-protocol.md#delete-pending: a hard delete emits ``instance/delete`` with the last state
    (superset of GARM's partial payload, docs/garm-protocol.md#delete-payloads); linked jobs go too (GARM's
    cascade), each with ``job/delete``; idempotent."""
    store = store_of(app)
    await store.create_instance(setup["pool"]["id"], new_instance(status="running"))
    await store.create_or_update_job(workflow_job(7, setup["repo"]["id"], runner_name="garm-AbC123"))
    last = await admin_client.get("/api/v1/instances/garm-AbC123")
    log = ChangeLog(app)
    await log.mark()
    assert await store.delete_instance("garm-AbC123", pool_id="00000000-0000-0000-0000-00000000000e") is None
    deleted = await store.delete_instance("garm-AbC123", pool_id=setup["pool"]["id"])
    assert deleted is not None and deleted.job is not None and deleted.job.id == 7
    changes = await log.new()
    assert [(c.entity_type.value, c.operation.value) for c in changes] == [
        ("job", "delete"),
        ("instance", "delete"),
    ]
    assert changes[1].payload == last.content[:-1]
    assert await store.delete_instance("garm-AbC123") is None
    assert await log.new() == []
    assert (await admin_client.get("/api/v1/jobs")).content == b"[]\n"


async def test_jobs_lifecycle(app: FastAPI, admin_client: httpx.AsyncClient, setup: dict[str, Any]) -> None:
    """docs/garm-protocol.md#job key order; docs/garm-protocol.md#job-records: create copies everything,
    update changes only some fields and links the runner; each write is one ``job/*`` event equal to the job
    in ``GET /jobs``."""
    store = store_of(app)
    repo_id = setup["repo"]["id"]
    assert (await admin_client.get("/api/v1/jobs")).content == b"[]\n"
    log = ChangeLog(app)
    await log.mark()
    await store.create_or_update_job(workflow_job(1234567, repo_id))
    change = await log.single("job", "create")
    listed = (await admin_client.get("/api/v1/jobs")).json()
    assert [list(job) for job in listed] == [JOB_KEYS]
    job = listed[0]
    assert job["LockedBy"] == ZERO_UUID and job["StartedAt"] == "0001-01-01T00:00:00Z"
    assert job["Labels"] == ["self-hosted", "linux"] and job["runner_name"] == ""
    assert change.payload == (await admin_client.get("/api/v1/jobs")).content[1:-2]
    await store.create_instance(setup["pool"]["id"], new_instance(status="running"))
    started = datetime(2024, 7, 1, 10, 11, 12, 123456, tzinfo=UTC)
    await log.mark()
    updated = await store.create_or_update_job(
        workflow_job(
            1234567, repo_id, action="in_progress", status="in_progress", name="renamed", labels=["other"],
            runner_name="garm-AbC123", started_at=started, runner_id=42,
        )
    )  # fmt: skip
    change = await log.single("job", "update")
    assert (updated.name, updated.labels, updated.runner_name) == (
        "build",
        ["self-hosted", "linux"],
        "garm-AbC123",
    )
    assert (updated.status, updated.runner_id, updated.started_at) == ("in_progress", 42, started)
    assert change.payload == (await admin_client.get("/api/v1/jobs")).content[1:-2]
    body = (await admin_client.get("/api/v1/instances/garm-AbC123")).json()
    assert body["job"]["id"] == 1234567 and body["job"]["StartedAt"] == "2024-07-01T10:11:12.123456Z"


async def test_job_locks(app: FastAPI, setup: dict[str, Any]) -> None:
    """docs/garm-protocol.md#job-records, docs/garm-protocol.md#job-queue: lock/unlock by entity, 409 for
    another entity's lock, no-ops emit nothing."""
    store = store_of(app)
    repo_id = setup["repo"]["id"]
    other = "11111111-1111-1111-1111-111111111111"
    await store.create_or_update_job(workflow_job(1, repo_id))
    log = ChangeLog(app)
    await log.mark()
    assert (await store.lock_job(1, repo_id)).locked_by == repo_id
    await log.single("job", "update")
    await store.lock_job(1, repo_id)
    with pytest.raises(ConflictError, match=f"job is locked by another entity {repo_id}"):
        await store.lock_job(1, other)
    with pytest.raises(ConflictError):
        await store.unlock_job(1, other)
    assert await log.new() == []
    assert (await store.unlock_job(1, repo_id)).locked_by == ZERO_UUID
    await log.single("job", "update")
    await store.unlock_job(1, repo_id)
    await store.lock_job(1, other)
    await log.mark()
    assert (await store.break_lock_job_is_queued(1)).locked_by == ZERO_UUID  # type: ignore[union-attr]
    await log.single("job", "update")
    assert await store.break_lock_job_is_queued(404) is None
    with pytest.raises(NotFoundError):
        await store.lock_job(404, repo_id)


async def test_job_deletes(app: FastAPI, admin_client: httpx.AsyncClient, setup: dict[str, Any]) -> None:
    """``delete_job`` and ``delete_completed_jobs`` emit one ``job/delete`` (last state) per job."""
    store = store_of(app)
    repo_id = setup["repo"]["id"]
    for job_id, status in ((1, "queued"), (2, "completed"), (3, "completed")):
        await store.create_or_update_job(workflow_job(job_id, repo_id, status=status))
    queued = await store.list_entity_jobs_by_status(REPO.enum, repo_id, "queued")
    assert [job.id for job in queued] == [1]
    before = (await admin_client.get("/api/v1/jobs")).json()
    log = ChangeLog(app)
    await log.mark()
    assert await store.delete_completed_jobs() == 2
    changes = await log.new()
    assert [(c.entity_type.value, c.operation.value) for c in changes] == [("job", "delete")] * 2
    by_id = {job["id"]: job for job in before}
    assert [orjson.loads(c.payload) for c in changes] == [by_id[2], by_id[3]]
    assert all(list(orjson.loads(c.payload)) == JOB_KEYS for c in changes)
    assert [job["id"] for job in (await admin_client.get("/api/v1/jobs")).json()] == [1]
    deleted = await store.delete_job(1)
    assert deleted is not None and deleted.id == 1
    await log.single("job", "delete")
    assert await store.delete_job(1) is None
    assert await log.new() == []


async def test_delete_route_with_pool_managers(
    app: FastAPI, admin_client: httpx.AsyncClient, setup: dict[str, Any]
) -> None:
    """docs/garm-protocol.md#deleterunner: after the status check the route hands the delete to the pool
    managers (which unregister the runner from GitHub and apply the 409 rule), with GARM's query flags."""
    store = store_of(app)
    await store.create_instance(setup["pool"]["id"], new_instance(status="running"))
    managers = install_pool_managers(app, {setup["repo"]["id"]: PoolManagerStatus(running=True)})
    response = await admin_client.delete("/api/v1/instances/garm-AbC123?forceRemove=true")
    assert response.status_code == 200 and response.content == b""
    response = await admin_client.delete("/api/v1/instances/garm-AbC123?bypassGHUnauthorized=1")
    assert response.status_code == 200
    assert managers.deleted == [("garm-AbC123", True, False), ("garm-AbC123", False, True)]
