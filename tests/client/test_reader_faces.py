"""The three reader faces against a scripted GARM endpoint: the same behaviour from each."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator

import pytest
from websockets.sync.server import ServerConnection

from pygarm.client import (
    TEXT_MESSAGE,
    AsyncEventStream,
    Event,
    EventReader,
    EventsClosedError,
    EventStream,
    FilterRejected,
    Gap,
    HandshakeError,
    build_filter,
)
from pygarm.client._protocol import events_url
from pygarm.events.change import EntityType, Operation
from pygarm.params.models import Pool, Repository
from tests.client.fake_garm import GOOD_TOKEN, POOL_DELETE, REPO_CREATE, FakeGarm, fake_garm

pytestmark = pytest.mark.timeout(30)
ALL = build_filter(None)


def quick() -> Iterator[float]:
    return itertools.repeat(0.05)


def collect_sync(fake: FakeGarm, token: str = GOOD_TOKEN, limit: int = 0, **kwargs: object) -> list[Event]:
    """Events until the stream ends, or until ``limit`` events (breaking out closes the socket)."""
    stream = EventStream(events_url(fake.url), token, ALL, delays=quick, **kwargs)  # type: ignore[arg-type]
    events: list[Event] = []
    for event in stream:
        events.append(event)
        if len(events) == limit:
            break
    return events


def collect_async(fake: FakeGarm, token: str = GOOD_TOKEN, limit: int = 0, **kwargs: object) -> list[Event]:
    async def run() -> list[Event]:
        stream = AsyncEventStream(events_url(fake.url), token, ALL, delays=quick, **kwargs)  # type: ignore[arg-type]
        events: list[Event] = []
        async for event in stream:
            events.append(event)
            if len(events) == limit:
                break
        return events

    return asyncio.run(run())


COLLECTORS = {"sync": collect_sync, "async": collect_async}


@pytest.fixture(params=sorted(COLLECTORS))
def collect(request: pytest.FixtureRequest) -> object:
    return COLLECTORS[request.param]


def test_typed_events_then_normal_close(collect: object) -> None:
    def script(conn: ServerConnection, index: int) -> None:
        fake.recv_filter(conn)
        conn.send(REPO_CREATE)
        conn.send(POOL_DELETE)
        conn.close(1000)

    with fake_garm(script) as fake:
        events = collect(fake)  # type: ignore[operator]
    assert fake.filters == ['{"send-everything":true}']
    assert fake.offered_extensions == [None]  # compression off: no permessage-deflate offered
    assert [(e.entity_type, e.operation) for e in events] == [
        (EntityType.REPOSITORY, Operation.CREATE),
        (EntityType.POOL, Operation.DELETE),
    ]
    assert isinstance(events[0].payload, Repository) and isinstance(events[1].payload, Pool)


def test_handshake_failure_carries_status_and_details(collect: object) -> None:
    with fake_garm(lambda conn, index: None) as fake, pytest.raises(HandshakeError) as info:
        collect(fake, token="bad")  # type: ignore[operator]
    assert (info.value.status, info.value.error) == (401, "Authentication failed")
    assert "HTTP 401" in str(info.value)


def test_filter_rejection_ends_the_stream_even_with_reconnect(collect: object) -> None:
    def script(conn: ServerConnection, index: int) -> None:
        fake.recv_filter(conn)
        conn.send("invalid filter")
        conn.close(1000)

    with fake_garm(script) as fake, pytest.raises(FilterRejected, match="invalid filter"):
        collect(fake, reconnect=True)  # type: ignore[operator]
    assert fake.connections == 1


def test_slow_consumer_close_is_an_error_without_reconnect(collect: object) -> None:
    def script(conn: ServerConnection, index: int) -> None:
        fake.recv_filter(conn)
        conn.close(4000, "subscriber too slow")

    with fake_garm(script) as fake, pytest.raises(EventsClosedError) as info:
        collect(fake)  # type: ignore[operator]
    assert (info.value.code, info.value.reason) == (4000, "subscriber too slow")


def test_reconnect_resends_filter_and_reports_the_gap(collect: object) -> None:
    gaps: list[Gap] = []

    def script(conn: ServerConnection, index: int) -> None:
        fake.recv_filter(conn)
        if index == 0:
            conn.send(REPO_CREATE)
            conn.close(1012)  # service restart
        elif index == 1:
            conn.socket.close()  # an abnormal drop, no close frame
        else:
            conn.send(POOL_DELETE)
            for _ in conn:  # until the client leaves
                pass

    with fake_garm(script) as fake:
        events = collect(fake, limit=2, reconnect=True, on_gap=gaps.append)  # type: ignore[operator]
    assert [e.entity_type for e in events] == [EntityType.REPOSITORY, EntityType.POOL]
    assert fake.filters == ['{"send-everything":true}'] * 3
    # Two gaps: after the restart and after the drop (each reconnected at the first attempt).
    assert [gap.attempts for gap in gaps] == [1, 1]
    assert "1012" in gaps[0].cause and "1006" in gaps[1].cause


def test_server_pings_are_answered() -> None:
    pongs: list[bool] = []

    def script(conn: ServerConnection, index: int) -> None:
        fake.recv_filter(conn)
        pongs.append(conn.ping().wait(5))
        conn.close(1000)

    with fake_garm(script) as fake:
        collect_sync(fake)
    assert pongs == [True]


def test_garm_style_reader() -> None:
    """GARM's reader: handler gets (message_type, bytes); the caller writes the filter; stop() closes 1000."""
    received: list[tuple[int, bytes]] = []
    got_two = threading.Event()

    def handler(message_type: int, data: bytes) -> None:
        received.append((message_type, data))
        if len(received) == 2:
            got_two.set()

    def script(conn: ServerConnection, index: int) -> None:
        fake.recv_filter(conn)
        conn.send(REPO_CREATE)
        conn.send(POOL_DELETE)
        for _ in conn:  # until the client closes
            pass

    with fake_garm(script) as fake:
        reader = EventReader(fake.url + "/ignored/prefix", token=GOOD_TOKEN, handler=handler)
        assert reader.url == events_url(fake.url)
        reader.start()
        reader.write_message(TEXT_MESSAGE, b'{"send-everything":true}')
        assert got_two.wait(5)
        reader.stop()
        assert reader.done.is_set() and reader.wait(0)
        assert reader.error is None
    assert received == [(TEXT_MESSAGE, REPO_CREATE.encode()), (TEXT_MESSAGE, POOL_DELETE.encode())]
    assert fake.close_codes == [1000]
    assert fake.offered_extensions == [None]


def test_garm_style_reader_start_raises_handshake_error() -> None:
    with fake_garm(lambda conn, index: None) as fake:
        reader = EventReader(fake.url, token="bad")
        with pytest.raises(HandshakeError, match="Authentication failed"):
            reader.start()


def test_garm_style_reader_reconnects_and_rewrites_its_filter() -> None:
    received: list[bytes] = []
    done = threading.Event()

    def handler(message_type: int, data: bytes) -> None:
        received.append(data)
        if len(received) == 2:
            done.set()

    def script(conn: ServerConnection, index: int) -> None:
        fake.recv_filter(conn)
        conn.send(REPO_CREATE if index == 0 else POOL_DELETE)
        if index == 0:
            conn.close(1012)
        else:
            for _ in conn:
                pass

    with fake_garm(script) as fake:
        reader = EventReader(fake.url, token=GOOD_TOKEN, handler=handler, reconnect=True, delays=quick)
        reader.start()
        reader.write_message(TEXT_MESSAGE, b'{"filters":[{"entity-type":"pool"}]}')
        assert done.wait(5)
        reader.stop()
    assert fake.filters == ['{"filters":[{"entity-type":"pool"}]}'] * 2
    assert received == [REPO_CREATE.encode(), POOL_DELETE.encode()]
