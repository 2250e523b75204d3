"""The opt-in stream extensions against the real app on both backends (docs/events.md#opt-in-extensions):
resume bounds, filter acknowledgement, bookmarks, snapshot and field filters, wire frames compared
exactly."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from pygarm.events.extensions import SINCE_BEYOND_HEAD
from tests.events.test_app_stream import api, next_frame, no_more_frames

CONTROLLER_FILTER = '{"filters":[{"entity-type":"controller"}]}'


async def open_ws(live: Any, token: str, query: str = "") -> ClientConnection:
    return await connect(
        f"{live.ws_url}/api/v1/ws/events{query}",
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
    )


async def test_since_beyond_the_head_is_refused_before_the_upgrade(live_admin: tuple[Any, str]) -> None:
    """issue 8 #10: a resume point the log never reached means the client's state came from another
    database; it gets 400 with GARM's error body instead of a silent, empty resume."""
    live, token = live_admin
    async with api(live, token) as http:
        await http.put("/controller", json={"minimum_job_age_backoff": 11})
    ws = await open_ws(live, token, "?seq=true")
    await ws.send(CONTROLLER_FILTER)
    async with api(live, token) as http:
        await http.put("/controller", json={"minimum_job_age_backoff": 12})
    head = (await next_frame(ws))["seq"]
    await ws.close()

    with pytest.raises(InvalidStatus) as refused:
        await open_ws(live, token, f"?since={head + 1}")
    response = refused.value.response
    assert response.status_code == 400
    body = json.loads(response.body or b"")
    assert body["error"] == "Bad Request"
    assert body["details"] == f"{SINCE_BEYOND_HEAD}: since {head + 1} > head {head}"

    at_head = await open_ws(live, token, f"?since={head}")  # the head itself is a valid resume point
    await at_head.send(CONTROLLER_FILTER)
    await no_more_frames(at_head)
    await at_head.close()


async def test_since_is_checked_after_authentication(live_admin: tuple[Any, str]) -> None:
    """The head is not revealed to a caller without a valid token."""
    live, _token = live_admin
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{live.base_url}/api/v1/ws/events?since=999999",
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
    assert response.status_code == 401


async def test_malformed_extension_parameter_is_400_with_garm_error_body(live_admin: tuple[Any, str]) -> None:
    live, token = live_admin
    with pytest.raises(InvalidStatus) as refused:
        await open_ws(live, token, "?since=abc")
    assert refused.value.response.status_code == 400
    body = json.loads(refused.value.response.body or b"")
    assert body == {"error": "Bad Request", "details": "since must be a non-negative integer"}


async def test_pruned_log_head_counts_as_reached(live_admin: tuple[Any, str]) -> None:
    """After retention removed every row, the pruned-through point is still a valid head: resuming there
    is 4001-free and resuming past it is 400."""
    live, token = live_admin
    async with api(live, token) as http:
        for value in (1, 2):
            await http.put("/controller", json={"minimum_job_age_backoff": value})
    from datetime import UTC, datetime, timedelta

    future = datetime.now(UTC) + timedelta(days=1)
    await asyncio.wrap_future(live.call(live.app.state.ctx.store.db.prune_changes(future)))
    pruned = await asyncio.wrap_future(live.call(live.app.state.ctx.store.db.pruned_through()))
    assert pruned > 0
    with pytest.raises(InvalidStatus) as refused:
        await open_ws(live, token, f"?since={pruned + 1}")
    assert refused.value.response.status_code == 400
    ws = await open_ws(live, token, f"?since={pruned}")
    await ws.send(CONTROLLER_FILTER)
    async with api(live, token) as http:
        await http.put("/controller", json={"minimum_job_age_backoff": 3})
    frame = await next_frame(ws)
    assert frame["payload"]["minimum_job_age_backoff"] == 3 and frame["seq"] > pruned
    await ws.close()
