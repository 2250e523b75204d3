"""Resuming readers against live pygarm servers: events written while the reader was away (the server
stopped, another server on the same database took the writes) arrive after the reconnect, once each and
in order, and no gap is reported; a log pruned past the resume point ends the stream with
``ResumeUnavailable``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pygarm.client import (
    TEXT_MESSAGE,
    AsyncEventStream,
    EventReader,
    EventStream,
    Gap,
    GarmClient,
    ResumeUnavailable,
    StreamOptions,
)
from pygarm.client._protocol import events_url
from pygarm.config import Settings
from tests.client.events_probe import Probe
from tests.client.test_events_live import ENDPOINT_CREATES_AND_CONTROLLER, Face, endpoint_churn, running
from tests.live import LiveServer, run_live_server

pytestmark = pytest.mark.timeout(120)
RESUME = StreamOptions(resume=True)


def quick() -> Iterator[float]:
    return itertools.repeat(0.1)


class SyncResume(Face):
    def __init__(self, base_url: str, token: str, gaps: list[Gap]) -> None:
        super().__init__()
        message = ENDPOINT_CREATES_AND_CONTROLLER.encode()
        self.stream = EventStream(
            events_url(base_url), token, message, on_gap=gaps.append, delays=quick, options=RESUME
        )

    def run(self) -> None:
        for event in self.stream:
            self.frames.put(event.raw)

    def stop(self) -> None:
        self.stream.close()


class AsyncResume(Face):
    def __init__(self, base_url: str, token: str, gaps: list[Gap]) -> None:
        super().__init__()
        message = ENDPOINT_CREATES_AND_CONTROLLER.encode()
        self.stream = AsyncEventStream(
            events_url(base_url), token, message, on_gap=gaps.append, delays=quick, options=RESUME
        )
        self.stopping: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stopping = asyncio.Event()

            async def read() -> None:
                async for event in self.stream:
                    self.frames.put(event.raw)

            reader = asyncio.create_task(read())
            stop = asyncio.create_task(self.stopping.wait())
            await asyncio.wait([reader, stop], return_when=asyncio.FIRST_COMPLETED)
            reader.cancel()
            stop.cancel()
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                raise reader.exception()  # type: ignore[misc]

        asyncio.run(main())

    def stop(self) -> None:
        if self.loop is not None and self.stopping is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)


class ReaderResume(Face):
    def __init__(self, base_url: str, token: str, gaps: list[Gap]) -> None:
        super().__init__()
        self.reader = EventReader(
            base_url, token=token, handler=self.handle, on_gap=gaps.append, delays=quick, resume=True
        )

    def handle(self, _message_type: int, data: bytes) -> None:
        if not data.startswith(b'{"control"'):  # a resuming reader also sees pygarm's control frames
            self.frames.put(data)

    def run(self) -> None:
        self.reader.start()
        self.reader.write_message(TEXT_MESSAGE, ENDPOINT_CREATES_AND_CONTROLLER.encode())
        self.reader.wait()
        if self.reader.error is not None:
            raise self.reader.error

    def stop(self) -> None:
        self.reader.stop()


FACES: dict[str, type[Face]] = {"sync": SyncResume, "async": AsyncResume, "garm-reader": ReaderResume}


@pytest.mark.parametrize("face", sorted(FACES))
def test_resume_across_a_restart_misses_nothing(
    live_admin: tuple[LiveServer, str], settings: Settings, face: str
) -> None:
    live, token = live_admin
    gaps: list[Gap] = []
    reader = FACES[face](live.base_url, token, gaps)
    with GarmClient(live.base_url, token) as garm, running(reader) as frames:
        probe = Probe(garm, frames)
        probe.sync()  # subscribed, and the reader holds a seq
        live.stop()
        with run_live_server(settings) as other, GarmClient(other.base_url, token) as away:
            endpoint_churn(away)  # written while the reader is disconnected
        with run_live_server(settings, port=live.port):
            # The replay comes first, then the marker: exactly the churn, once, in commit order.
            assert probe.collect(lambda _: None) == [
                ("github_endpoint", "create", "a.example.com"),
                ("github_endpoint", "create", "b.example.com"),
            ]
            assert probe.collect(endpoint_churn)[:1] == [("github_endpoint", "create", "a.example.com")]
    assert gaps == []


def test_pruned_resume_point_raises_resume_unavailable(
    live_admin: tuple[LiveServer, str], settings: Settings
) -> None:
    live, token = live_admin
    gaps: list[Gap] = []
    reader = SyncResume(live.base_url, token, gaps)
    with (
        pytest.raises(ResumeUnavailable) as info,
        GarmClient(live.base_url, token) as garm,
        running(reader) as frames,
    ):
        Probe(garm, frames).sync()
        live.stop()
        with run_live_server(settings) as other, GarmClient(other.base_url, token) as away:
            endpoint_churn(away)
            future = datetime.now(UTC) + timedelta(days=1)
            pruned = other.call(other.app.state.ctx.store.db.prune_changes(future)).result(timeout=10)
            assert pruned > 0
        with run_live_server(settings, port=live.port):
            reader.thread.join(timeout=30)  # the reader ends on its own with the 4001
            assert not reader.thread.is_alive()
    assert info.value.code == 4001


def test_since_starts_after_that_seq(live_admin: tuple[LiveServer, str]) -> None:
    live, token = live_admin
    with GarmClient(live.base_url, token) as garm:
        endpoint_churn(garm)
        stream = garm.events({"github_endpoint": None}, since=0)
        got: list[tuple[str, str, Any]] = []
        for event in stream:
            got.append((str(event.operation), getattr(event.payload, "name", ""), stream.last_seq))
            if len(got) == 6:
                stream.close()
    assert [(op, name) for op, name, _ in got] == [
        ("create", "github.com"),  # the default endpoint, from the first run
        ("create", "a.example.com"),
        ("update", "a.example.com"),
        ("create", "b.example.com"),
        ("delete", "a.example.com"),
        ("delete", "b.example.com"),
    ]
    positions = [seq for _, _, seq in got]
    assert positions == sorted(positions) and len(set(positions)) == 6
