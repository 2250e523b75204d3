"""Resume across a server restart: the change log is durable, so a client that remembers the last ``seq``
it processed and reconnects with ``?since=`` to a restarted server (same database) gets exactly what it
missed, in order, then live changes (docs/events.md "Opt-in extensions: sequence numbers and resume")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pygarm.config import Settings
from tests.conftest import initialize
from tests.events.test_app_stream import next_frame, no_more_frames, subscribe
from tests.live import HTTP_TIMEOUT_S, run_live_server

pytestmark = pytest.mark.slow

CONTROLLER_ONLY = '{"filters":[{"entity-type":"controller"}]}'


async def set_backoff(base_url: str, token: str, value: int) -> None:
    async with httpx.AsyncClient(
        timeout=HTTP_TIMEOUT_S, base_url=base_url + "/api/v1", headers={"Authorization": f"Bearer {token}"}
    ) as http:
        response = await http.put("/controller", json={"minimum_job_age_backoff": value})
        assert response.status_code == 200, response.text


async def test_resume_with_since_across_a_server_restart(settings: Settings) -> None:
    with run_live_server(settings) as before:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, base_url=before.base_url) as http:
            token = await initialize(http)
        ws = await subscribe(before, token, "?seq=true", CONTROLLER_ONLY)
        await set_backoff(before.base_url, token, 1)
        seen = await next_frame(ws)
        assert seen["payload"]["minimum_job_age_backoff"] == 1
        last_seen = seen["seq"]
        await ws.close()
        for value in (2, 3):  # the client is away; the server commits these, then stops
            await set_backoff(before.base_url, token, value)

    with run_live_server(settings) as after:
        await set_backoff(after.base_url, token, 4)  # committed by the new process before the resume
        resumed = await subscribe(after, token, f"?since={last_seen}", CONTROLLER_ONLY)
        replayed = [await next_frame(resumed) for _ in range(3)]
        await set_backoff(after.base_url, token, 5)
        live: dict[str, Any] = await next_frame(resumed)
        frames = [*replayed, live]
        assert [f["payload"]["minimum_job_age_backoff"] for f in frames] == [2, 3, 4, 5]
        seqs = [f["seq"] for f in frames]
        assert seqs == sorted(set(seqs)) and seqs[0] > last_seen
        assert [f["entity-type"] for f in frames] == ["controller"] * 4
        await no_more_frames(resumed)
        await resumed.close()
