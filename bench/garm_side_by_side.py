"""GARM v0.1.5 and pygarm side by side: both servers run at once, each phase of ``bench/fanout.py`` and
``bench/writes.py`` runs on one and then on the other (the order swaps every round, so both see the same
machine load), and a last table holds the standard's ratios (docs/performance.md "Side by side with GARM
v0.1.5").

    .venv/bin/python -m bench.garm_side_by_side --garm-binary /tmp/garm-bin/garm [--rounds 3]

GARM runs on 127.0.0.1 with SQLite in a temporary directory, pygarm's fake GitHub (``pygarm-fake-github``)
as its GitHub endpoint and pygarm's test provider as its external provider; both servers get the same
admin, repository and disabled pool (``bench/server.py`` ``prepare``). GARM's events websocket has no
``seq``: its order is checked with the image counter each update writes. Nothing here needs the network.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.fanout import drive_updates, measure_idle_memory, run_phase
from bench.server import BenchServer, bench_server, free_port, prepare, raise_fd_limit
from pygarm.testing.demo import provider_executable
from pygarm.testing.fake_github import DEFAULT_PAT

START_TIMEOUT_S = 60.0
WRITES_TIMEOUT_S = 300.0


def garm_config(directory: Path, port: int) -> Path:
    """A GARM v0.1.5 config: SQLite, API on 127.0.0.1:``port``, pygarm's test provider as ``bench``."""
    state = directory / "provider-state"
    state.mkdir()
    provider_config = directory / "provider.json"
    provider_config.write_text(json.dumps({"state_dir": str(state)}))
    path = directory / "garm.toml"
    path.write_text(
        f"""[default]
enable_webhook_management = false

[logging]
log_level = "warn"
log_file = "{directory / "garm.log"}"
enable_log_streamer = false

[metrics]
enable = false

[jwt_auth]
secret = "{secrets.token_hex(32)}"
time_to_live = "24h"

[apiserver]
bind = "127.0.0.1"
port = {port}
use_tls = false

[database]
backend = "sqlite3"
passphrase = "{secrets.token_hex(16)}"
  [database.sqlite3]
  db_file = "{directory / "garm.db"}"

[[provider]]
name = "bench"
provider_type = "external"
description = "pygarm's test provider"
  [provider.external]
  provider_executable = "{provider_executable()}"
  config_file = "{provider_config}"
"""
    )
    return path


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.05)


@contextmanager
def child(argv: list[str], port: int, what: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, what)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def garm_server(binary: str) -> Iterator[BenchServer]:
    """GARM and the fake GitHub it talks to, each in its own process, prepared like pygarm's bench server."""
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="pygarm-garm-") as tmp:
        directory = Path(tmp)
        github_port, port = free_port(), free_port()
        fake = [sys.executable, "-m", "pygarm.testing.fake_github", "--port", str(github_port)]
        with (
            child(fake, github_port, "the fake GitHub", directory / "fake-github.log"),
            child(
                [binary, "-config", str(garm_config(directory, port))], port, "GARM", directory / "out.log"
            ) as garm,
        ):
            server = BenchServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", garm.pid)
            prepare(server, github_url=f"http://127.0.0.1:{github_port}", pat=DEFAULT_PAT)
            yield server


Figures = dict[str, float]
COUNTS = ("lost events", "out of order, sequential", "failed updates", "failures")
"""Figures whose rounds add up; the others show the median of the rounds."""


async def sequential(server: BenchServer, name: str, args: argparse.Namespace, base: int) -> Figures:
    one = await run_phase(server, f"{name}: sequential", 1, args.updates, 1, first=base)
    return {
        "update->event/s, 1 subscriber": one.updates_per_s,
        "p99 ms, 1 subscriber": one.p99_ms,
        "server CPU ms per update": one.cpu_per_update_ms,
        "lost events": one.lost,
        "out of order, sequential": one.out_of_order,
    }


async def fanout(server: BenchServer, name: str, args: argparse.Namespace, base: int) -> Figures:
    n = args.subscribers
    seq = await run_phase(server, f"{name}: sequential, fan-out", n, args.updates, 1, first=base)
    return {
        f"frames/s to {n}, sequential": seq.frames_per_s,
        "server CPU us per frame": seq.cpu_per_frame_us,
        "lost events": seq.lost,
        "out of order, sequential": seq.out_of_order,
    }


