"""Changes written by the hub straight to a parked writer's socket (``Subscription.direct``, issue 14).

While a connection's writer is parked on an empty queue, the hub writes each change's frame to the
transport itself instead of waking the writer; when the transport refuses (paused by flow control, or
closing) the change is queued and the writer takes over. What a client relies on stays: every frame once,
in commit order, across both paths; the close frame after the last data frame; a subscriber that stops
reading gets the 4000 close. First with a recording connection (each write visible), then end to end with
uvicorn running pygarm's own websocket protocol, as ``pygarm serve`` does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed

from pygarm.api.ws_frames import DIRECT_EXTENSION, FRAMES_EXTENSION, FramesProtocol
from pygarm.api.ws_serve import serve
from pygarm.events.filters import EVERYTHING
from pygarm.events.hub import Delivery, Hub, Subscription
from pygarm.events.logstream import LogBroadcaster
from pygarm.events.session import CLOSE_SLOW_CONSUMER, MAX_MESSAGE_BYTES, EventsSession
from tests.events.helpers import FakeLog, make_change, seqs_of
from tests.events.test_frame_batching import hub_with_subscriber, parse_frames
from tests.events.test_ws_routes import (
    REPO_UPDATE,
    Harness,
    build_app,
    recv,
    stalled_client_is_closed_4000_while_a_healthy_one_gets_everything,
    sync_filter,
)
from tests.waiting import until


class PausableConnection:
    """An accepted connection whose transport can be paused. Every write lands in ``out`` in order:
    ``("now", bytes)`` written by the hub, ``("frames", bytes)`` by the writer, ASGI messages by type."""

    def __init__(self) -> None:
        self.out: list[tuple[str, Any]] = []
        self.writable = asyncio.Event()
        self.writable.set()
        self.scope = {
            "type": "websocket",
            "extensions": {FRAMES_EXTENSION: self.write_frames, DIRECT_EXTENSION: self.write_now},
        }
        self.app = SimpleNamespace(state=SimpleNamespace())

    def write_now(self, data: bytes) -> bool:
        if not self.writable.is_set():
            return False
        self.out.append(("now", data))
        return True

    async def write_frames(self, data: bytes) -> None:
        await self.writable.wait()
        self.out.append(("frames", data))

    async def send(self, message: dict[str, Any]) -> None:
        await self.writable.wait()
        self.out.append((message["type"], message.get("text") or message.get("code")))

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()  # a peer that never sends
        raise AssertionError("unreachable")

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.out]

    def seqs(self) -> list[int]:
        """The seqs of every data frame written so far, by either path, in write order."""
        return [
            seq for kind, data in self.out if kind in ("now", "frames") for seq in seqs_of(parse_frames(data))
        ]


def start(connection: PausableConnection, subscription: Subscription) -> asyncio.Task[None]:
    return asyncio.create_task(
        serve(connection, EventsSession(), subscription, time.time() + 60)  # type: ignore[arg-type]
    )


async def parked(subscription: Subscription) -> None:
    await until(lambda: subscription.direct is not None, "the writer to park and leave a direct write")


async def test_a_parked_writer_lets_the_hub_write_each_change_at_once() -> None:
    hub, subscription = hub_with_subscriber()
    connection = PausableConnection()
    writer = start(connection, subscription)
    await parked(subscription)
    for seq in range(1, 4):
        hub.publish([make_change(seq)])
        # Written during publish, before the event loop ran anything else: no task was woken.
        assert connection.seqs() == list(range(1, seq + 1))
    assert connection.kinds() == ["now", "now", "now"]
    assert len(subscription) == 0
    assert [parse_frames(data) for _, data in connection.out] == [
        [make_change(seq).frame.decode()] for seq in range(1, 4)
    ]
    assert hub.stats.frames_delivered == 3
    subscription.close()
    await asyncio.wait_for(writer, 5)
    assert connection.out[-1] == ("websocket.close", 1000), "the close frame follows the last data frame"
    assert subscription.direct is None


def render_with_seq(delivery: Delivery) -> str:
    return delivery.seq_text


async def test_each_subscriber_gets_its_own_variant_of_a_direct_frame() -> None:
    """Subscribers with and without ``seq`` parked side by side: each change is written to each of them
    in the variant it asked for (the frame is built once per variant and change, then reused)."""
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None)
    connections: list[tuple[PausableConnection, bool]] = []
    writers = []
    for with_seq in (False, True, False, True):
        subscription = hub.subscribe("test")
        subscription.set_filter(EVERYTHING)
        connection = PausableConnection()
        render = render_with_seq if with_seq else None  # one function: the frame memo is shared
        writers.append(
            asyncio.create_task(
                serve(connection, EventsSession(), subscription, time.time() + 60, render=render)  # type: ignore[arg-type]
            )
        )
        connections.append((connection, with_seq))
        await parked(subscription)
    hub.publish([make_change(seq) for seq in (1, 2)])
    for connection, with_seq in connections:
        assert connection.kinds() == ["now", "now"]
        texts = [text for _, data in connection.out for text in parse_frames(data)]
        plain = [make_change(seq).frame.decode() for seq in (1, 2)]
        expected = [text[:-1] + f',"seq":{seq}}}' for seq, text in zip((1, 2), plain, strict=True)]
        assert texts == (expected if with_seq else plain)
    hub.close_all()
    await asyncio.wait_for(asyncio.gather(*writers), 5)


async def test_order_is_kept_across_direct_and_queued_writes() -> None:
    hub, subscription = hub_with_subscriber()
    connection = PausableConnection()
    writer = start(connection, subscription)
    await parked(subscription)
    hub.publish([make_change(seq) for seq in (1, 2)])  # direct
    connection.writable.clear()  # flow control paused the transport
    hub.publish([make_change(seq) for seq in (3, 4)])  # refused: queued, the writer wakes and waits
    await until(lambda: subscription.direct is None, "the writer to wake")
    connection.writable.set()  # the peer read: the transport resumes
    hub.publish([make_change(5)])  # the writer is not parked: queued behind 3 and 4
    await parked(subscription)
    hub.publish([make_change(6)])  # parked on an empty queue again: direct
    assert connection.seqs() == [1, 2, 3, 4, 5, 6]
    assert connection.kinds()[:2] == ["now", "now"]
    assert "frames" in connection.kinds() and connection.kinds()[-1] == "now"
    subscription.close()
    await asyncio.wait_for(writer, 5)
    assert connection.out[-1] == ("websocket.close", 1000)


async def test_a_paused_transport_fills_the_queue_and_gets_the_4000_close() -> None:
    hub, subscription = hub_with_subscriber(limit=3)
    connection = PausableConnection()
    writer = start(connection, subscription)
    await parked(subscription)
    hub.publish([make_change(1)])  # direct
    connection.writable.clear()
    hub.publish([make_change(2)])  # queued; the writer takes it and waits for the transport
    await until(lambda: len(subscription) == 0, "the writer to take the queued change")
    hub.publish([make_change(seq) for seq in range(3, 7)])  # 3, 4, 5 fill the queue; 6 overflows it
    assert subscription.closed
    connection.writable.set()  # the peer reads again: what was written, then the close
    await asyncio.wait_for(writer, 5)
    assert connection.seqs() == [1, 2]
    assert connection.out[-1] == ("websocket.close", CLOSE_SLOW_CONSUMER)
    assert hub.stats.slow_consumer_closes == 1


async def test_no_direct_write_while_the_writer_is_busy() -> None:
    """A change published while the writer is between wake-up and write is queued, never written past it."""
    hub, subscription = hub_with_subscriber()
    connection = PausableConnection()
    connection.writable.clear()
    hub.publish([make_change(1)])  # queued before the writer ever ran
    writer = start(connection, subscription)
    await until(lambda: len(subscription) == 0, "the writer to take the queued change")
    hub.publish([make_change(2)])
    assert subscription.direct is None and len(subscription) == 1
    connection.writable.set()
    await parked(subscription)
    assert connection.seqs() == [1, 2]
    subscription.close()
    await asyncio.wait_for(writer, 5)


# --- end to end: uvicorn with pygarm's FramesProtocol --------------------------------------------------


@pytest.fixture
async def frames_harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    options: dict[str, Any] = getattr(request, "param", {})
    log = FakeLog()
    hub = Hub(log.read_changes_after, 0, poll_interval=None, queue_limit=options.get("queue_limit", 1024))
    app = build_app(hub, LogBroadcaster())
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        ws=FramesProtocol,  # as pygarm serve runs it (pygarm/server.py)
        ws_per_message_deflate=False,
        ws_max_size=MAX_MESSAGE_BYTES,
        ws_ping_interval=None,
        lifespan="off",
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server._serve())
    await until(lambda: server.started, "uvicorn to start")
    port = server.servers[0].sockets[0].getsockname()[1]
    await hub.start()
    try:
        yield Harness(app=app, hub=hub, log=log, url=f"ws://127.0.0.1:{port}")
    finally:
        await hub.stop()
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def subscriptions(h: Harness) -> list[Subscription]:
    return list(h.hub._subscriptions)


async def test_frames_protocol_delivers_every_change_in_order_then_closes_1000(
    frames_harness: Harness,
) -> None:
    h = frames_harness
    async with h.connect() as ws:
        await ws.send('{"send-everything":true}')
        await sync_filter([ws], lambda: h.publish(REPO_UPDATE)[0])
        (subscription,) = subscriptions(h)
        await until(lambda: subscription.direct is not None, "the writer to park")
        published = [seq for _ in range(200) for seq in h.publish(REPO_UPDATE)]
        frames = [await recv(ws) for _ in published]
        assert seqs_of(frames) == published
        h.hub.close_all()
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1000


@pytest.mark.parametrize("frames_harness", [{"queue_limit": 8}], indirect=True)
async def test_frames_protocol_closes_a_stalled_client_4000_while_a_healthy_one_gets_everything(
    frames_harness: Harness,
) -> None:
    """As ``test_ws_routes``'s test of the same name, with the hub writing to parked writers."""
    await stalled_client_is_closed_4000_while_a_healthy_one_gets_everything(frames_harness)
