"""The websocket routes end to end: uvicorn (``websockets-sansio``, as ``pygarm serve`` runs it) and the
``websockets`` client, on 127.0.0.1, against a minimal app holding a hub, a log broadcaster and a stub
authenticator (docs/garm-protocol.md#events-websocket)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.responses import Response
from starlette.websockets import WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pygarm.api import ws_events, ws_logs
from pygarm.api.errors import AUTHENTICATION_FAILED
from pygarm.api.responses import GoJSONResponse
from pygarm.events.change import EntityType, Operation
from pygarm.events.hub import Hub
from pygarm.events.logstream import LogBroadcaster
from pygarm.events.mailbox import CloseCause
from pygarm.events.session import (
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NORMAL,
    CLOSE_SLOW_CONSUMER,
    INVALID_FILTER_TEXT,
    MAX_MESSAGE_BYTES,
    UNMARSHAL_ERROR_TEXT,
    slow_consumer_reason,
)
from tests.events.helpers import FakeLog, make_change, seqs_of
from tests.waiting import until

TOKEN = "Bearer good"
RECV_TIMEOUT = 5.0
QUIET = 0.2
"""How long to wait to conclude that no frame is coming."""


@dataclass
class Principal:
    user_id: str = "user-1"
    is_admin: bool = True
    expires_at: float | None = None


@dataclass
class Harness:
    app: FastAPI
    hub: Hub
    log: FakeLog
    url: str
    seq: int = 0

    def publish(self, *kinds: tuple[EntityType, Operation], payload_size: int = 0) -> list[int]:
        """Commit and publish one change per (entity, operation); returns their seqs."""
        changes = []
        for entity, operation in kinds:
            self.seq += 1
            change = make_change(self.seq, entity, operation)
            if payload_size:
                payload = orjson.dumps({"id": "x", "seq": self.seq, "pad": "p" * payload_size})
                change = type(change)(self.seq, entity, operation, payload, change.created_at)
            changes.append(change)
        self.log.commit(*changes)
        self.hub.publish(changes)
        return [c.seq for c in changes]

    def connect(self, path: str = "/api/v1/ws/events", **kwargs: Any) -> connect:
        kwargs.setdefault("additional_headers", {"Authorization": TOKEN})
        return connect(self.url + path, compression=None, ping_interval=None, open_timeout=5, **kwargs)


def build_app(hub: Hub, broadcaster: LogBroadcaster | None) -> FastAPI:
    app = FastAPI()
    app.state.hub = hub
    app.state.log_broadcaster = broadcaster
    app.state.principal = Principal(expires_at=time.time() + 3600)

    async def authenticate_ws(websocket: WebSocket) -> Principal | Response:
        if websocket.headers.get("authorization") != TOKEN:
            return GoJSONResponse(AUTHENTICATION_FAILED, status_code=401)
        principal: Principal = app.state.principal
        return principal

    app.state.authenticate_ws = authenticate_ws
    app.include_router(ws_events.router, prefix="/api/v1")
    app.include_router(ws_logs.router, prefix="/api/v1")
    return app


@pytest.fixture
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    options: dict[str, Any] = getattr(request, "param", {})
    log = FakeLog()
    hub = Hub(log.read_changes_after, 0, poll_interval=None, queue_limit=options.get("queue_limit", 1024))
    broadcaster = None if options.get("logs_disabled") else LogBroadcaster()
    app = build_app(hub, broadcaster)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=options.get("ws_max_size", MAX_MESSAGE_BYTES),
        ws_ping_interval=None,
        lifespan="off",
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server._serve())  # _serve: no signal handlers inside the test runner
    await until(lambda: server.started, "uvicorn to start")
    if broadcaster is not None:
        broadcaster.bind()
    port = server.servers[0].sockets[0].getsockname()[1]
    await hub.start()
    try:
        yield Harness(app=app, hub=hub, log=log, url=f"ws://127.0.0.1:{port}")
    finally:
        await hub.stop()
        if broadcaster is not None:
            broadcaster.stop()
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def recv(ws: ClientConnection) -> str:
    message = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
    assert isinstance(message, str), "GARM sends TEXT frames"
    return message


async def assert_quiet(ws: ClientConnection) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), QUIET)


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
    assert info.value.rcvd is not None, "the server sent a close frame"
    return info.value.rcvd.code, info.value.rcvd.reason


async def subscribed(
    h: Harness, ws: ClientConnection, message: str | bytes, marker: tuple[EntityType, Operation] | None = None
) -> None:
    """Send a filter and wait until the server applied it. GARM sends no reply, so (like
    ``tests/client/events_probe.py``'s ``Probe.sync``) publish ``marker`` changes, which the filter must
    select, until one arrives; then publish a last one and read through it. Every frame read meanwhile
    must be a marker: the next frame is the test's own."""
    await ws.send(message)
    await sync_filter([ws], lambda: h.publish(marker or REPO_UPDATE)[0])


async def sync_filter(sockets: list[ClientConnection], publish_marker: Callable[[], int]) -> None:
    """:func:`subscribed` for filters already sent on each of ``sockets``."""
    markers = [publish_marker()]
    deadline = time.monotonic() + RECV_TIMEOUT
    for ws in sockets:
        while True:
            try:
                first = await asyncio.wait_for(ws.recv(), 0.1)
                break
            except TimeoutError:
                assert time.monotonic() < deadline, "the filter was never applied"
                markers.append(publish_marker())
        assert seqs_of([first])[0] in markers, first
    last = publish_marker()
    markers.append(last)
    for ws in sockets:
        while (seq := seqs_of([await recv(ws)])[0]) != last:
            assert seq in markers, seq


REPO_CREATE = (EntityType.REPOSITORY, Operation.CREATE)
REPO_UPDATE = (EntityType.REPOSITORY, Operation.UPDATE)
POOL_DELETE = (EntityType.POOL, Operation.DELETE)


# --- before the upgrade (docs/garm-protocol.md#websocket-auth, docs/garm-protocol.md#websocket-upgrade) -----


async def test_missing_token_is_401_json(harness: Harness) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with harness.connect(additional_headers={}):
            pass
    assert info.value.response.status_code == 401
    assert info.value.response.body == b'{"error":"Authentication failed","details":""}\n'


async def test_non_admin_is_plain_401(harness: Harness) -> None:
    harness.app.state.principal = Principal(is_admin=False)
    with pytest.raises(InvalidStatus) as info:
        async with harness.connect():
            pass
    assert info.value.response.status_code == 401
    assert info.value.response.body == b"Unauthorized\n"


async def test_foreign_origin_is_403(harness: Harness) -> None:
    """docs/garm-protocol.md#websocket-upgrade: gorilla's same-origin check; garm-cli sends no Origin at
    all."""
    with pytest.raises(InvalidStatus) as info:
        async with harness.connect(origin="http://evil.example"):
            pass
    response = info.value.response
    assert response.status_code == 403
    assert response.body == b"Forbidden\n"
    assert response.headers["Sec-Websocket-Version"] == "13"
    host = harness.url.removeprefix("ws://")
    async with harness.connect(origin=f"http://{host.upper()}") as ws:
        assert ws.response is not None and ws.response.status_code == 101


async def test_handshake_has_no_subprotocol_and_no_extension(harness: Harness) -> None:
    async with connect(
        harness.url + "/api/v1/ws/events/",
        additional_headers={"Authorization": TOKEN},
        subprotocols=["garm"],  # type: ignore[list-item]
        ping_interval=None,
    ) as ws:
        assert ws.subprotocol is None
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers


# --- the events protocol (docs/garm-protocol.md#events-websocket) -------------------------------------------


async def test_nothing_before_a_filter_then_exactly_the_frames(harness: Harness) -> None:
    """docs/garm-protocol.md#filter-rules: silence until a filter; then one TEXT frame per change, GARM's
    envelope."""
    async with harness.connect() as ws:
        await until(lambda: harness.hub.subscriber_count == 1, "the connection's subscription")
        harness.publish(REPO_CREATE)
        await assert_quiet(ws)
        await subscribed(harness, ws, '{"send-everything":true}')
        seqs = harness.publish(REPO_CREATE, POOL_DELETE)
        frames = [await recv(ws), await recv(ws)]
        assert seqs_of(frames) == seqs
        assert frames[0] == harness.log.committed[seqs[0]].frame.decode()
        assert frames[1].startswith('{"entity-type":"pool","operation":"delete","payload":')
        await assert_quiet(ws)


async def test_filters_select_replace_and_empty_message_keeps(harness: Harness) -> None:
    """docs/garm-protocol.md#filter-rules."""
    async with harness.connect() as ws:
        repo_create = '{"filters":[{"entity-type":"repository","operations":["create"]}]}'
        await subscribed(harness, ws, repo_create, REPO_CREATE)
        wanted = harness.publish(REPO_UPDATE, REPO_CREATE, POOL_DELETE)[1]
        assert seqs_of([await recv(ws)]) == [wanted]
        await subscribed(harness, ws, "{}", REPO_CREATE)
        wanted = harness.publish(REPO_UPDATE, REPO_CREATE)[1]
        assert seqs_of([await recv(ws)]) == [wanted]
        await subscribed(harness, ws, '{"filters":[{"entity-type":"pool"}]}', POOL_DELETE)
        wanted = harness.publish(REPO_CREATE, POOL_DELETE)[1]
        assert seqs_of([await recv(ws)]) == [wanted]
        await assert_quiet(ws)


async def test_binary_filter_frames_are_read_like_text(harness: Harness) -> None:
    async with harness.connect() as ws:
        await subscribed(harness, ws, b'{"send-everything":true}')
        seq = harness.publish(POOL_DELETE)
        assert seqs_of([await recv(ws)]) == seq


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ("not json", UNMARSHAL_ERROR_TEXT),
        ('{"send-everything":"yes"}', UNMARSHAL_ERROR_TEXT),
        ('{"filters":[{"entity-type":"nope"}]}', INVALID_FILTER_TEXT),
        ('{"filters":[{"entity-type":"pool","operations":["CREATE"]}]}', INVALID_FILTER_TEXT),
    ],
)
async def test_bad_filter_sends_text_then_closes_1000(harness: Harness, message: str, text: str) -> None:
    """docs/garm-protocol.md#filter-rules: the text always arrives before the close (GARM only sometimes)."""
    async with harness.connect() as ws:
        await subscribed(harness, ws, '{"send-everything":true}')
        await ws.send(message)
        assert await recv(ws) == text
        assert await closed_with(ws) == (CLOSE_NORMAL, "")
    await until(lambda: harness.hub.subscriber_count == 0, "the subscription to be released")