async def in_flight(server: BenchServer, name: str, args: argparse.Namespace, base: int) -> Figures:
    n = args.subscribers
    flight = await run_phase(server, f"{name}: 8 in flight, fan-out", n, args.updates, 8, first=base)
    return {
        f"frames/s to {n}, 8 in flight": flight.frames_per_s,
        "p50 ms, 8 in flight": flight.p50_ms,
        "p99 ms, 8 in flight": flight.p99_ms,
        "failed updates, 8 in flight": flight.failures,
        "lost events": flight.lost,
    }


async def idle(server: BenchServer, name: str, args: argparse.Namespace, base: int) -> Figures:
    print(f"\n-- {name}")
    each = await measure_idle_memory(server, args.idle, first=base)
    return {f"KiB RSS per idle subscriber ({args.idle})": each / 1024}


async def writers(server: BenchServer, name: str, args: argparse.Namespace, base: int) -> Figures:
    started = time.perf_counter()
    drive = drive_updates(server, base, args.write_updates, args.writers, {})
    failures = await asyncio.wait_for(drive, WRITES_TIMEOUT_S)
    rate = (args.write_updates - failures) / (time.perf_counter() - started)
    print(f"\n== {name}: {args.writers} concurrent writers, {args.write_updates} pool updates, no subscriber")
    print(f"   successful updates/s: {rate:,.0f}   failures: {failures}")
    return {f"{args.writers} writers: updates/s": rate, f"{args.writers} writers: failures": failures}


Phase = Callable[[BenchServer, str, argparse.Namespace, int], Awaitable[Figures]]
PHASES: tuple[Phase, ...] = (sequential, fanout, in_flight, idle, writers)
RATIOS = (  # (figure, pygarm/GARM must be, bound): the standard's side-by-side targets
    ("update->event/s, 1 subscriber", ">=", 1.5),
    ("frames/s to {n}, sequential", ">=", 2.0),
    ("frames/s to {n}, 8 in flight", ">=", 2.0),
    ("p99 ms, 8 in flight", "<=", 0.5),
    ("KiB RSS per idle subscriber ({idle})", "<=", 0.5),
)


def summary(rounds: list[Figures]) -> Figures:
    merged: dict[str, list[float]] = {}
    for figures in rounds:
        for key, value in figures.items():
            merged.setdefault(key, []).append(value)
    return {
        key: sum(values) if any(word in key for word in COUNTS) else statistics.median(values)
        for key, values in merged.items()
    }


def print_table(garm: Figures, ours: Figures, args: argparse.Namespace) -> None:
    print(f"\n== side by side, same run, {args.rounds} round(s): medians; counts added up")
    print(f"   load average now: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    print(f"   {'figure':<38} {'GARM v0.1.5':>12} {'pygarm':>12} {'pygarm/GARM':>12}")
    for key, value in garm.items():
        ratio = f"{ours[key] / value:.2f}x" if value else "-"
        print(f"   {key:<38} {value:>12,.2f} {ours[key]:>12,.2f} {ratio:>12}")
    print("\n== the standard's ratios (pygarm / GARM)")
    for template, relation, bound in RATIOS:
        key = template.format(n=args.subscribers, idle=args.idle)
        share = ours[key] / garm[key]
        met = share >= bound if relation == ">=" else share <= bound
        print(f"   {key:<38} {share:6.2f}x  target {relation} {bound}x  {'met' if met else 'NOT met'}")
    writes = f"{args.writers} writers: failures"
    print(
        f"   {writes:<38} GARM {garm[writes]:.0f}/{args.write_updates * args.rounds}, "
        f"pygarm {ours[writes]:.0f}  target 0  {'met' if ours[writes] == 0 else 'NOT met'}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--garm-binary", default=os.environ.get("PYGARM_GARM_BINARY", ""))
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--write-updates", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2, help="each round swaps which server goes first")
    args = parser.parse_args()
    if not args.garm_binary:
        parser.error("--garm-binary (or PYGARM_GARM_BINARY) is required: see docs/performance.md")
    print(f"load average at start: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    with garm_server(args.garm_binary) as garm, bench_server() as pygarm:
        servers = {"GARM v0.1.5": garm, "pygarm": pygarm}
        results: dict[str, list[Figures]] = {name: [] for name in servers}
        for round_number in range(args.rounds):
            order = list(servers) if round_number % 2 == 0 else list(reversed(servers))
            for index, phase in enumerate(PHASES):
                if phase is idle and round_number:
                    continue  # RSS grows once: later rounds reuse the memory the first round's sockets freed
                base = (round_number * len(PHASES) + index) * 10**6 + 1
                for name in order:  # the same phase back to back, so both see the same machine load
                    results[name].append(await phase(servers[name], name, args, base))
    print_table(summary(results["GARM v0.1.5"]), summary(results["pygarm"]), args)


if __name__ == "__main__":
    asyncio.run(main())
