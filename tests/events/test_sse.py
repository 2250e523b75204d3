"""``GET /api/v1/events/stream``: the events stream as Server-Sent Events on both backends
(docs/events.md#server-sent-events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx

from tests.events.test_app_stream import api

CONTROLLER = quote('{"filters":[{"entity-type":"controller"}]}')


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """Parse the text/event-stream body into events (field → value)."""
    event: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if event:
                yield event
                event = {}
            continue
        field, _, value = line.partition(": ")
        event[field] = value


async def next_event(events: AsyncIterator[dict[str, str]]) -> dict[str, str]:
    return await asyncio.wait_for(anext(events), 10)


async def test_events_arrive_with_id_and_seq(live_admin: tuple[Any, str]) -> None:
    live, token = live_admin
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=live.base_url, timeout=10) as http,
        http.stream(
            "GET", f"/api/v1/events/stream?ack=true&filter={CONTROLLER}", headers=headers
        ) as response,
        api(live, token) as rest,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        ack = await next_event(events)
        assert ack["event"] == "control" and json.loads(ack["data"])["control"] == "filter-ack"
        await rest.put("/controller", json={"minimum_job_age_backoff": 9})
        event = await next_event(events)
        frame = json.loads(event["data"])
        assert "event" not in event and event["id"] == str(frame["seq"])
        assert list(frame) == ["entity-type", "operation", "payload", "seq"]
        assert frame["payload"]["minimum_job_age_backoff"] == 9


async def test_snapshot_then_last_event_id_resumes(live_admin: tuple[Any, str]) -> None:
    live, token = live_admin
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/events/stream?snapshot=true&filter={CONTROLLER}"
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as http, api(live, token) as rest:
        async with http.stream("GET", url, headers=headers) as response:
            events = sse_events(response)
            snap = await next_event(events)
            assert json.loads(snap["data"])["operation"] == "snapshot"
            end = await next_event(events)
            assert end["event"] == "control" and json.loads(end["data"])["control"] == "snapshot-end"
            last_id = end["id"]
        for value in (21, 22):
            await rest.put("/controller", json={"minimum_job_age_backoff": value})
        # What EventSource does on reconnect: the same URL, plus Last-Event-ID; no second snapshot.
        async with http.stream("GET", url, headers={**headers, "Last-Event-ID": last_id}) as response:
            events = sse_events(response)
            replayed = [json.loads((await next_event(events))["data"]) for _ in range(2)]
            assert [f["payload"]["minimum_job_age_backoff"] for f in replayed] == [21, 22]
            assert all(f["operation"] == "update" and f["seq"] > int(last_id) for f in replayed)


async def test_bad_requests_are_refused_before_streaming(live_admin: tuple[Any, str]) -> None:
    live, token = live_admin
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as http:
        missing = await http.get("/api/v1/events/stream", headers=headers)
        assert missing.status_code == 400
        assert missing.json()["details"] == "filter is required: a URL-encoded filter message"
        empty = await http.get(f"/api/v1/events/stream?filter={quote('{}')}", headers=headers)
        assert empty.json() == {"error": "Bad Request", "details": "filter: no filters provided"}
        invalid = quote('{"filters":[{"entity-type":"x"}]}')
        bad = await http.get(f"/api/v1/events/stream?filter={invalid}", headers=headers)
        assert bad.status_code == 400 and bad.json()["details"] == "filter: invalid filter"
        anonymous = await http.get(f"/api/v1/events/stream?filter={CONTROLLER}")
        assert anonymous.status_code == 401
        beyond = await http.get(f"/api/v1/events/stream?since=99999&filter={CONTROLLER}", headers=headers)
        assert beyond.status_code == 400
