"""Two pygarm servers on one PostgreSQL database (scale-out): each one's subscribers see every change,
whichever server committed it, in one commit order with strictly increasing ``seq``.

The servers run with a 30 s safety poll, so delivery within the test's few seconds proves that the
``NOTIFY`` at commit woke the other server's hub (docs/design.md#sequence-order-equals-commit-order,
docs/design.md#waking-up-readers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pygarm.config import Settings
from tests.conftest import initialize, make_settings
from tests.events.test_app_stream import next_frame, no_more_frames, subscribe
from tests.live import LiveServer, run_live_server

WRITES_PER_SERVER = 30


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Only PostgreSQL: SQLite is a single-process database."""
    return str(request.param)


@pytest.fixture
def two_servers(database_section: dict[str, Any]) -> Iterator[tuple[LiveServer, LiveServer]]:
    settings: Settings = make_settings(database_section, events={"poll_interval": "30s"})
    with run_live_server(settings) as first, run_live_server(settings) as second:
        yield first, second


async def test_changes_reach_subscribers_of_the_other_server(
    two_servers: tuple[LiveServer, LiveServer],
) -> None:
    first, second = two_servers
    async with httpx.AsyncClient(base_url=first.base_url) as http:
        token = await initialize(http)
    watchers = [await subscribe(first, token, "?seq=true"), await subscribe(second, token, "?seq=true")]
    headers = {"Authorization": f"Bearer {token}"}

    async def write(server: LiveServer, base: int) -> None:
        async with httpx.AsyncClient(base_url=server.base_url + "/api/v1", headers=headers) as http:
            for step in range(WRITES_PER_SERVER):
                response = await http.put("/controller", json={"minimum_job_age_backoff": base + step})
                assert response.status_code == 200, response.text

    await asyncio.gather(write(first, 1000), write(second, 2000))
    expected = sorted(
        [1000 + s for s in range(WRITES_PER_SERVER)] + [2000 + s for s in range(WRITES_PER_SERVER)]
    )
    orders = []
    for ws in watchers:
        frames = [await next_frame(ws) for _ in range(2 * WRITES_PER_SERVER)]
        seqs = [frame["seq"] for frame in frames]
        assert seqs == sorted(set(seqs)), "strictly increasing"
        assert sorted(f["payload"]["minimum_job_age_backoff"] for f in frames) == expected
        orders.append(seqs)
        await no_more_frames(ws)
        await ws.close()
    assert orders[0] == orders[1], "both servers deliver the same commit order"
