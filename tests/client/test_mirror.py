"""The state mirror against a scripted server speaking pygarm's snapshot protocol: the state a snapshot
and events build, a connection cut halfway through a snapshot, resuming with ``since=``, a re-snapshot
after 4001, and the notes the callbacks receive. Both faces, the same script."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from pygarm.client import AsyncGarmClient, AsyncStateMirror, GarmClient, StateMirror
from pygarm.client._mirror import MirrorCore, entity_key
from tests.client.fake_garm import GOOD_TOKEN, FakeGarm, fake_garm

pytestmark = pytest.mark.timeout(30)
FILTER = '{"filters":[{"entity-type":"repository"}]}'


def repo(op: str, rid: str, seq: int, name: str = "n") -> str:
    payload = f'{{"id":"{rid}","owner":"o","name":"{name}"}}'
    return f'{{"entity-type":"repository","operation":"{op}","payload":{payload},"seq":{seq}}}'


def end(seq: int) -> str:
    return f'{{"control":"snapshot-end","seq":{seq}}}'


def hold(conn: ServerConnection) -> None:
    """Keep the connection open until the client closes it."""
    with suppress(ConnectionClosed):
        while True:
            conn.recv()


def quick() -> Iterator[float]:
    return itertools.repeat(0.05)


Notes = list[tuple[str, str, str, str]]
Run = Callable[[FakeGarm, Callable[[Any], bool]], tuple[dict[str, dict[str, Any]], Notes]]


def run_sync(fake: FakeGarm, until: Callable[[Any], bool]) -> tuple[dict[str, dict[str, Any]], Notes]:
    notes: Notes = []
    with GarmClient(fake.url, GOOD_TOKEN) as garm:
        mirror = StateMirror(garm, FILTER, delays=quick)
        mirror.on_change(lambda e, op, p: notes.append((e, op, p.id, p.name)))
        with mirror:
            mirror.wait_for(until, 10)
            return mirror.state, notes


def run_async(fake: FakeGarm, until: Callable[[Any], bool]) -> tuple[dict[str, dict[str, Any]], Notes]:
    notes: Notes = []

    async def main() -> dict[str, dict[str, Any]]:
        async with AsyncGarmClient(fake.url, GOOD_TOKEN) as garm:
            mirror = AsyncStateMirror(garm, FILTER, delays=quick)
            mirror.on_change(lambda e, op, p: notes.append((e, op, p.id, p.name)))
            async with mirror:
                await mirror.wait_for(until, 10)
                return mirror.state

    return asyncio.run(main()), notes


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Run:
    return run_sync if request.param == "sync" else run_async


def names(state: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {key: payload.name for key, payload in state.get("repository", {}).items()}


def test_snapshot_then_live_events(run: Run) -> None:
    def script(conn: ServerConnection, index: int) -> None:
        fake.recv_filter(conn)
        for frame in (repo("snapshot", "r1", 5), repo("snapshot", "r2", 5), end(5)):
            conn.send(frame)
        conn.send(repo("create", "r3", 6))
        conn.send(repo("update", "r1", 7, name="n2"))
        conn.send(repo("delete", "r2", 8))
        hold(conn)

    with fake_garm(script) as fake:
        state, notes = run(fake, lambda m: m.seq == 8)
    assert fake.paths == ["/api/v1/ws/events?seq=true&snapshot=true&ack=true&bookmark=30"]
    assert fake.filters == [FILTER]
    assert names(state) == {"r1": "n2", "r3": "n"}
    assert notes == [
        ("repository", "snapshot", "r1", "n"),
        ("repository", "snapshot", "r2", "n"),
        ("repository", "create", "r3", "n"),
        ("repository", "update", "r1", "n2"),
        ("repository", "delete", "r2", "n"),
    ]


def test_a_cut_snapshot_is_taken_again_and_a_cut_stream_resumes(run: Run) -> None:
    def script(conn: ServerConnection, index: int) -> None:
        fake.recv_filter(conn)
        if index == 0:
            conn.send(repo("snapshot", "gone", 5))  # then the connection breaks: never applied
            conn.close(1011)
        elif index == 1:
            for frame in (repo("snapshot", "r2", 6), end(6), repo("update", "r2", 7, name="n7")):
                conn.send(frame)
            conn.close(1011)
        else:
            conn.send(repo("create", "r3", 8))
            hold(conn)

    with fake_garm(script) as fake:
        state, notes = run(fake, lambda m: m.seq == 8)
    assert [path.split("?")[1] for path in fake.paths] == [
        "seq=true&snapshot=true&ack=true&bookmark=30",
        "seq=true&snapshot=true&ack=true&bookmark=30",
        "seq=true&since=7&ack=true&bookmark=30",
    ]
    assert fake.filters == [FILTER] * 3
    assert names(state) == {"r2": "n7", "r3": "n"}
    assert [note[1:3] for note in notes] == [("snapshot", "r2"), ("update", "r2"), ("create", "r3")]


def test_4001_takes_a_new_snapshot_and_reports_what_changed(run: Run) -> None:
    def script(conn: ServerConnection, index: int) -> None:
        fake.recv_filter(conn)
        if index == 0:
            for frame in (repo("snapshot", "r1", 5), repo("snapshot", "r2", 5), end(5)):
                conn.send(frame)
            conn.close(1011)
        elif index == 1:
            conn.close(4001, "resume point no longer in the change log, reload and resubscribe")
        else:
            for frame in (repo("snapshot", "r1", 20, name="renamed"), repo("snapshot", "r3", 20), end(20)):
                conn.send(frame)
            hold(conn)

    with fake_garm(script) as fake:
        state, notes = run(fake, lambda m: m.seq == 20)
    assert "since=5" in fake.paths[1] and "snapshot=true" in fake.paths[2]
    assert names(state) == {"r1": "renamed", "r3": "n"}
    assert [note[1:] for note in notes[2:]] == [
        ("snapshot", "r1", "renamed"),
        ("snapshot", "r3", "n"),
        ("delete", "r2", "n"),
    ]


def test_a_refused_filter_stops_the_mirror_with_the_error() -> None:
    def script(conn: ServerConnection, index: int) -> None:
        fake.recv_filter(conn)
        conn.send("invalid filter")
        conn.close(1000)

    with fake_garm(script) as fake, GarmClient(fake.url, GOOD_TOKEN) as garm:
        mirror = StateMirror(garm, FILTER, delays=quick)
        with pytest.raises(Exception, match="invalid filter"):
            mirror.start(timeout=10)
        mirror.stop()


def test_core_keys_and_a_snapshot_without_entities() -> None:
    core = MirrorCore()
    assert entity_key("github_endpoint", {"name": "github.com", "id": "x"}) == "github.com"
    assert entity_key("job", {"id": 17}) == "17"
    core.feed(repo("create", "r1", 3).encode())
    assert core.feed(end(4).encode())[0].operation == "delete"  # an empty snapshot: nothing is left
    assert core.state == {} and core.ready
