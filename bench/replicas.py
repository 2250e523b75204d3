"""Writes side by side (issue 11 item 4): SQLite in one process, PostgreSQL with 1 replica, PostgreSQL
with 3 replicas on one database, in one run, so that the figures share the machine's load.

For each setup, two phases drive ``PUT /pools/{id}`` through REST (``bench/lightclient.py``) while
websocket subscribers with ``send-everything`` count the events:

* **sequential**: one update in flight, spread round-robin over the replicas, one subscriber per
  replica: update→event/s (every subscriber got the event), publish→receive p99.
* **concurrent**: ``--writers`` clients at once (writer *i* on replica *i* mod N), ``--subscribers``
  spread over the replicas: successful updates/s (REST), events/s until every subscriber got every
  event, p99, failed updates, lost events, frames whose ``seq`` did not increase, and how many distinct
  orders the subscribers saw (1 = one ordered stream).

    .venv/bin/python -m bench.replicas                          # sqlite, pg1, pg3
    .venv/bin/python -m bench.replicas --setups pg1,pg3,pg1-async,pg3-async
    .venv/bin/python -m bench.replicas --baseline-python /other/checkout/.venv/bin/python

``-async`` setups set ``[database.postgresql] synchronous_commit = false``. ``--baseline-python`` adds
each setup again with servers run by another checkout's interpreter (its code: before/after in one run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.fanout import DRAIN_TIMEOUT_S, Subscriber, percentile, receive, subscribe
from bench.lightclient import RawHTTP
from bench.server import (
    BenchServer,
    ServerProcess,
    free_port,
    postgres_schema,
    prepare,
    raise_fd_limit,
    write_config,
)

SETUPS = {
    "sqlite": ("sqlite", 1, True),
    "pg1": ("postgresql", 1, True),
    "pg3": ("postgresql", 3, True),
    "pg1-async": ("postgresql", 1, False),
    "pg3-async": ("postgresql", 3, False),
}


@dataclass
class Phase:
    updates_per_s: float = 0.0
    """Successful REST updates per second (until the last response)."""
    delivered_per_s: float = 0.0
    """Updates per second until every subscriber had every event."""
    events_per_s: float = 0.0
    p99_ms: float = float("nan")
    failures: int = 0
    lost: int = 0
    not_increasing: int = 0
    orders: int = 0
    server_cpu_ms: float = 0.0


@dataclass
class Result:
    name: str
    sequential: Phase = field(default_factory=Phase)
    concurrent: Phase = field(default_factory=Phase)


@contextmanager
def fleet(
    backend: str, dsn: str, replicas: int, synchronous_commit: bool, python: str
) -> Iterator[list[BenchServer]]:
    """``replicas`` servers on one database (same secrets), the first one initialized with a pool."""
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="pygarm-bench-") as tmp, ExitStack() as stack:
        if backend == "postgresql":
            dsn = stack.enter_context(postgres_schema(dsn))
        ports = [free_port() for _ in range(replicas)]
        template = write_config(Path(tmp), ports[0], backend, dsn).read_text()
        if not synchronous_commit:
            template = template.replace(
                "[database.postgresql]\n", "[database.postgresql]\n  synchronous_commit = false\n"
            )
        processes = []
        for index, port in enumerate(ports):
            directory = Path(tmp) / f"replica-{index}"
            directory.mkdir()
            text = template.replace(f"127.0.0.1:{ports[0]}", f"127.0.0.1:{port}")
            (directory / "config.toml").write_text(text.replace(f"port = {ports[0]}", f"port = {port}"))
            processes.append(ServerProcess(directory / "config.toml", port, python))
        try:
            first = processes[0].start()  # runs the migrations before the others start
            prepare(first)
            servers = [first]
            for process in processes[1:]:
                server = process.start()
                server.token, server.pool_id = first.token, first.pool_id
                servers.append(server)
            yield servers
        finally:
            for process in processes:
                process.stop()


async def drive(
    servers: list[BenchServer], first: int, count: int, in_flight: int, sent_at: dict[int, float]
) -> int:
    """PUT /pools/{id} ``count`` times, ``in_flight`` at once, writer *i* on replica *i* mod N (one
    writer: round-robin per update); returns how many failed."""
    numbers = iter(range(first, first + count))
    failures = 0
    path = f"/api/v1/pools/{servers[0].pool_id}"

    async def worker(index: int) -> None:
        nonlocal failures
        if in_flight == 1:
            clients = [await RawHTTP.connect(server.base_url, server.token) for server in servers]
        else:
            server = servers[index % len(servers)]
            clients = [await RawHTTP.connect(server.base_url, server.token)]
        try:
            for turn, number in enumerate(numbers):
                body = b'{"image":"img-%d"}' % number
                sent_at[number] = time.perf_counter()
                if await clients[turn % len(clients)].request("PUT", path, body) != 200:
                    failures += 1
        finally:
            for client in clients:
                await client.close()

    await asyncio.gather(*(worker(index) for index in range(in_flight)))
    return failures


async def run_phase(
    servers: list[BenchServer], subscribers: int, updates: int, in_flight: int, first: int
) -> Phase:
    subs: list[Subscriber] = []
    for index in range(subscribers):
        subs += await subscribe(servers[index % len(servers)], 1)
    sent_at: dict[int, float] = {}
    receivers = [asyncio.create_task(receive(sub, sent_at, updates)) for sub in subs]
    cpu_before = sum(server.cpu_seconds() for server in servers)
    started = time.perf_counter()
    failures = await drive(servers, first, updates, in_flight, sent_at)
    written = time.perf_counter() - started
    try:
        await asyncio.wait_for(asyncio.gather(*receivers), DRAIN_TIMEOUT_S)
    except TimeoutError:
        for task in receivers:
            task.cancel()
    delivered = time.perf_counter() - started
    cpu = sum(server.cpu_seconds() for server in servers) - cpu_before
    expected = set(range(first, first + updates))
    phase = Phase(
        updates_per_s=(updates - failures) / written,
        delivered_per_s=updates / delivered,
        events_per_s=sum(len(sub.received) for sub in subs) / delivered,
        p99_ms=percentile([value for sub in subs for value in sub.latencies], 0.99) * 1000,
        failures=failures,
        lost=sum(len(expected - set(sub.received)) for sub in subs),
        not_increasing=sum(sub.out_of_order for sub in subs),
        orders=len({tuple(sub.received) for sub in subs}),
        server_cpu_ms=cpu / updates * 1000,
    )
    for sub in subs:
        await sub.connection.close()
    return phase


async def measure(name: str, servers: list[BenchServer], args: argparse.Namespace) -> Result:
    result = Result(name)
    result.sequential = await run_phase(servers, len(servers), args.updates, 1, first=1)
    result.concurrent = await run_phase(servers, args.subscribers, args.updates, args.writers, first=10**6)
    print(f"   {name}: done", flush=True)
    return result


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    width = max(14, *(len(result.name) + 2 for result in results))

    def row(label: str, values: list[str]) -> None:
        print(f"   {label:<44}" + "".join(f"{value:>{width}}" for value in values))

    print(f"\n== writes side by side, {args.updates} updates per phase (same run)")
    row("", [result.name for result in results])
    seq = [result.sequential for result in results]
    con = [result.concurrent for result in results]
    row("sequential: update→event/s (1 sub/replica)", [f"{p.delivered_per_s:,.0f}" for p in seq])
    row("  publish→receive p99 ms", [f"{p.p99_ms:.1f}" for p in seq])
    row("  server CPU per update ms (all replicas)", [f"{p.server_cpu_ms:.2f}" for p in seq])
    row("  failed / lost / seq not increasing", [f"{p.failures}/{p.lost}/{p.not_increasing}" for p in seq])
    row(f"{args.writers} writers: successful updates/s", [f"{p.updates_per_s:,.0f}" for p in con])
    row(f"  events/s to {args.subscribers} subscribers", [f"{p.events_per_s:,.0f}" for p in con])
    row("  publish→receive p99 ms", [f"{p.p99_ms:.1f}" for p in con])
    row("  server CPU per update ms (all replicas)", [f"{p.server_cpu_ms:.2f}" for p in con])
    row("  failed / lost / seq not increasing", [f"{p.failures}/{p.lost}/{p.not_increasing}" for p in con])
    row("  distinct orders across subscribers", [str(p.orders) for p in con])
    sqlite = next((result for result in results if result.name == "sqlite"), None)
    if sqlite is not None:
        row(
            f"{args.writers} writers: updates/s relative to sqlite",
            [
                f"{result.concurrent.updates_per_s / sqlite.concurrent.updates_per_s:.2f}x"
                for result in results
            ],
        )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--setups", default="sqlite,pg1,pg3", help=f"comma-separated, of {', '.join(SETUPS)}")
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--subscribers", type=int, default=6)
    parser.add_argument("--baseline-python", help="also run each setup with this interpreter's pygarm")
    args = parser.parse_args()
    runs = [(name, sys.executable) for name in args.setups.split(",")]
    if args.baseline_python:
        runs = [
            (f"{name}@base", args.baseline_python) for name, _ in runs if name in ("sqlite", "pg1", "pg3")
        ] + runs
    print(f"== load average before: {' '.join(f'{value:.2f}' for value in os.getloadavg())}", flush=True)
    results = []
    for name, python in runs:
        backend, replicas, synchronous_commit = SETUPS[name.removesuffix("@base")]
        with fleet(backend, args.dsn, replicas, synchronous_commit, python) as servers:
            results.append(await measure(name, servers, args))
    print_table(results, args)
    print(f"\n== load average after: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
