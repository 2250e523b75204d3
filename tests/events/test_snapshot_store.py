"""The store's consistent snapshot (``pygarm.store.snapshot``) on both backends: each entity's payload is
what its events carry (so a mirror fed by snapshot + events is one rendering), batches page through
everything exactly once, and the position read with it is the log's head at that instant."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from pygarm.config import Settings
from pygarm.events.change import EntityType
from pygarm.store.instances import CreateInstanceParams, UpdateInstanceParams
from pygarm.store.snapshot import SnapshotReader
from tests.api.entity_support import (
    ORG,
    PROVIDERS,
    REPO,
    create_credentials,
    create_endpoint,
    create_entity,
    create_pool,
    store_of,
)
from tests.conftest import make_settings


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(database_section, provider=PROVIDERS)


async def read_all(
    reader: SnapshotReader, types: list[EntityType]
) -> tuple[int, list[tuple[EntityType, bytes]]]:
    async with reader.open(types) as cursor:
        frames = [item async for batch in cursor.batches() for item in batch]
        return cursor.seq, frames


async def latest_event_payloads(app: FastAPI) -> dict[tuple[str, str], bytes]:
    """The last create/update payload per (entity type, id or name) in the change log."""
    changes = await store_of(app).db.read_changes_after(0, 100_000)
    latest: dict[tuple[str, str], bytes] = {}
    for change in changes:
        key = orjson.loads(change.payload)
        ident = str(key.get("id") or key.get("name") or key.get("controller_id"))
        if change.operation.value == "delete":
            latest.pop((change.entity_type.value, ident), None)
        else:
            latest[(change.entity_type.value, ident)] = change.payload
    return latest


async def populate(app: FastAPI, http: httpx.AsyncClient) -> dict[str, Any]:
    await create_endpoint(http, "ghes.example.com")
    creds = await create_credentials(http)
    repo = await create_entity(http, REPO, creds)
    org = await create_entity(http, ORG, creds)
    pool = await create_pool(http, REPO, repo["id"])
    store = store_of(app)
    names = [f"garm-snap{i:02d}" for i in range(7)]
    for name in names:
        await store.create_instance(
            pool["id"], CreateInstanceParams(name=name, status="running", os_type="linux")
        )
    await store.update_instance(names[0], UpdateInstanceParams(runner_status="idle"))
    return {"repo": repo, "org": org, "pool": pool, "instances": names}


async def test_snapshot_payloads_are_the_event_renderings(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    made = await populate(app, admin_client)
    reader = SnapshotReader(store_of(app).db, batch=3)  # several pages per type
    seq, frames = await read_all(reader, list(EntityType))
    assert seq == await store_of(app).db.last_seq()

    by_type: dict[str, list[dict[str, Any]]] = {}
    for entity_type, payload in frames:
        by_type.setdefault(entity_type.value, []).append(orjson.loads(payload))
    assert [t.value for t, _ in frames] == sorted(
        (t.value for t, _ in frames),
        key=[
            "controller",
            "github_endpoint",
            "github_credentials",
            "user",
            "repository",
            "organization",
            "enterprise",
            "pool",
            "instance",
            "job",
        ].index,
    ), "referenced entities come first"

    latest = await latest_event_payloads(app)
    for entity_type, payload in frames:
        decoded = orjson.loads(payload)
        if entity_type is EntityType.POOL:
            response = await admin_client.get(f"/api/v1/pools/{decoded['id']}")
            assert payload == response.content.rstrip(b"\n"), "pool: GET /pools/{id} with its instances"
        elif entity_type is EntityType.INSTANCE:
            response = await admin_client.get(f"/api/v1/instances/{decoded['name']}")
            assert payload == response.content.rstrip(b"\n")
        elif entity_type in (EntityType.REPOSITORY, EntityType.ORGANIZATION):
            kind = "repositories" if entity_type is EntityType.REPOSITORY else "organizations"
            response = await admin_client.get(f"/api/v1/{kind}/{decoded['id']}")
            assert payload == response.content.rstrip(b"\n")
        else:
            ident = str(decoded.get("id") or decoded.get("name") or decoded.get("controller_id"))
            if (entity_type.value, ident) in latest:
                assert payload == latest[(entity_type.value, ident)], entity_type

    assert sorted(i["name"] for i in by_type["instance"]) == made["instances"]
    assert [p["id"] for p in by_type["pool"]] == [made["pool"]["id"]]
    assert {e["name"] for e in by_type["github_endpoint"]} == {"github.com", "ghes.example.com"}
    assert [c["name"] for c in by_type["github_credentials"]] == ["gh-pat"]
    assert len(by_type["controller"]) == 1 and by_type["controller"][0]["hostname"] == ""
    assert len(by_type["user"]) == 1 and "password" not in by_type["user"][0]
    assert "ghp_not-a-real-token" not in b"".join(p for _, p in frames).decode()


async def test_snapshot_reads_only_the_requested_types(app: FastAPI, admin_client: httpx.AsyncClient) -> None:
    await populate(app, admin_client)
    seq, frames = await read_all(SnapshotReader(store_of(app).db, batch=2), [EntityType.INSTANCE])
    assert {t for t, _ in frames} == {EntityType.INSTANCE} and len(frames) == 7
    seq_none, nothing = await read_all(SnapshotReader(store_of(app).db), [])
    assert nothing == [] and seq_none == seq


async def test_snapshot_is_one_view_while_writes_commit(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    """Writes that commit while a snapshot is being paged are neither in it nor in its position."""
    made = await populate(app, admin_client)
    store = store_of(app)
    async with SnapshotReader(store.db, batch=2).open([EntityType.INSTANCE]) as cursor:
        pages = cursor.batches()
        first = await anext(pages)
        pool_id = made["pool"]["id"]
        for i in range(3):
            await store.create_instance(pool_id, CreateInstanceParams(name=f"garm-late{i}", status="running"))
        await store.update_instance(made["instances"][-1], UpdateInstanceParams(runner_status="active"))
        rest = [item async for batch in pages for item in batch]
        position = cursor.seq
    names = [orjson.loads(p)["name"] for _, p in first + rest]
    assert sorted(names) == made["instances"], "nothing created after the snapshot began"
    last = orjson.loads(next(p for _, p in first + rest if b"garm-snap06" in p))
    assert last.get("runner_status", "") == "", "the later update is not visible either"
    assert position < await store.db.last_seq()
    later = await store.db.read_changes_after(position, 100)
    assert len(later) == 4, "every change after the position is one of the four later writes"
