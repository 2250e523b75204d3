"""Events-stream extensions benchmark (issue 9): replay, snapshot, and field-filter dispatch cost.

    .venv/bin/python -m bench.extensions                       # SQLite, defaults below
    .venv/bin/python -m bench.extensions --backend postgresql --dsn postgresql://postgres@127.0.0.1/test

Three phases, each printed beside a reference measured in the same run:

1. **replay**: ``--replay`` change rows are appended to the log of a running server (``pygarm serve`` in
   its own process); one subscriber connects with ``?since=`` and ``send-everything`` and reads them all.
   Reference: the same rows read straight from the database by this process.
2. **snapshot**: ``--instances`` runners are added to one pool; one subscriber connects with
   ``?snapshot=true`` and an instance filter and reads up to ``snapshot-end``. Reference: ``GET
   /api/v1/instances`` (the REST list of the same runners).
3. **dispatch** (in process, the hub alone, no sockets): the time the hub spends per published instance
   update with 1 subscriber following one ``pool_id``, with 1,000 subscribers each following a different
   ``pool_id`` (every update goes to exactly one), and the unfiltered cases beside them: 1 and 1,000
   ``send-everything`` subscribers, and 1,000 subscribers that receive every instance event and would
   filter it themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from sqlalchemy import create_engine, insert, select

from bench.lightclient import RawHTTP, RawWebSocket
from bench.server import BenchServer, bench_server
from pygarm.events.change import Change, EntityType, Operation
from pygarm.events.filters import Decoded, decode_filter
from pygarm.events.hub import Hub
from pygarm.store.tables import change_events, instances

SEND_EVERYTHING = '{"send-everything":true}'


def database_url(server: BenchServer, backend: str, dsn: str) -> str:
    if backend == "postgresql":
        return dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
    config = Path(cmdline[cmdline.index(b"--config") + 1].decode())
    return f"sqlite:///{config.parent / 'garm.db'}"


def instance_payload(index: int, pool_id: str) -> dict[str, object]:
    return {
        "id": str(uuid.UUID(int=index)),
        "provider_id": f"bench-{index}",
        "agent_id": index,
        "name": f"garm-bench{index:06d}",
        "os_type": "linux",
        "os_name": "ubuntu",
        "os_version": "22.04",
        "os_arch": "amd64",
        "status": "running",
        "runner_status": "idle",
        "pool_id": pool_id,
        "updated_at": "2026-12-04T15:00:00Z",
        "github-runner-group": "",
    }


# --- replay ---------------------------------------------------------------------------------------


async def replay_phase(server: BenchServer, url: str, count: int) -> None:
    engine = create_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        start = (
            conn.execute(select(change_events.c.seq).order_by(change_events.c.seq.desc()).limit(1)).scalar()
            or 0
        )
        for offset in range(0, count, 5000):
            conn.execute(
                insert(change_events),
                [
                    {
                        "entity_type": "instance",
                        "operation": "update",
                        "payload": orjson.dumps(instance_payload(i, server.pool_id)),
                        "created_at": now,
                    }
                    for i in range(offset, min(count, offset + 5000))
                ],
            )
    http = await RawHTTP.connect(server.base_url, server.token)
    await http.request(
        "PUT", f"/api/v1/pools/{server.pool_id}", b'{"image":"img-replay"}'
    )  # the hub reads the log up
    await http.close()
    began, began_cpu = time.perf_counter(), time.process_time()
    with engine.connect() as conn:
        rows = conn.execute(select(change_events).where(change_events.c.seq > start)).fetchall()
    read_s, read_cpu = time.perf_counter() - began, time.process_time() - began_cpu
    engine.dispose()

    ws = await RawWebSocket.connect(server.ws_url, f"/api/v1/ws/events?since={start}", server.token)
    began, server_cpu = time.perf_counter(), server.cpu_seconds()
    ws.send_text(SEND_EVERYTHING)
    received = 0
    total = len(rows)
    while received < total:
        await ws.recv()
        received += 1
    elapsed, server_cpu = time.perf_counter() - began, server.cpu_seconds() - server_cpu
    await ws.close()
    print(f"== replay: {total:,} logged changes to 1 subscriber (?since=)")
    print(f"   events/s: {total / elapsed:,.0f} wall ({elapsed:.2f} s)")
    print(f"   events per server CPU second: {total / server_cpu:,.0f}")
    print(
        f"   reference, the same rows read straight from the database: {total / read_s:,.0f} rows/s wall, "
        f"{total / read_cpu:,.0f} per CPU second"
    )


# --- snapshot -------------------------------------------------------------------------------------


async def snapshot_phase(server: BenchServer, url: str, count: int) -> None:
    engine = create_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for offset in range(0, count, 5000):
            conn.execute(
                insert(instances),
                [
                    {
                        "id": str(uuid.uuid4()),
                        "provider_id": f"snap-{i}",
                        "name": f"garm-snap{i:06d}",
                        "agent_id": i,
                        "os_type": "linux",
                        "os_arch": "amd64",
                        "os_name": "ubuntu",
                        "os_version": "22.04",
                        "status": "running",
                        "runner_status": "idle",
                        "callback_url": "",
                        "metadata_url": "",
                        "create_attempt": 1,
                        "token_fetched": False,
                        "github_runner_group": "",
                        "pool_id": server.pool_id,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(offset, min(count, offset + 5000))
                ],
            )
    engine.dispose()
    ws = await RawWebSocket.connect(server.ws_url, "/api/v1/ws/events?snapshot=true", server.token)
    began, server_cpu = time.perf_counter(), server.cpu_seconds()
    ws.send_text('{"filters":[{"entity-type":"instance"}]}')
    frames = 0
    while True:
        frame = await ws.recv()
        if frame.startswith(b'{"control"'):
            break
        frames += 1
    elapsed, server_cpu = time.perf_counter() - began, server.cpu_seconds() - server_cpu
    await ws.close()
    http = await RawHTTP.connect(server.base_url, server.token)
    began, list_cpu = time.perf_counter(), server.cpu_seconds()
    status = await http.request("GET", "/api/v1/instances")
    list_s, list_cpu = time.perf_counter() - began, server.cpu_seconds() - list_cpu
    await http.close()
    print(f"== snapshot: {frames:,} instances (?snapshot=true, one pool)")
    print(f"   snapshot → snapshot-end: {elapsed:.2f} s wall, {server_cpu:.2f} s server CPU")
    print(
        f"   reference, GET /api/v1/instances of the same runners (HTTP {status}): {list_s:.2f} s wall, "
        f"{list_cpu:.2f} s server CPU"
    )


# --- dispatch -------------------------------------------------------------------------------------


def follow(pool_id: str) -> frozenset[tuple[EntityType, Operation]]:
    result = decode_filter(
        orjson.dumps({"filters": [{"entity-type": "instance", "match": {"pool_id": pool_id}}]})
    )
    assert isinstance(result, Decoded)
    return result.filter


CHUNK = 100
"""Changes published per call; queues are emptied between calls (outside the timing), as writers do."""


def dispatch_round(filters: list[frozenset[tuple[EntityType, Operation]]], changes: list[Change]) -> float:
    """Seconds of hub time per published change in one round."""

    async def no_log(_after: int, _limit: int) -> list[Change]:
        return []

    hub = Hub(no_log, 0, poll_interval=None, queue_limit=CHUNK + 1)
    subscriptions = [hub.subscribe() for _ in filters]
    for subscription, compiled in zip(subscriptions, filters, strict=True):
        subscription.set_filter(compiled)
    spent = 0.0
    for start in range(0, len(changes), CHUNK):
        chunk = changes[start : start + CHUNK]
        began = time.perf_counter()
        hub.publish(chunk)
        spent += time.perf_counter() - began
        for subscription in subscriptions:
            subscription.items.clear()
    for subscription in subscriptions:
        subscription.close()
    return spent / len(changes)


async def dispatch_phase(pools: int, events: int) -> None:
    pool_ids = [str(uuid.UUID(int=i + 1)) for i in range(pools)]
    now = datetime.now(UTC)
    changes = [
        Change(
            seq + 1,
            EntityType.INSTANCE,
            Operation.UPDATE,
            orjson.dumps(instance_payload(seq, pool_ids[seq % pools])),
            now,
        )
        for seq in range(events)
    ]
    everything = decode_filter(SEND_EVERYTHING)
    assert isinstance(everything, Decoded)
    plain_instances = decode_filter('{"filters":[{"entity-type":"instance"}]}')
    assert isinstance(plain_instances, Decoded)
    cases = {
        "one_filtered": [follow(pool_ids[0])],
        "many_filtered": [follow(p) for p in pool_ids],
        "one_plain": [everything.filter],
        "many_plain": [plain_instances.filter] * pools,
    }
    best = dict.fromkeys(cases, float("inf"))
    for _round in range(5):  # interleaved, best of five: other load on the machine hits every case alike
        for name, filters in cases.items():
            best[name] = min(best[name], dispatch_round(filters, changes))
    one_filtered, many_filtered = best["one_filtered"], best["many_filtered"]
    one_plain, many_plain = best["one_plain"], best["many_plain"]
    print(f"== dispatch: {events:,} instance updates spread over {pools:,} pools (hub only, in process)")
    print(f"   1 subscriber, match pool_id:                        {one_filtered * 1e6:6.2f} µs/event")
    print(
        f"   {pools:,} subscribers, each match a different pool_id: {many_filtered * 1e6:6.2f} µs/event"
        f"   ({many_filtered / one_filtered:.2f}× one)"
    )
    print(f"   unfiltered, 1 subscriber (send-everything):          {one_plain * 1e6:6.2f} µs/event")
    print(
        f"   unfiltered, {pools:,} subscribers of every instance event: {many_plain * 1e6:6.2f} µs/event"
        f"   ({many_plain / one_plain:.0f}× one)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--replay", type=int, default=100_000)
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--pools", type=int, default=1_000)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    await dispatch_phase(args.pools, args.events)
    with bench_server(args.backend, args.dsn) as server:
        url = database_url(server, args.backend, args.dsn)
        if args.backend == "postgresql":
            url = _server_dsn(server)
        await replay_phase(server, url, args.replay)
        await snapshot_phase(server, url, args.instances)


def _server_dsn(server: BenchServer) -> str:
    cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
    config = Path(cmdline[cmdline.index(b"--config") + 1].decode()).read_text()
    dsn = config.split('dsn = "', 1)[1].split('"', 1)[0]
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


if __name__ == "__main__":
    asyncio.run(main())