@pytest.mark.parametrize(
    "harness",
    [pytest.param({}, id="uvicorn ws_max_size"), pytest.param({"ws_max_size": 1 << 20}, id="session check")],
    indirect=True,
)
async def test_message_over_16_kib_closes_1009(harness: Harness) -> None:
    """docs/garm-protocol.md#websocket-connection: enforced by uvicorn when configured as ``pygarm serve``
    does, else by the session."""
    async with harness.connect(max_size=None) as ws:
        await ws.send('{"x":"' + "a" * MAX_MESSAGE_BYTES + '"}')
        code, _reason = await closed_with(ws)
        assert code == CLOSE_MESSAGE_TOO_BIG


async def test_token_expiry_closes_1000(harness: Harness) -> None:
    """docs/garm-protocol.md#websocket-connection."""
    harness.app.state.principal = Principal(expires_at=time.time() + 0.3)
    async with harness.connect() as ws:
        await subscribed(harness, ws, '{"send-everything":true}')
        started = time.monotonic()
        assert await closed_with(ws) == (CLOSE_NORMAL, "")
        assert time.monotonic() - started < 2


async def test_token_without_exp_closes_at_once(harness: Harness) -> None:
    harness.app.state.principal = Principal(expires_at=None)
    async with harness.connect() as ws:
        assert await closed_with(ws) == (CLOSE_NORMAL, "")


