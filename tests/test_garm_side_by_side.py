"""The same pool update seen on GARM v0.1.5's and on pygarm's events websocket: same envelope, same payload
keys. Runs only where ``PYGARM_GARM_BINARY`` names a GARM v0.1.5 binary (docs/performance.md "Side by side
with GARM v0.1.5" says how to build one); CI has none and skips it. Needs no network: GARM talks to pygarm's
fake GitHub and test provider on 127.0.0.1 (``bench/garm_side_by_side.py``)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import pytest
from bench.fanout import EVENTS_PATH, SEND_EVERYTHING
from bench.garm_side_by_side import garm_server
from bench.lightclient import RawHTTP, RawWebSocket
from bench.server import BenchServer, bench_server

GARM_BINARY = os.environ.get("PYGARM_GARM_BINARY", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not GARM_BINARY, reason="PYGARM_GARM_BINARY names no GARM v0.1.5 binary"),
]
TIMEOUT_S = 20.0
RETRY_S = 0.2


async def first_pool_event(server: BenchServer) -> dict[str, Any]:
    """Subscribe to everything, then update the pool until an event for one of the updates arrives
    (neither server acknowledges the filter message, so the first updates may precede it)."""
    socket = await RawWebSocket.connect(server.ws_url, EVENTS_PATH, server.token)
    socket.send_text(SEND_EVERYTHING)
    http = await RawHTTP.connect(server.base_url, server.token)
    deadline = time.monotonic() + TIMEOUT_S
    number = 0
    try:
        while time.monotonic() < deadline:
            number += 1
            body = b'{"image":"img-%d"}' % number
            assert await http.request("PUT", f"/api/v1/pools/{server.pool_id}", body) == 200
            try:
                frame = await asyncio.wait_for(socket.recv(), RETRY_S)
            except TimeoutError:
                continue
            event: dict[str, Any] = json.loads(frame)
            if event.get("entity-type") == "pool":
                return event
        raise AssertionError(f"no pool event within {TIMEOUT_S} s")
    finally:
        await http.close()
        await socket.close()


async def test_a_pool_update_event_has_garms_envelope_and_payload_keys() -> None:
    with garm_server(GARM_BINARY) as garm:
        theirs = await first_pool_event(garm)
    with bench_server() as pygarm:
        ours = await first_pool_event(pygarm)
    assert theirs["operation"] == ours["operation"] == "update"
    assert set(ours) - {"seq"} == set(theirs) == {"entity-type", "operation", "payload"}
    assert sorted(ours["payload"]) == sorted(theirs["payload"])
    assert ours["payload"]["image"].startswith("img-")
