"""The events stream of the whole app, REST call to socket (issue 3 "Done when").

These run a real server (``live_admin``) and real websocket clients: every mutation reaches a
``send-everything`` subscriber exactly once with the payload a REST GET returns; concurrent writers are
seen by every subscriber in one order with strictly increasing sequence numbers and no gaps; a
resuming subscriber misses nothing; a password change closes that user's sockets
(docs/garm-protocol.md#websocket-connection).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import ADMIN_PASSWORD
from tests.live import HTTP_TIMEOUT_S

RECV_TIMEOUT_S = 10.0
SEND_EVERYTHING = '{"send-everything":true}'
MARKER_POLL_S = 0.2
_markers = itertools.count(900_000)
"""Controller ``minimum_job_age_backoff`` values that :func:`synced` writes; tests use small ones."""


async def subscribe(
    live: Any, token: str, query: str = "", message: str = SEND_EVERYTHING
) -> ClientConnection:
    """Connect and send a filter (which must select controller updates); return once it is applied.

    With ``?since=`` there is nothing to wait for: the replay covers every change after the resume
    point, whenever the filter is applied."""
    ws = await open_stream(live, token, query, message)
    if "since=" not in query:
        await synced(live, token, ws)
    return ws


async def open_stream(
    live: Any, token: str, query: str = "", message: str = SEND_EVERYTHING
) -> ClientConnection:
    ws = await connect(
        f"{live.ws_url}/api/v1/ws/events{query}",
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
    )
    await ws.send(message)
    return ws


async def synced(live: Any, token: str, *sockets: ClientConnection) -> None:
    """Wait until the filter of each socket is applied. GARM sends no reply to a filter, so, like
    ``tests/client/events_probe.py``'s ``Probe.sync``, update the controller until each socket receives
    such an update, then once more and read each socket through that last one. Every frame read meanwhile
    must be one of these markers, so the next frame is the test's own."""
    markers: set[int] = set()
    async with api(live, token) as http:

        async def mark() -> int:
            value = next(_markers)
            markers.add(value)
            response = await http.put("/controller", json={"minimum_job_age_backoff": value})
            assert response.status_code == 200, response.text
            return value

        def marker_of(frame: dict[str, Any]) -> int:
            assert frame["entity-type"] == "controller", frame
            value = frame["payload"]["minimum_job_age_backoff"]
            assert value in markers, frame
            return int(value)

        await mark()
        deadline = time.monotonic() + RECV_TIMEOUT_S
        for ws in sockets:
            while True:
                try:
                    raw = await asyncio.wait_for(ws.recv(), MARKER_POLL_S)
                    break
                except TimeoutError:
                    assert time.monotonic() < deadline, "the filter was never applied"
                    await mark()
            marker_of(json.loads(raw))
        last = await mark()
    for ws in sockets:
        while marker_of(await next_frame(ws)) != last:
            pass


async def next_frame(ws: ClientConnection) -> dict[str, Any]:
    frame = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
    assert isinstance(frame, str), "events are TEXT frames"
    data: dict[str, Any] = json.loads(frame)
    return data


async def no_more_frames(ws: ClientConnection, wait_s: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), wait_s)


def api(live: Any, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=HTTP_TIMEOUT_S,
        base_url=live.base_url + "/api/v1",
        headers={"Authorization": f"Bearer {token}"},
    )


