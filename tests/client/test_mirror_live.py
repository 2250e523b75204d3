"""The state mirror against live servers: it equals the REST lists after churn, across a server restart
(resumed, no new snapshot) and after the log was pruned while it was away (a new snapshot, the changes
reported); the asyncio face; the typed events stream with ``snapshot=True``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from pygarm.client import AsyncGarmClient, AsyncStateMirror, Control, GarmClient, StateMirror
from pygarm.config import Settings
from tests.client.mirror_support import WAIT_S, catch_up, endpoints_by_name, mirrored
from tests.client.test_events_live import endpoint, endpoint_churn
from tests.live import LiveServer, run_live_server

pytestmark = pytest.mark.timeout(120)
FILTERS = ["github_endpoint", "controller"]


def test_snapshot_frames_then_snapshot_end(live_admin: tuple[LiveServer, str]) -> None:
    live, token = live_admin
    controls: list[Control] = []
    with GarmClient(live.base_url, token) as garm:
        garm.create_github_endpoint(endpoint("s.example.com"))
        stream = garm.events({"github_endpoint": None}, snapshot=True, on_control=controls.append)
        got = []
        for event in stream:
            got.append((str(event.operation), getattr(event.payload, "name", "")))
            if controls:
                break
            if len(got) == 2:
                garm.create_github_endpoint(endpoint("live.example.com"))
        stream.close()
    assert sorted(got[:2]) == [("snapshot", "github.com"), ("snapshot", "s.example.com")]
    assert got[2:] == [("create", "live.example.com")]
    assert [c.kind for c in controls] == ["snapshot-end"]


def test_mirror_equals_rest_after_churn_and_a_restart(
    live_admin: tuple[LiveServer, str], settings: Settings
) -> None:
    live, token = live_admin
    notes: list[tuple[str, str]] = []
    with GarmClient(live.base_url, token) as garm, StateMirror(garm, FILTERS) as mirror:
        mirror.on_change(lambda entity, op, _payload: notes.append((entity, op)))
        assert mirror.ready and mirror.seq is not None
        assert mirrored(mirror, "github_endpoint") == endpoints_by_name(garm)
        endpoint_churn(garm)
        garm.create_github_endpoint(endpoint("kept.example.com"))
        catch_up(garm, mirror)
        assert mirrored(mirror, "github_endpoint") == endpoints_by_name(garm)

        live.stop()
        with run_live_server(settings) as other, GarmClient(other.base_url, token) as away:
            away.delete_github_endpoint("kept.example.com")
            away.create_github_endpoint(endpoint("away.example.com"))
        with run_live_server(settings, port=live.port):
            catch_up(garm, mirror)
            assert mirrored(mirror, "github_endpoint") == endpoints_by_name(garm)
            assert set(mirror.state["github_endpoint"]) == {"github.com", "away.example.com"}
    assert mirror.error is None
    endpoint_notes = [op for entity, op in notes if entity == "github_endpoint"]
    assert endpoint_notes == ["create", "update", "create", "delete", "delete", "create", "delete", "create"]


def test_mirror_takes_a_new_snapshot_after_4001(
    live_admin: tuple[LiveServer, str], settings: Settings
) -> None:
    live, token = live_admin
    notes: list[tuple[str, str, str]] = []
    with GarmClient(live.base_url, token) as garm, StateMirror(garm, FILTERS) as mirror:
        garm.create_github_endpoint(endpoint("old.example.com"))
        catch_up(garm, mirror)
        mirror.on_change(lambda entity, op, payload: notes.append((entity, op, getattr(payload, "name", ""))))
        live.stop()
        with run_live_server(settings) as other, GarmClient(other.base_url, token) as away:
            away.delete_github_endpoint("old.example.com")
            away.create_github_endpoint(endpoint("new.example.com"))
            future = datetime.now(UTC) + timedelta(days=1)
            assert other.call(other.app.state.ctx.store.db.prune_changes(future)).result(timeout=10) > 0
        with run_live_server(settings, port=live.port):
            mirror.wait_for(lambda m: "new.example.com" in m.state.get("github_endpoint", {}), WAIT_S)
            assert mirrored(mirror, "github_endpoint") == endpoints_by_name(garm)
    endpoint_notes = sorted(note[1:] for note in notes if note[0] == "github_endpoint")
    assert endpoint_notes == [("delete", "old.example.com"), ("snapshot", "new.example.com")]


def test_async_mirror(live_admin: tuple[LiveServer, str]) -> None:
    live, token = live_admin

    async def main() -> tuple[set[str], set[str]]:
        async with (
            AsyncGarmClient(live.base_url, token) as garm,
            AsyncStateMirror(garm, {"github_endpoint": None}) as mirror,
        ):
            await garm.create_github_endpoint(endpoint("async.example.com"))
            await mirror.wait_for(lambda m: "async.example.com" in m.state["github_endpoint"], WAIT_S)
            rest = {e.name for e in await garm.list_github_endpoints()}
            return set(mirror.state["github_endpoint"]), rest

    mirrored_names, rest_names = asyncio.run(asyncio.wait_for(main(), 60))
    assert mirrored_names == rest_names == {"github.com", "async.example.com"}


def test_match_mirrors_one_name(live_admin: tuple[LiveServer, str]) -> None:
    live, token = live_admin
    with GarmClient(live.base_url, token) as garm:
        garm.create_github_endpoint(endpoint("one.example.com"))
        garm.create_github_endpoint(endpoint("two.example.com"))
        with StateMirror(garm, {"github_endpoint": None}, match={"name": "two.example.com"}) as mirror:
            assert set(mirror.state.get("github_endpoint", {})) == {"two.example.com"}
            garm.update_github_endpoint("one.example.com", description="x")
            garm.update_github_endpoint("two.example.com", description="y")
            mirror.wait_for(
                lambda m: m.state["github_endpoint"]["two.example.com"].description == "y",  # type: ignore[union-attr]
                WAIT_S,
            )
            assert set(mirror.state["github_endpoint"]) == {"two.example.com"}
