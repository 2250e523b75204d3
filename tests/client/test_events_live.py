"""The three reader faces against a live pygarm server: typed events, filters, a handshake failure and a
server restart with reconnection on."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest

from pygarm.client import (
    TEXT_MESSAGE,
    AsyncGarmClient,
    Event,
    EventReader,
    FilterRejected,
    Gap,
    GarmClient,
    HandshakeError,
)
from pygarm.config import Settings
from pygarm.params.github_requests import CreateGithubEndpointParams
from pygarm.params.models import ControllerInfo, GithubEndpoint
from tests.client.events_probe import Probe
from tests.live import LiveServer, run_live_server

pytestmark = pytest.mark.timeout(90)


def endpoint(name: str) -> CreateGithubEndpointParams:
    return CreateGithubEndpointParams(
        name=name,
        base_url=f"https://{name}",
        api_base_url=f"https://{name}/api/v3/",
        upload_base_url=f"https://{name}/uploads/",
    )


def endpoint_churn(garm: GarmClient) -> None:
    """create a, update a, create b, delete a, delete b."""
    garm.create_github_endpoint(endpoint("a.example.com"))
    garm.update_github_endpoint("a.example.com", description="changed")
    garm.create_github_endpoint(endpoint("b.example.com"))
    garm.delete_github_endpoint("a.example.com")
    garm.delete_github_endpoint("b.example.com")


class Face:
    """A reader face running on its own thread, putting raw frames on :attr:`frames` until stopped."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        self.frames: queue.Queue[bytes] = queue.Queue()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._target, daemon=True)

    def run(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _target(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # re-raised in the test thread by running()
            self.errors.append(exc)


@contextmanager
def running(face: Face) -> Iterator[queue.Queue[bytes]]:
    face.thread.start()
    try:
        yield face.frames
    finally:
        face.stop()
        face.thread.join(timeout=20)
        assert not face.thread.is_alive(), "reader thread did not stop"
    if face.errors:
        raise face.errors[0]


class SyncFace(Face):
    def __init__(self, base_url: str, token: str, filters: Any, **kwargs: Any) -> None:
        super().__init__()
        self.garm = GarmClient(base_url, token)
        self.stream = self.garm.events(filters, **kwargs)

    def run(self) -> None:
        for event in self.stream:
            self.frames.put(event.raw)

    def stop(self) -> None:
        self.stream.close()
        self.garm.close()


class AsyncFace(Face):
    def __init__(self, base_url: str, token: str, filters: Any, **kwargs: Any) -> None:
        super().__init__()
        self.args = (base_url, token, filters, kwargs)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None
        self.started = threading.Event()

    async def main(self) -> None:
        base_url, token, filters, kwargs = self.args
        async with AsyncGarmClient(base_url, token) as garm:
            async for event in garm.events(filters, **kwargs):
                self.frames.put(event.raw)

    def run(self) -> None:
        async def wrapper() -> None:
            self.loop = asyncio.get_running_loop()
            self.task = asyncio.current_task()
            self.started.set()
            with suppress(asyncio.CancelledError):
                await self.main()

        asyncio.run(wrapper())

    def stop(self) -> None:
        if self.started.wait(5) and self.loop is not None and self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)


class ReaderFace(Face):
    def __init__(self, base_url: str, token: str, filters: str, **kwargs: Any) -> None:
        super().__init__()
        self.reader = EventReader(base_url, token=token, handler=self.handle, **kwargs)
        self.filters = filters

    def handle(self, _message_type: int, data: bytes) -> None:
        self.frames.put(data)

    def run(self) -> None:
        self.reader.start()
        self.reader.write_message(TEXT_MESSAGE, self.filters.encode())
        self.reader.wait()
        if self.reader.error is not None:
            raise self.reader.error

    def stop(self) -> None:
        self.reader.stop()


FACES: dict[str, type[Face]] = {"sync": SyncFace, "async": AsyncFace, "garm-reader": ReaderFace}
ENDPOINT_CREATES_AND_CONTROLLER = (
    '{"filters":[{"entity-type":"github_endpoint","operations":["create"]},{"entity-type":"controller"}]}'
)


@pytest.mark.parametrize("face", sorted(FACES))
def test_each_face_follows_a_filter(live_admin: tuple[LiveServer, str], face: str) -> None:
    live, token = live_admin
    with (
        GarmClient(live.base_url, token) as garm,
        running(FACES[face](live.base_url, token, ENDPOINT_CREATES_AND_CONTROLLER)) as frames,
    ):
        probe = Probe(garm, frames)
        probe.sync()
        assert probe.collect(endpoint_churn) == [
            ("github_endpoint", "create", "a.example.com"),
            ("github_endpoint", "create", "b.example.com"),
        ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (None, ["create a", "update a", "create b", "delete a", "delete b"]),
        ({"github_endpoint": ["delete"], "controller": None}, ["delete a", "delete b"]),
        (["github_endpoint:update,delete", "controller"], ["update a", "delete a", "delete b"]),
        (["repository", "controller"], []),
    ],
    ids=["everything", "mapping", "entity-strings", "other-type"],
)
def test_filter_forms_of_the_typed_face(
    live_admin: tuple[LiveServer, str], filters: Any, expected: list[str]
) -> None:
    live, token = live_admin
    with (
        GarmClient(live.base_url, token) as garm,
        running(SyncFace(live.base_url, token, filters)) as frames,
    ):
        probe = Probe(garm, frames)
        probe.sync()
        got = probe.collect(endpoint_churn)
    assert [f"{op} {name[0]}" for _, op, name in got] == expected