async def make_credentials(http: httpx.AsyncClient, name: str = "creds") -> dict[str, Any]:
    response = await http.post(
        "/github/credentials",
        json={
            "name": name,
            "description": "d",
            "endpoint": "github.com",
            "auth_type": "pat",
            "pat": {"oauth2_token": "ghp_known_secret_value"},
        },
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_each_mutation_is_one_frame_with_the_rest_payload(live_admin: tuple[Any, str]) -> None:
    """docs/garm-protocol.md#event-frame frame shape; payload = REST GET body at that moment (issue 3
    item 2)."""
    live, token = live_admin
    ws = await subscribe(live, token)
    async with api(live, token) as http:
        creds = await make_credentials(http)
        frame = await next_frame(ws)
        assert list(frame) == ["entity-type", "operation", "payload"]
        assert (frame["entity-type"], frame["operation"]) == ("github_credentials", "create")
        got = await http.get(f"/github/credentials/{creds['id']}")
        assert frame["payload"] == got.json() == creds

        repo = (
            await http.post(
                "/repositories",
                json={
                    "owner": "octo",
                    "name": "hello",
                    "credentials_name": "creds",
                    "webhook_secret": "whsec_known",
                },
            )
        ).json()
        frame = await next_frame(ws)
        assert (frame["entity-type"], frame["operation"]) == ("repository", "create")
        repo_get = (await http.get(f"/repositories/{repo['id']}")).json()
        assert frame["payload"] == repo_get == repo
        assert (await http.get("/repositories")).json() == [repo_get]

        response = await http.put("/controller", json={"minimum_job_age_backoff": 7})
        frame = await next_frame(ws)
        assert (frame["entity-type"], frame["operation"]) == ("controller", "update")
        assert frame["payload"] == response.json()
        # GET /controller adds the serving host's name, which the stored controller (so the event, and
        # the PUT's answer, as in GARM) does not have.
        assert frame["payload"] == {**(await http.get("/controller")).json(), "hostname": ""}

        response = await http.delete(f"/repositories/{repo['id']}")
        assert response.status_code == 200
        frame = await next_frame(ws)
        assert (frame["entity-type"], frame["operation"]) == ("repository", "delete")
        assert frame["payload"] == repo_get, "the deleted object as a GET returned it"
        await no_more_frames(ws)
        assert "ghp_known_secret_value" not in got.text
    await ws.close()


async def test_concurrent_writers_one_order_strictly_increasing_no_gaps(live_admin: tuple[Any, str]) -> None:
    """8 writers at once; 3 subscribers with ``?seq=true`` see the same frames in the same order, seq
    strictly increasing with no gaps, and each update exactly once (issue 3 "Done when")."""
    live, token = live_admin
    writers, per_writer = 8, 25
    async with api(live, token) as http:
        subscribers = [await open_stream(live, token, "?seq=true") for _ in range(3)]
        await synced(live, token, *subscribers)

        async def writer(index: int) -> None:
            for step in range(per_writer):
                response = await http.put(
                    "/controller", json={"minimum_job_age_backoff": index * 1000 + step}
                )
                assert response.status_code == 200, response.text

        await asyncio.gather(*(writer(index) for index in range(writers)))
        total = writers * per_writer
        sequences = []
        for ws in subscribers:
            frames = [await next_frame(ws) for _ in range(total)]
            seqs = [frame["seq"] for frame in frames]
            assert seqs == list(range(seqs[0], seqs[0] + total)), "strictly increasing, no gaps"
            values = sorted(frame["payload"]["minimum_job_age_backoff"] for frame in frames)
            assert values == sorted(i * 1000 + s for i in range(writers) for s in range(per_writer))
            assert list(frames[0]) == ["entity-type", "operation", "payload", "seq"]
            sequences.append(seqs)
            await no_more_frames(ws, 0.2)
        assert sequences[0] == sequences[1] == sequences[2]
        final = (await http.get("/controller")).json()["minimum_job_age_backoff"]
        assert final == frames[-1]["payload"]["minimum_job_age_backoff"], "last event = committed state"
        for ws in subscribers:
            await ws.close()


async def test_resume_replays_what_was_missed_then_goes_live(live_admin: tuple[Any, str]) -> None:
    """``?since=N`` replays matching logged changes after N, then goes live: no gap, no duplicate."""
    live, token = live_admin
    async with api(live, token) as http:
        ws = await subscribe(live, token, "?seq=true")
        await http.put("/controller", json={"minimum_job_age_backoff": 1})
        last_seen = (await next_frame(ws))["seq"]
        await ws.close()
        for value in (2, 3, 4):  # missed while disconnected
            await http.put("/controller", json={"minimum_job_age_backoff": value})
        await make_credentials(http, "not-in-filter")
        resumed = await subscribe(
            live, token, f"?since={last_seen}", '{"filters":[{"entity-type":"controller"}]}'
        )
        await http.put("/controller", json={"minimum_job_age_backoff": 5})
        frames = [await next_frame(resumed) for _ in range(4)]
        assert [f["payload"]["minimum_job_age_backoff"] for f in frames] == [2, 3, 4, 5]
        seqs = [f["seq"] for f in frames]
        assert seqs == sorted(seqs) and seqs[0] > last_seen
        await no_more_frames(resumed)
        await resumed.close()


async def test_resume_from_a_pruned_point_is_closed_4001(live_admin: tuple[Any, str]) -> None:
    """A resume point the log no longer holds is refused plainly, never served with a silent gap."""
    live, token = live_admin
    async with api(live, token) as http:
        for value in (1, 2):
            await http.put("/controller", json={"minimum_job_age_backoff": value})
    future = datetime.now(UTC) + timedelta(days=1)
    removed = await asyncio.wrap_future(live.call(live.app.state.ctx.store.db.prune_changes(future)))
    assert removed > 0
    ws = await subscribe(live, token, "?since=0")
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), RECV_TIMEOUT_S)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


async def test_bad_extension_parameter_is_refused_before_upgrade(live_admin: tuple[Any, str]) -> None:
    live, token = live_admin
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http:
        response = await http.get(
            f"{live.base_url}/api/v1/ws/events?since=-4",
            headers={
                "Authorization": f"Bearer {token}",
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
    assert response.status_code == 400


async def test_password_change_closes_that_users_sockets(live_admin: tuple[Any, str]) -> None:
    """GARM closes a user's websockets when its password generation changes
    (docs/garm-protocol.md#websocket-connection); pygarm emits the user/update that makes this work, and the
    old token stops working."""
    live, token = live_admin
    ws = await subscribe(live, token)
    async with api(live, token) as http:
        me = (await http.get("/users")).json()[0]
        response = await http.put(f"/users/{me['id']}/password", json={"password": ADMIN_PASSWORD + "-new!"})
        assert response.status_code == 200, response.text
    with pytest.raises(ConnectionClosed) as closed:
        while True:  # the user/update frame itself may come first
            frame = await next_frame(ws)
            assert frame["entity-type"] == "user"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    async with api(live, token) as http:
        assert (await http.get("/controller")).status_code == 401
