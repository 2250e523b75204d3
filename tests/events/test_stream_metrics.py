"""``pygarm_*`` families on ``/metrics`` (docs/observability.md#pygarm-families): what a live server
counts for its change log, writer, hub, stream subscribers and HTTP requests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from websockets.asyncio.client import connect

from pygarm.config import Settings
from pygarm.events.change import EntityType, Operation
from pygarm.events.extensions import StreamOptions
from pygarm.events.hub import Hub
from pygarm.events.metrics import StreamCollector, opt_ins
from tests.api.metrics_support import Family, parse_exposition
from tests.conftest import make_settings
from tests.events.helpers import FakeLog, make_change
from tests.events.test_sse import CONTROLLER, next_event, sse_events
from tests.live import HTTP_TIMEOUT_S

RECV_TIMEOUT_S = 10.0


@pytest.fixture
def settings(database_section: dict[str, Any]) -> Settings:
    return make_settings(database_section, metrics={"enable": True, "disable_auth": True, "period": "1h"})


def value(families: dict[str, Family], name: str, **labels: str) -> float:
    for family in families.values():
        for sample_name, sample_labels, sample_value in family.samples:
            if sample_name == name and sample_labels == labels:
                return sample_value
    raise AssertionError(f"no {name}{labels}")


async def test_hub_counts_once_per_change_and_sums_deliveries() -> None:
    """Three subscribers, two changes: 2 dispatches, 6 frames; a full queue is a slow-consumer close."""
    log = FakeLog()
    hub = Hub(log.read_changes_after, 0, queue_limit=16, poll_interval=None)
    subscriptions = [hub.subscribe(f"s{i}", queue_limit=16 if i else 1) for i in range(3)]
    for subscription in subscriptions:
        subscription.set_filter(frozenset({(EntityType.POOL, Operation.UPDATE)}))
    hub.publish([make_change(1, EntityType.POOL, Operation.UPDATE)])
    hub.publish([make_change(2, EntityType.POOL, Operation.UPDATE)])
    hub.publish([make_change(3, EntityType.JOB, Operation.CREATE)])  # nobody wants it
    stats = hub.stats
    assert (stats.dispatched, stats.frames_delivered, stats.slow_consumer_closes) == (3, 5, 1)
    assert stats.dispatch.count == 3 and stats.dispatch.sum >= 0


async def test_live_server_families(live_admin: tuple[Any, str]) -> None:
    live, token = live_admin
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, base_url=live.base_url, headers=headers) as http:
        plain = await connect(f"{live.ws_url}/api/v1/ws/events", additional_headers=headers, compression=None)
        with_seq = await connect(
            f"{live.ws_url}/api/v1/ws/events?seq=true&since=0", additional_headers=headers, compression=None
        )
        for ws in (plain, with_seq):
            await ws.send('{"send-everything":true}')
        # Wait until both filters are applied: each socket sees a controller update.
        async with asyncio.timeout(RECV_TIMEOUT_S):
            while True:
                response = await http.put("/api/v1/controller", json={"minimum_job_age_backoff": 77})
                assert response.status_code == 200
                try:
                    async with asyncio.timeout(0.5):
                        frame = json.loads(await plain.recv())
                        if frame["entity-type"] == "controller":
                            break
                except TimeoutError:
                    continue
            while True:  # the resuming socket: its replay comes first, then the same live update
                frame = json.loads(await with_seq.recv())
                if frame["entity-type"] == "controller" and frame["seq"] > 1:
                    break
        async with asyncio.timeout(RECV_TIMEOUT_S):  # the replay is counted once it was sent
            while True:
                scraped = await http.get("/metrics")
                assert scraped.status_code == 200
                families = parse_exposition(scraped.text)
                if value(families, "pygarm_events_replay_duration_seconds_count") == 1.0:
                    break
                await asyncio.sleep(0.05)
        assert value(families, "pygarm_events_subscribers", seq="false", resume="false", snapshot="false",
                     ack="false", bookmark="false") == 1.0  # fmt: skip
        assert value(families, "pygarm_events_subscribers", seq="true", resume="true", snapshot="false",
                     ack="false", bookmark="false") == 1.0  # fmt: skip
        assert value(families, "pygarm_events_resumes_total") == 1.0
        assert value(families, "pygarm_events_resume_unavailable_total") == 0.0
        assert value(families, "pygarm_events_frames_delivered_total") >= 2.0
        dispatched = value(families, "pygarm_events_dispatched_total")
        assert dispatched >= 2.0
        assert value(families, "pygarm_events_dispatch_duration_seconds_count") == dispatched
        assert (
            value(families, "pygarm_changelog_appended_total", entity_type="controller", operation="update")
            >= 1
        )
        head = value(families, "pygarm_changelog_head_seq")
        assert head >= dispatched and 1.0 <= value(families, "pygarm_changelog_oldest_seq") <= head
        assert value(families, "pygarm_writer_queue_depth") == 0.0
        assert value(families, "pygarm_writer_transaction_duration_seconds_count") >= 3.0  # first-run, login…
        assert families["pygarm_http_requests_total"].type == "counter"
        assert (
            value(
                families, "pygarm_http_requests_total", method="PUT", route="/api/v1/controller", code="200"
            )
            >= 1
        )
        await plain.close()
        await with_seq.close()
        # Connections closed: the subscriber gauge drops, and each websocket is counted with its 101.
        ws_route = {"method": "GET", "route": "/api/v1/ws/events", "code": "101"}
        async with asyncio.timeout(RECV_TIMEOUT_S):
            while True:
                families = parse_exposition((await http.get("/metrics")).text)
                closed = not families["pygarm_events_subscribers"].samples  # zero series are not exposed
                if (
                    closed
                    and ("pygarm_http_requests_total", ws_route, 2.0)
                    in families["pygarm_http_requests_total"].samples
                ):
                    break
                await asyncio.sleep(0.05)
                await asyncio.sleep(0.05)


async def test_sse_subscribers_and_snapshots_are_counted(live_admin: tuple[Any, str]) -> None:
    live, token = live_admin
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/events/stream?snapshot=true&filter={CONTROLLER}"
    async with (
        httpx.AsyncClient(base_url=live.base_url, timeout=10) as http,
        http.stream("GET", url, headers=headers) as response,
    ):
        events = sse_events(response)
        snapshot = await next_event(events)
        assert json.loads(snapshot["data"])["operation"] == "snapshot"
        end = await next_event(events)
        assert json.loads(end["data"])["control"] == "snapshot-end"
        async with asyncio.timeout(RECV_TIMEOUT_S):  # counted once the snapshot was sent
            while True:
                families = parse_exposition((await http.get("/metrics")).text)
                if value(families, "pygarm_events_snapshot_duration_seconds_count") == 1.0:
                    break
                await asyncio.sleep(0.05)
        series = families["pygarm_events_subscribers"].series()
        assert [(labels["snapshot"], count) for labels, count in series] == [("true", 1.0)]


def test_two_slow_subscribers_are_two_closes() -> None:
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None)
    for name in ("a", "b"):
        hub.subscribe(name, queue_limit=1).set_filter(frozenset({(EntityType.POOL, Operation.UPDATE)}))
    hub.publish([make_change(n, EntityType.POOL, Operation.UPDATE) for n in (1, 2)])
    assert hub.stats.slow_consumer_closes == 2


def test_collector_exposition_names_help_and_values() -> None:
    """The families as a scrape shows them, with each figure in its own family (docs/observability.md)."""
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None)
    hub.subscribe("guard")
    stats = hub.stats
    stats.subscribers[opt_ins(StreamOptions(with_seq=True, since=4))] = 2
    stats.subscribers[opt_ins(StreamOptions())] = 0  # none connected: no sample
    stats.dispatched, stats.frames_delivered, stats.slow_consumer_closes = 4, 9, 2
    stats.resumes, stats.resume_unavailable = 3, 1
    stats.dispatch.observe(0.0001)
    stats.snapshots.observe(0.3)
    stats.replays.observe(2.0)
    registry = CollectorRegistry()
    registry.register(StreamCollector(hub))
    lines = generate_latest(registry).decode().splitlines()
    assert [line for line in lines if line.startswith("# HELP")] == [
        "# HELP pygarm_events_subscribers Events stream subscribers connected, by the extensions they"
        " asked for",
        "# HELP pygarm_events_hub_subscriptions Hub subscriptions, stream subscribers and in-process ones"
        " (pool managers, access guard)",
        "# HELP pygarm_events_dispatched_total Changes the hub dispatched",
        "# HELP pygarm_events_frames_delivered_total Live event frames handed to subscribers' queues"
        " (summed per change)",
        "# HELP pygarm_events_slow_consumer_closes_total Subscribers closed because their queue was full"
        " (close 4000)",
        "# HELP pygarm_events_resumes_total Stream connections that resumed with since=",
        "# HELP pygarm_events_resume_unavailable_total Resumes refused because the log was pruned past their"
        " since (close 4001)",
        "# HELP pygarm_events_dispatch_duration_seconds Time the hub took to dispatch one change to every"
        " matching subscriber",
        "# HELP pygarm_events_snapshot_duration_seconds Time to read and send one subscriber's snapshot"
        " (its count is the number of snapshots)",
        "# HELP pygarm_events_replay_duration_seconds Time to read and send one resume's replay"
        " (its count is the number of replays)",
    ]
    samples = [line for line in lines if not line.startswith("#") and "_bucket" not in line]
    assert samples == [
        'pygarm_events_subscribers{ack="false",bookmark="false",resume="true",seq="true",snapshot="false"}'
        " 2.0",
        "pygarm_events_hub_subscriptions 1.0",
        "pygarm_events_dispatched_total 4.0",
        "pygarm_events_frames_delivered_total 9.0",
        "pygarm_events_slow_consumer_closes_total 2.0",
        "pygarm_events_resumes_total 3.0",
        "pygarm_events_resume_unavailable_total 1.0",
        "pygarm_events_dispatch_duration_seconds_count 1.0",
        "pygarm_events_dispatch_duration_seconds_sum 0.0001",
        "pygarm_events_snapshot_duration_seconds_count 1.0",
        "pygarm_events_snapshot_duration_seconds_sum 0.3",
        "pygarm_events_replay_duration_seconds_count 1.0",
        "pygarm_events_replay_duration_seconds_sum 2.0",
    ]
    assert 'pygarm_events_snapshot_duration_seconds_bucket{le="0.1"} 0.0' in lines
    assert 'pygarm_events_snapshot_duration_seconds_bucket{le="0.5"} 1.0' in lines
    assert 'pygarm_events_replay_duration_seconds_bucket{le="1.0"} 0.0' in lines
    assert 'pygarm_events_replay_duration_seconds_bucket{le="5.0"} 1.0' in lines


@pytest.mark.parametrize(
    ("options", "labels"),
    [
        (StreamOptions(), ("false", "false", "false", "false", "false")),
        (StreamOptions(with_seq=True), ("true", "false", "false", "false", "false")),
        (StreamOptions(since=0), ("false", "true", "false", "false", "false")),
        (StreamOptions(snapshot=True), ("false", "false", "true", "false", "false")),
        (StreamOptions(ack=True), ("false", "false", "false", "true", "false")),
        (StreamOptions(bookmark=1.0), ("false", "false", "false", "false", "true")),
    ],
)
def test_opt_in_labels_follow_the_options(options: StreamOptions, labels: tuple[str, ...]) -> None:
    assert opt_ins(options) == labels
