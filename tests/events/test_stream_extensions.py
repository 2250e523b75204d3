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
from tests.live import HTTP_TIMEOUT_S

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
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http:
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


async def raw_frame(ws: ClientConnection) -> str:
    frame = await asyncio.wait_for(ws.recv(), 10.0)
    assert isinstance(frame, str)
    return frame


async def test_filter_ack_answers_each_accepted_filter(live_admin: tuple[Any, str]) -> None:
    """``?ack=true``: ``{"control":"filter-ack","seq":S}`` per accepted filter; events after S follow the new
    filter; an ignored message gets no ack; a bad filter keeps GARM's answer."""
    live, token = live_admin
    async with api(live, token) as http:
        await http.put("/controller", json={"minimum_job_age_backoff": 1})
        ws = await open_ws(live, token, "?ack=true")
        await ws.send(CONTROLLER_FILTER)
        ack = await raw_frame(ws)
        head = await asyncio.wrap_future(live.call(live.app.state.ctx.store.db.last_seq()))
        assert ack == f'{{"control":"filter-ack","seq":{head}}}'
        await http.put("/controller", json={"minimum_job_age_backoff": 2})
        event = await next_frame(ws)
        assert list(event) == ["entity-type", "operation", "payload", "seq"], "ack implies seq"
        assert event["seq"] > head

        await ws.send("{}")  # ignored: the filter stays, nothing answers
        await ws.send('{"filters":[{"entity-type":"repository"}]}')
        second = json.loads(await raw_frame(ws))
        assert second == {"control": "filter-ack", "seq": event["seq"]}
        await http.put("/controller", json={"minimum_job_age_backoff": 3})  # no longer selected
        await no_more_frames(ws)

        await ws.send('{"filters":[{"entity-type":"nope"}]}')
        assert await raw_frame(ws) == "invalid filter"
        await asyncio.wait_for(ws.wait_closed(), 10)
        assert ws.close_code == 1000


async def test_bookmark_reports_the_head_while_the_filter_skips_everything(
    live_admin: tuple[Any, str],
) -> None:
    """``?bookmark=SECONDS``: an idle subscriber learns the hub's position without matching events."""
    live, token = live_admin
    ws = await open_ws(live, token, "?bookmark=0.3")
    await ws.send('{"filters":[{"entity-type":"repository"}]}')
    first = json.loads(await raw_frame(ws))  # idle from the start: a bookmark after 0.3 s
    assert list(first) == ["control", "seq"] and first["control"] == "bookmark"
    async with api(live, token) as http:
        for value in (4, 5, 6):
            await http.put("/controller", json={"minimum_job_age_backoff": value})
    head = await asyncio.wrap_future(live.call(live.app.state.ctx.store.db.last_seq()))
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        frame = json.loads(await raw_frame(ws))
        assert frame["control"] == "bookmark", "only bookmarks: the filter matches nothing written"
        if frame["seq"] == head:
            break
        assert frame["seq"] < head and asyncio.get_running_loop().time() < deadline
    await ws.close()


async def test_no_bookmark_before_a_filter_and_none_without_asking(live_admin: tuple[Any, str]) -> None:
    live, token = live_admin
    ws = await open_ws(live, token, "?bookmark=0.1")
    await no_more_frames(ws, 0.5)  # nothing subscribed yet: nothing to bookmark
    await ws.close()
    plain = await open_ws(live, token, "?seq=true")
    await plain.send(CONTROLLER_FILTER)
    await no_more_frames(plain, 0.5)
    await plain.close()


async def test_snapshot_then_live_under_concurrent_writers(live_admin: tuple[Any, str]) -> None:
    """``?snapshot=true`` while 4 writers update credentials: every change after the snapshot's position
    arrives once, none before it, and snapshot + live equals the final state."""
    live, token = live_admin
    async with api(live, token) as http:
        ids = []
        for index in range(4):
            response = await http.post(
                "/github/credentials",
                json={
                    "name": f"c{index}",
                    "description": "0",
                    "endpoint": "github.com",
                    "auth_type": "pat",
                    "pat": {"oauth2_token": "ghp_x"},
                },
            )
            ids.append(response.json()["id"])
        stop = asyncio.Event()
        writes = [0] * 4

        async def writer(index: int) -> None:
            while not stop.is_set():
                writes[index] += 1
                response = await http.put(
                    f"/github/credentials/{ids[index]}", json={"description": str(writes[index])}
                )
                assert response.status_code == 200, response.text

        tasks = [asyncio.create_task(writer(i)) for i in range(4)]
        await asyncio.sleep(0.3)
        ws = await open_ws(live, token, "?snapshot=true")
        await ws.send('{"filters":[{"entity-type":"github_credentials"},{"entity-type":"controller"}]}')
        mirror: dict[str, dict[str, Any]] = {}
        while True:
            frame = json.loads(await raw_frame(ws))
            if "control" in frame:
                assert frame["control"] == "snapshot-end"
                position = frame["seq"]
                break
            assert frame["operation"] == "snapshot"
            mirror[f"{frame['entity-type']}/{frame['payload'].get('id', 'controller')}"] = frame["payload"]
        assert {key for key in mirror if key.startswith("github_credentials/")} == {
            f"github_credentials/{i}" for i in ids
        }
        assert "controller/controller" in mirror
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks)
        logged = await asyncio.wrap_future(
            live.call(live.app.state.ctx.store.db.read_changes_after(position, 100_000))
        )
        expected = [c.seq for c in logged if c.entity_type.value in ("github_credentials", "controller")]
        seqs = []
        while len(seqs) < len(expected):
            frame = json.loads(await raw_frame(ws))
            seqs.append(frame["seq"])
            mirror[f"{frame['entity-type']}/{frame['payload']['id']}"] = frame["payload"]
        await no_more_frames(ws)
        assert seqs == expected, "every change after the snapshot, once, in order"
        assert len(expected) > 0, "writers committed while the snapshot was live"
        listed = (await http.get("/github/credentials")).json()
        for creds in listed:
            assert mirror[f"github_credentials/{creds['id']}"] == creds
        await ws.close()