def test_typed_payloads(live_admin: tuple[LiveServer, str]) -> None:
    live, token = live_admin
    received: list[Event] = []

    async def main() -> None:
        async with AsyncGarmClient(live.base_url, token) as garm:
            stream = garm.events({"controller": ["update"], "github_endpoint": None})
            async for event in stream:
                received.append(event)
                if len(received) == 1:
                    await garm.create_github_endpoint(endpoint("typed.example.com"))
                if isinstance(event.payload, GithubEndpoint):
                    return

    async def kick() -> None:
        # The filter takes effect asynchronously; update the controller until the stream shows it.
        async with AsyncGarmClient(live.base_url, token) as garm:
            for n in range(100):
                if received:
                    return
                await garm.update_controller(minimum_job_age_backoff=n)
                await asyncio.sleep(0.2)

    async def both() -> None:
        await asyncio.wait_for(asyncio.gather(main(), kick()), 30)

    asyncio.run(both())
    assert isinstance(received[0].payload, ControllerInfo)
    last = received[-1]
    assert isinstance(last.payload, GithubEndpoint) and last.payload.name == "typed.example.com"
    assert str(last.entity_type) == "github_endpoint" and str(last.operation) == "create"


def test_handshake_failure_with_a_bad_token(live_admin: tuple[LiveServer, str]) -> None:
    live, _ = live_admin
    with GarmClient(live.base_url, "not-a-token") as garm, pytest.raises(HandshakeError) as info:
        next(iter(garm.events()))
    assert (info.value.status, info.value.error) == (401, "Authentication failed")
    with pytest.raises(HandshakeError, match=r"Authentication failed \(HTTP 401\)"):
        EventReader(live.base_url, token="not-a-token").start()

    async def async_face() -> None:
        async with AsyncGarmClient(live.base_url, "not-a-token") as garm:
            async for _ in garm.events():
                pass

    with pytest.raises(HandshakeError):
        asyncio.run(async_face())


def test_rejected_raw_filter(live_admin: tuple[LiveServer, str]) -> None:
    live, token = live_admin
    with GarmClient(live.base_url, token) as garm, pytest.raises(FilterRejected, match="invalid filter"):
        next(iter(garm.events('{"filters":[{"entity-type":"nope"}]}', reconnect=True)))


@pytest.mark.parametrize("face", sorted(FACES))
def test_reconnect_across_a_server_restart(
    live_admin: tuple[LiveServer, str], settings: Settings, face: str
) -> None:
    live, token = live_admin
    gaps: list[Gap] = []
    reader = FACES[face](
        live.base_url, token, ENDPOINT_CREATES_AND_CONTROLLER, reconnect=True, on_gap=gaps.append
    )
    with GarmClient(live.base_url, token) as garm, running(reader) as frames:
        probe = Probe(garm, frames)
        probe.sync()
        live.stop()
        with run_live_server(settings, port=live.port):
            probe.sync()  # the reader is back and has re-sent its filter
            assert probe.collect(endpoint_churn) == [
                ("github_endpoint", "create", "a.example.com"),
                ("github_endpoint", "create", "b.example.com"),
            ]
            assert len(gaps) == 1 and "may have been missed" in gaps[0].describe()
