"""The lease statements on a real PostgreSQL (``store/leases.py``): one holder per key by the database
clock, renewal by the holder only, release and shutdown; and the app electing its fleet-wide loops."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest

from pygarm.api.app import create_app
from pygarm.api.fleet import PRUNER_LEASE
from pygarm.runner.leases import LeaderDriver
from pygarm.store.leases import PostgresLeases
from tests.conftest import TEST_PASSPHRASE, make_settings


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
def dsn(database_section: dict[str, Any]) -> str:
    return str(database_section["postgresql"]["dsn"])


async def test_one_holder_per_key_until_its_lease_expires(dsn: str) -> None:
    a, b = PostgresLeases(dsn, "a", "host:1"), PostgresLeases(dsn, "b", "host:2")
    try:
        assert await a.claim(0.5, [("k1", '{"running":true}'), ("k2", None)]) == {"k1", "k2"}
        assert await b.claim(60, [("k1", None)]) == set()
        assert await a.claim(0.5, [("k1", None)]) == {"k1"}  # the holder renews
        snapshot = await b.heartbeat_and_read(60)
        assert {key: (row.holder, row.expired) for key, row in snapshot.leases.items()} == {
            "k1": ("a", False),
            "k2": ("a", False),
        }
        assert [(r.id, r.name, r.live) for r in snapshot.replicas] == [("b", "host:2", True)]
        deadline = time.monotonic() + 10
        while not await b.claim(60, [("k1", None)]):  # a stopped renewing: expiry by the db clock
            assert time.monotonic() < deadline, "expired lease was never claimable"
            await asyncio.sleep(0.05)
        assert await a.claim(60, [("k1", None)]) == set()
    finally:
        await a.close()
        await b.close()


async def test_release_and_leave_free_keys_at_once(dsn: str) -> None:
    a, b = PostgresLeases(dsn, "a", "host:1"), PostgresLeases(dsn, "b", "host:2")
    try:
        await a.heartbeat_and_read(60)
        assert await a.claim(60, [("k1", None), ("k2", None), ("k3", None)]) == {"k1", "k2", "k3"}
        await b.release(["k1"])  # not b's: nothing happens
        assert await b.claim(60, [("k1", None)]) == set()
        await a.release(["k1"])
        assert await b.claim(60, [("k1", None)]) == {"k1"}
        await a.leave()
        assert await b.claim(60, [("k2", None), ("k3", None)]) == {"k2", "k3"}
        snapshot = await b.heartbeat_and_read(60)
        assert {row.holder for row in snapshot.leases.values()} == {"b"}
        assert [r.id for r in snapshot.replicas] == ["b"]
    finally:
        await a.close()
        await b.close()


async def test_app_leads_its_fleet_loops_and_releases_them_on_shutdown(
    database_section: dict[str, Any], dsn: str
) -> None:
    app = create_app(make_settings(database_section))
    async with app.router.lifespan_context(app):
        driver = app.state.leadership
        assert isinstance(driver, LeaderDriver)
        assert PRUNER_LEASE in driver.acting()
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT key, holder FROM leader_leases").fetchall()
        assert rows == [(PRUNER_LEASE, driver.me)]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM leader_leases").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM replicas").fetchone() == (0,)


async def test_sqlite_app_runs_everything_without_leases(tmp_path: Any, migrated_templates: Any) -> None:
    db_file = tmp_path / "garm.db"
    migrated_templates.sqlite_file(db_file)
    section = {"backend": "sqlite3", "passphrase": TEST_PASSPHRASE}
    app = create_app(make_settings({**section, "sqlite3": {"db_file": str(db_file)}}))
    async with app.router.lifespan_context(app):
        assert app.state.leadership is None


async def test_leadership_route_shows_this_replica_and_its_leases(
    database_section: dict[str, Any],
) -> None:
    import httpx

    from tests.conftest import initialize

    app = create_app(make_settings(database_section))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9997") as http:
            token = await initialize(http)
            assert (await http.get("/api/v1/pygarm/leadership")).status_code == 401
            headers = {"Authorization": f"Bearer {token}"}
            deadline = time.monotonic() + 10
            while True:  # the first tick read the table before its own claim; the next one sees it
                answer = await http.get("/api/v1/pygarm/leadership", headers=headers)
                if answer.status_code != 200 or answer.json()["leases"] or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
        assert answer.status_code == 200
        body = answer.json()
        me = app.state.leadership.me
        assert (body["mode"], body["replica"], body["acting"]) == ("replicas", me, [PRUNER_LEASE])
        assert body["leases"] == [{"key": PRUNER_LEASE, "holder": me, "expired": False}]
        assert [(r["id"], r["live"]) for r in body["replicas"]] == [(me, True)]