async def test_client_leaving_releases_the_subscription(harness: Harness) -> None:
    """An idle connection whose client goes away must not keep its subscription (or task) alive."""
    async with harness.connect() as ws:
        await subscribed(harness, ws, '{"send-everything":true}')
        assert harness.hub.subscriber_count == 1
    await until(lambda: harness.hub.subscriber_count == 0, "the subscription to be released")


async def test_server_shutdown_closes_1000(harness: Harness) -> None:
    async with harness.connect() as ws:
        await subscribed(harness, ws, '{"send-everything":true}')
        harness.hub.close_all(CloseCause.SHUTDOWN)
        assert await closed_with(ws) == (CLOSE_NORMAL, "")


async def test_uvicorn_alone_would_close_1012_on_shutdown() -> None:
    """Why ``close_websockets`` exists: uvicorn's shutdown sends 1012 before the lifespan shutdown."""
    code = await _shutdown_close_code(close_first=False)
    assert code == 1012


async def test_close_websockets_before_uvicorn_shutdown_gives_1000() -> None:
    """docs/garm-protocol.md#websocket-connection: GARM closes with 1000 when the server stops; the recipe for
    ``pygarm serve``."""
    code = await _shutdown_close_code(close_first=True)
    assert code == CLOSE_NORMAL


