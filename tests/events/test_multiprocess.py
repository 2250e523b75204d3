"""Two pygarm servers on one PostgreSQL database (scale-out): each one's subscribers see every change,
whichever server committed it, in one commit order with strictly increasing ``seq``.

The servers run with a 30 s safety poll, so delivery within the test's few seconds proves that the
``NOTIFY`` at commit woke the other server's hub (docs/design.md#sequence-order-equals-commit-order,
docs/design.md#waking-up-readers).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import psycopg
import pytest

from pygarm.config import Settings
from pygarm.store.db import CHANGE_NOTIFY_CHANNEL as CHANNEL
from tests.conftest import POSTGRES_DSN, TEST_PASSPHRASE, initialize, make_settings
from tests.events.test_app_stream import next_frame, no_more_frames, open_stream, subscribe, synced
from tests.live import HTTP_TIMEOUT_S, LiveServer, run_live_server
from tests.waiting import until

WRITES_PER_SERVER = 30


pytestmark = pytest.mark.slow  # two live servers each


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
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, base_url=first.base_url) as http:
        token = await initialize(http)
    # A subscriber starts at its own server's position in the log: let the second server hear of the
    # first one's initialization (NOTIFY, then its hub reads the log) so that both start at one point.
    await until(
        lambda: second.app.state.hub.last_seq >= first.app.state.hub.last_seq, "the second server caught up"
    )
    watchers = [await open_stream(first, token, "?seq=true"), await open_stream(second, token, "?seq=true")]
    await synced(first, token, *watchers)
    headers = {"Authorization": f"Bearer {token}"}

    async def write(server: LiveServer, base: int) -> None:
        async with httpx.AsyncClient(
            timeout=HTTP_TIMEOUT_S, base_url=server.base_url + "/api/v1", headers=headers
        ) as http:
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


def _listener_backends() -> set[int]:
    """PostgreSQL backends LISTENing for this process (both servers' listener connections): matched by
    the client port, since other processes may listen on the same database."""
    ports = {
        conn.laddr.port
        for conn in psutil.Process().net_connections(kind="tcp")
        if conn.raddr and conn.raddr.port == 5432
    }
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, client_port FROM pg_stat_activity WHERE query = %s", (f"LISTEN {CHANNEL}",)
        ).fetchall()
    return {pid for pid, port in rows if port in ports}


@pytest.fixture
def two_servers_alone(
    postgres_unreachable_reason: str | None,
) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two servers on a database of their own: NOTIFY channels are per database, and on the shared test
    database other test processes' commits would wake the hubs too, hiding a lost wake-up."""
    if postgres_unreachable_reason is not None:
        pytest.skip(postgres_unreachable_reason)
    name = f"pygarm_listen_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = urlunsplit(urlsplit(POSTGRES_DSN)._replace(path=f"/{name}"))
    database = {"backend": "postgresql", "passphrase": TEST_PASSPHRASE, "postgresql": {"dsn": dsn}}
    settings: Settings = make_settings(database, events={"poll_interval": "30s"})
    try:
        with run_live_server(settings) as first, run_live_server(settings) as second:
            yield first, second
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


async def test_delivery_continues_after_the_listen_connection_is_terminated(
    two_servers_alone: tuple[LiveServer, LiveServer],
) -> None:
    """pg_terminate_backend on the LISTEN connections: a change the second server commits while they are
    down (its NOTIFY is lost) still reaches the first server's subscriber when its listener reconnects,
    and later changes keep arriving; all well inside the 30 s safety poll, exactly once, in order."""
    first, second = two_servers_alone
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, base_url=first.base_url) as http:
        token = await initialize(http)
    watcher = await subscribe(first, token, "?seq=true")
    headers = {"Authorization": f"Bearer {token}"}
    started = time.monotonic()
    async with httpx.AsyncClient(
        timeout=HTTP_TIMEOUT_S, base_url=second.base_url + "/api/v1", headers=headers
    ) as http:

        async def write(value: int) -> None:
            response = await http.put("/controller", json={"minimum_job_age_backoff": value})
            assert response.status_code == 200, response.text

        await write(1)
        assert (await next_frame(watcher))["payload"]["minimum_job_age_backoff"] == 1
        await until(lambda: len(_listener_backends()) == 2, "both servers to LISTEN")
        before = _listener_backends()
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            for pid in before:
                assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        await until(lambda: not _listener_backends() & before, "the terminated backends to exit")
        await write(2)  # its NOTIFY reaches no listener of the first server: lost
        await until(
            lambda: len(after := _listener_backends()) == 2 and not after & before,
            "both listeners to reconnect",
        )
        # The reconnected listener wakes the hub by itself: no later NOTIFY needed to find the change.
        missed = await next_frame(watcher)
        assert missed["payload"]["minimum_job_age_backoff"] == 2
        await write(3)
        latest = await next_frame(watcher)
    assert latest["payload"]["minimum_job_age_backoff"] == 3
    assert missed["seq"] < latest["seq"]
    await no_more_frames(watcher)
    assert time.monotonic() - started < 20, "delivered by the listener, not the 30 s safety poll"
    await watcher.close()
