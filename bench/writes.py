"""Concurrent-writer benchmark: 8 clients updating pools through REST at once (GARM v0.1.5 answers a
third of these with 500 "database is locked").

    .venv/bin/python -m bench.writes [--writers 8] [--updates 4000] [--backend postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.fanout import drive_updates
from bench.server import bench_server


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--updates", type=int, default=4000)
    args = parser.parse_args()
    with bench_server(args.backend, args.dsn) as server:
        sent_at: dict[int, float] = {}
        started = time.perf_counter()
        cpu_before, client_cpu_before = server.cpu_seconds(), time.process_time()
        failures = await drive_updates(server, 1, args.updates, args.writers, sent_at)
        elapsed = time.perf_counter() - started
        server_cpu, client_cpu = server.cpu_seconds() - cpu_before, time.process_time() - client_cpu_before
        print(f"== {args.writers} concurrent writers, {args.updates} pool updates ({args.backend})")
        print(f"   successful updates/s: {(args.updates - failures) / elapsed:,.0f}   failures: {failures}")
        # On a shared machine the rate follows the load; the CPU per update is the figure that survives it.
        print(
            f"   CPU busy: server {server_cpu / elapsed:.0%}, load generator {client_cpu / elapsed:.0%}"
            f" of a core; server CPU per update {server_cpu / args.updates * 1000:.2f} ms"
        )


if __name__ == "__main__":
    asyncio.run(main())
