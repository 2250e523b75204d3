"""GARM v0.1.5 parity of the events endpoint found by testing against GARM (issue 9 item 8): the pong
wait counted from the connection's opening or its last pong with close 1000, and a plain GET answered
like gorilla's failed upgrade."""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from pygarm.config import Settings
from tests.conftest import initialize, make_settings
from tests.live import HTTP_TIMEOUT_S, run_live_server

PING_INTERVAL_S = 0.25
PONG_WAIT_S = 0.8


@pytest.fixture
def quick_keepalive(database_section: dict[str, Any]) -> Iterator[tuple[Any, str]]:
    settings: Settings = make_settings(
        database_section,
        events={
            "ping_interval": f"{int(PING_INTERVAL_S * 1000)}ms",
            "ping_timeout": f"{int(PONG_WAIT_S * 1000)}ms",
        },
    )
    with run_live_server(settings) as live:

        async def init() -> str:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, base_url=live.base_url) as http:
                return await initialize(http)

        yield live, asyncio.run(init())


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(length)


@pytest.mark.slow  # a live server
async def test_a_client_that_never_answers_pings_is_closed_1000_after_the_pong_wait(
    quick_keepalive: tuple[Any, str],
) -> None:
    """GARM's read deadline is ``pongWait`` from the connection's start; pings alone do not extend it."""
    live, token = quick_keepalive
    reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /api/v1/ws/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    opened = time.monotonic()
    assert status.startswith(b"HTTP/1.1 101")
    pings = 0
    while True:  # never answer: read pings until the close frame
        opcode, payload = await asyncio.wait_for(read_frame(reader), 10)
        if opcode == 0x9:
            pings += 1
            continue
        assert opcode == 0x8
        break
    elapsed = time.monotonic() - opened
    assert struct.unpack("!H", payload[:2])[0] == 1000 and payload[2:] == b""
    assert PONG_WAIT_S - 0.05 <= elapsed < PONG_WAIT_S + 0.7, elapsed
    assert pings >= 2, "pings every period until then"
    writer.close()


@pytest.mark.slow  # a live server
async def test_a_client_that_answers_pings_stays_connected(quick_keepalive: tuple[Any, str]) -> None:
    live, token = quick_keepalive
    async with connect(
        f"{live.ws_url}/api/v1/ws/events?ack=true",
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
        ping_interval=None,  # the library still answers the server's pings
    ) as ws:
        await asyncio.sleep(PONG_WAIT_S * 3)
        await ws.send('{"filters":[{"entity-type":"pool"}]}')
        ack = await asyncio.wait_for(ws.recv(), 10)
        assert isinstance(ack, str) and ack.startswith('{"control":"filter-ack"')


@pytest.mark.parametrize("path", ["/api/v1/ws/events", "/api/v1/ws/events/"])
async def test_plain_get_is_gorillas_400_after_the_auth_chain(
    client: httpx.AsyncClient, admin_token: str, path: str
) -> None:
    response = await client.get(path, headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code == 400
    assert response.content == b"Bad Request\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["sec-websocket-version"] == "13"
    assert response.headers["x-content-type-options"] == "nosniff"
    unauthenticated = await client.get(path)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json() == {"error": "Authentication failed", "details": ""}
