"""The events writer with ready-made frames (api/ws_frames.py, issue 14): everything queued at one wake-up
goes out in one write, in queue order, as the exact bytes RFC 6455 prescribes; the close frame follows the
last data frame; a slow consumer still gets its 4000 close. Driven with a recording connection, so each
write is visible."""

from __future__ import annotations

import asyncio
import json
import struct
import time
from types import SimpleNamespace
from typing import Any

import pytest

from pygarm.api.ws_frames import FRAMES_EXTENSION, frame_of, text_frame
from pygarm.api.ws_serve import BATCH_FRAMES, serve
from pygarm.events.filters import EVERYTHING
from pygarm.events.hub import Hub
from pygarm.events.session import EventsSession
from tests.events.helpers import FakeLog, make_change


class RecordingConnection:
    """An accepted connection whose frames and ASGI messages land, in order, in ``out``."""

    def __init__(self) -> None:
        self.out: list[tuple[str, Any]] = []
        self.scope = {"type": "websocket", "extensions": {FRAMES_EXTENSION: self.write_frames}}
        self.app = SimpleNamespace(state=SimpleNamespace())
        self.written = asyncio.Event()

    async def write_frames(self, data: bytes) -> None:
        self.out.append(("frames", data))
        self.written.set()

    async def send(self, message: dict[str, Any]) -> None:
        self.out.append((message["type"], message.get("text") or message.get("code")))

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()  # a peer that never sends
        raise AssertionError("unreachable")


def parse_frames(data: bytes) -> list[str]:
    """Split joined server frames; each must be final, unmasked text."""
    texts = []
    while data:
        first, second = data[0], data[1]
        assert first == 0x81 and second & 0x80 == 0
        length, offset = second, 2
        if length == 126:
            (length,) = struct.unpack("!H", data[2:4])
            offset = 4
        elif length == 127:
            (length,) = struct.unpack("!Q", data[2:10])
            offset = 10
        texts.append(data[offset : offset + length].decode())
        data = data[offset + length :]
    return texts


def hub_with_subscriber(limit: int = 1000) -> tuple[Hub, Any]:
    hub = Hub(FakeLog().read_changes_after, 0, poll_interval=None, queue_limit=limit)
    subscription = hub.subscribe("test")
    subscription.set_filter(EVERYTHING)
    return hub, subscription


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_text_frame_matches_rfc_6455_lengths(size: int) -> None:
    text = "x" * size
    assert parse_frames(text_frame(text)) == [text]
    header = {0: 2, 125: 2, 126: 4, 65535: 4, 65536: 10}[size]
    assert len(text_frame(text)) == header + size


def test_one_frame_per_shared_text() -> None:
    text = "".join(["{", '"a":1', "}"])  # built at run time: not an interned constant
    assert frame_of(text) is frame_of(text)


async def test_queued_deliveries_go_out_in_one_write_in_order_then_the_close() -> None:
    hub, subscription = hub_with_subscriber()
    hub.publish([make_change(seq) for seq in range(1, 11)])
    connection = RecordingConnection()
    writer = asyncio.create_task(
        serve(connection, EventsSession(), subscription, time.time() + 60)  # type: ignore[arg-type]
    )
    await asyncio.wait_for(connection.written.wait(), 5)
    assert len(connection.out) == 1, "ten queued changes, one write"
    kind, data = connection.out[0]
    assert kind == "frames"
    frames = parse_frames(data)
    assert frames == [make_change(seq).frame.decode() for seq in range(1, 11)]
    connection.written.clear()
    hub.publish([make_change(11)])
    await asyncio.wait_for(connection.written.wait(), 5)
    assert parse_frames(connection.out[1][1]) == [make_change(11).frame.decode()]
    subscription.close()
    await asyncio.wait_for(writer, 5)
    assert connection.out[2] == ("websocket.close", 1000), "the close frame follows the last data frame"


async def test_a_long_queue_is_written_in_bounded_batches() -> None:
    hub, subscription = hub_with_subscriber()
    count = BATCH_FRAMES * 2 + 3
    hub.publish([make_change(seq) for seq in range(1, count + 1)])
    connection = RecordingConnection()
    writer = asyncio.create_task(
        serve(connection, EventsSession(), subscription, time.time() + 60)  # type: ignore[arg-type]
    )
    await asyncio.wait_for(connection.written.wait(), 5)
    subscription.close()
    await asyncio.wait_for(writer, 5)
    writes = [data for kind, data in connection.out if kind == "frames"]
    assert [len(parse_frames(data)) for data in writes] == [BATCH_FRAMES, BATCH_FRAMES, 3]
    seqs = [json.loads(text)["payload"]["seq"] for data in writes for text in parse_frames(data)]
    assert seqs == list(range(1, count + 1))
    assert connection.out[-1] == ("websocket.close", 1000)


async def test_slow_consumer_gets_the_4000_close() -> None:
    """As before batching: the overflowing subscriber's queue is dropped and it gets 4000 at once."""
    hub, subscription = hub_with_subscriber(limit=3)
    hub.publish([make_change(seq) for seq in range(1, 5)])  # the fourth overflows the queue of 3
    connection = RecordingConnection()
    await asyncio.wait_for(
        serve(connection, EventsSession(), subscription, time.time() + 60),  # type: ignore[arg-type]
        5,
    )
    kinds = [kind for kind, _ in connection.out]
    assert kinds[-1] == "websocket.close" and connection.out[-1][1] == 4000
    assert connection.out == [("websocket.close", 4000)]