async def _shutdown_close_code(*, close_first: bool) -> int:
    log = FakeLog()
    hub = Hub(log.read_changes_after, 0, poll_interval=None)
    app = build_app(hub, LogBroadcaster())

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            if close_first:
                await ws_events.close_websockets(app)
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, ws="websockets-sansio", ws_per_message_deflate=False,
        lifespan="off", log_config=None, timeout_graceful_shutdown=2,
    )  # fmt: skip
    server = Server(config)
    task = asyncio.create_task(server._serve())
    await until(lambda: server.started, "uvicorn to start")
    port = server.servers[0].sockets[0].getsockname()[1]
    async with connect(
        f"ws://127.0.0.1:{port}/api/v1/ws/events", additional_headers={"Authorization": TOKEN}
    ) as ws:
        await ws.send('{"send-everything":true}')
        seq = 0

        def publish_marker() -> int:
            nonlocal seq
            seq += 1
            change = make_change(seq, *REPO_UPDATE)
            log.commit(change)
            hub.publish([change])
            return seq

        await hub.start()
        await sync_filter([ws], publish_marker)
        server.should_exit = True
        code, _reason = await closed_with(ws)
    await asyncio.wait_for(task, 10)
    await hub.stop()
    return code


@pytest.mark.parametrize("harness", [{"queue_limit": 8}], indirect=True)
async def test_stalled_client_is_closed_4000_while_a_healthy_one_gets_everything(harness: Harness) -> None:
    await stalled_client_is_closed_4000_while_a_healthy_one_gets_everything(harness)


async def stalled_client_is_closed_4000_while_a_healthy_one_gets_everything(harness: Harness) -> None:
    """A client that stops reading gets an ordered prefix of the events, then close 4000 with the reason;
    the healthy client receives every event."""
    async with harness.connect(max_queue=1) as stalled, harness.connect() as healthy:
        await stalled.send('{"send-everything":true}')
        await healthy.send('{"send-everything":true}')
        await sync_filter([stalled, healthy], lambda: harness.publish(REPO_UPDATE)[0])
        healthy_frames: list[str] = []

        async def read_healthy() -> None:
            while True:
                healthy_frames.append(await recv(healthy))

        reader = asyncio.create_task(read_healthy())
        stalled.transport.pause_reading()  # stop reading at the socket: the server's buffers fill up
        published: list[int] = []
        for _ in range(400):
            published += harness.publish(REPO_UPDATE, payload_size=20_000)
            await asyncio.sleep(0.001)
            if harness.hub.subscriber_count == 1:
                break
        assert harness.hub.subscriber_count == 1, "the stalled subscriber was closed"
        published += harness.publish(REPO_UPDATE)
        stalled.transport.resume_reading()
        stalled_frames: list[str] = []
        with pytest.raises(ConnectionClosed) as info:
            while True:
                stalled_frames.append(await recv(stalled))
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (
            CLOSE_SLOW_CONSUMER,
            slow_consumer_reason(8),
        )
        got = seqs_of(stalled_frames)
        assert got == published[: len(got)], "an ordered prefix, no gaps"
        await until(lambda: len(healthy_frames) >= len(published), "the healthy client's frames")
        reader.cancel()
        assert seqs_of(healthy_frames) == published


# --- the log stream (docs/garm-protocol.md#log-stream) ------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/ws/logs", "/api/v1/ws/logs/", "/api/v1/ws", "/api/v1/ws/"])
async def test_log_lines_are_streamed(harness: Harness, path: str) -> None:
    logger = logging.getLogger("pygarm.tests.ws_logs")
    broadcaster: LogBroadcaster = harness.app.state.log_broadcaster
    broadcaster.setFormatter(logging.Formatter("msg=%(message)s"))
    logger.addHandler(broadcaster)
    try:
        async with harness.connect(path) as ws:
            await ws.send("ignored")
            await until(lambda: broadcaster.subscriber_count == 1, "the log subscriber")
            logger.warning("pool %s is full", "p1")
            assert await recv(ws) == "msg=pool p1 is full\n"
    finally:
        logger.removeHandler(broadcaster)


@pytest.mark.parametrize("harness", [{"logs_disabled": True}], indirect=True)
async def test_disabled_log_streamer_is_400(harness: Harness) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with harness.connect("/api/v1/ws/logs"):
            pass
    assert info.value.response.status_code == 400
    assert info.value.response.body == b'{"error":"Bad Request","details":"log streamer is disabled"}\n'
