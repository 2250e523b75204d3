"""Fan-out benchmark: REST updates in, websocket events out (issue 3 item 7).

Starts a server in its own process, connects subscribers with ``send-everything``, drives pool updates
through the REST API (with the small clients of ``bench/lightclient.py``, so that the load generator
does not cap what is measured), and prints: update→event/s with one subscriber (sequential), frames/s to N
subscribers (8 updates in flight), publish→receive latency percentiles, lost and out-of-order counts, and
RSS per idle subscriber. Each update writes a distinct ``image`` value (``img-<n>``), which is how a
subscriber recognises which update an event belongs to.

    .venv/bin/python -m bench.fanout                 # defaults below, SQLite
    .venv/bin/python -m bench.fanout --backend postgresql --dsn postgresql://postgres@127.0.0.1/test

The sequential phases run twice: against pygarm, and against ``bench/reference.py``, a minimal asyncio
server that writes one pre-built frame to every socket (the floor of this stack), so the last table shows
pygarm's server CPU per delivered frame beside the floor's, measured in the same run (issue 14).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from bench.lightclient import FrameSubscriber, RawHTTP, RawWebSocket
from bench.server import BenchServer, bench_server, free_port

IMAGE_NUMBER = re.compile(rb'"image":"img-(\d+)"')
SEQ = re.compile(rb'"seq":(\d+)}$')
SEND_EVERYTHING = '{"send-everything":true}'
EVENTS_PATH = "/api/v1/ws/events?seq=true"
"""GARM v0.1.5 ignores the query and sends no ``seq``; :func:`receive` then orders by the image number."""
SUBSCRIBE_SETTLE_S = 0.5
"""Time for the server to apply every subscriber's filter before updates start."""
DRAIN_TIMEOUT_S = 30.0


@dataclass
class Subscriber:
    connection: RawWebSocket
    received: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    out_of_order: int = 0
    closed: str = ""


async def subscribe(server: BenchServer, count: int) -> list[Subscriber]:
    subscribers = []
    for _ in range(count):
        connection = await RawWebSocket.connect(server.ws_url, EVENTS_PATH, server.token)
        connection.send_text(SEND_EVERYTHING)
        subscribers.append(Subscriber(connection))
    await asyncio.sleep(SUBSCRIBE_SETTLE_S)
    return subscribers


async def receive(subscriber: Subscriber, sent_at: dict[int, float], expected: int) -> None:
    """Record each pool event's number and latency; count frames whose ``seq`` does not increase (without
    a ``seq``, as from GARM, whose image number does not: meaningful only for sequential updates)."""
    last_seq = -1
    while len(subscriber.received) < expected:
        try:
            frame = await subscriber.connection.recv()
        except (ConnectionError, asyncio.IncompleteReadError) as exc:  # its missing events count as lost
            subscriber.closed = str(exc)
            return
        now = time.perf_counter()
        match = IMAGE_NUMBER.search(frame)
        if match is None:
            continue
        number = int(match.group(1))
        subscriber.received.append(number)
        if number in sent_at:
            subscriber.latencies.append(now - sent_at[number])
        seq_match = SEQ.search(frame)
        seq = int(seq_match.group(1)) if seq_match else number
        if seq <= last_seq:
            subscriber.out_of_order += 1
        last_seq = max(last_seq, seq)


async def drive_updates(
    server: BenchServer,
    first: int,
    count: int,
    in_flight: int,
    sent_at: dict[int, float],
    failed: set[int] | None = None,
) -> int:
    """PUT /pools/{id} ``count`` times, ``in_flight`` at once; returns how many failed (their numbers go to
    ``failed``)."""
    numbers = iter(range(first, first + count))
    failures = 0
    failed = set() if failed is None else failed
    path = f"/api/v1/pools/{server.pool_id}"

    async def worker() -> None:
        nonlocal failures
        http = await RawHTTP.connect(server.base_url, server.token)
        try:
            for number in numbers:
                body = b'{"image":"img-%d"}' % number
                sent_at[number] = time.perf_counter()
                if await http.request("PUT", path, body) != 200:
                    failures += 1
                    failed.add(number)
        finally:
            await http.close()

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return failures


async def all_received(subs: list[Subscriber], receivers: list[asyncio.Task[None]], goal: int) -> None:
    """Until every subscriber has ``goal`` pool events (fewer than its receiver waits for when updates
    failed: GARM answers some concurrent updates with 500 and sends no event for them)."""
    while any(len(sub.received) < goal for sub in subs):
        pending = [task for task in receivers if not task.done()]
        if not pending:
            break
        await asyncio.wait(pending, timeout=0.005, return_when=asyncio.FIRST_COMPLETED)
    for task in receivers:
        if task.done() and task.exception() is not None:
            raise RuntimeError("a subscriber failed") from task.exception()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class PhaseResult:
    updates_per_s: float
    frames_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_per_update_ms: float
    cpu_per_frame_us: float
    failures: int
    lost: int
    out_of_order: int
    orders: int


async def run_phase(
    server: BenchServer, name: str, subscribers: int, updates: int, in_flight: int, first: int
) -> PhaseResult:
    """Print the phase's figures and return them."""
    subs = await subscribe(server, subscribers)
    sent_at: dict[int, float] = {}
    receivers = [asyncio.create_task(receive(sub, sent_at, updates)) for sub in subs]
    started = time.perf_counter()
    cpu_before = server.cpu_seconds()
    client_cpu_before = time.process_time()
    failed: set[int] = set()
    failures = await drive_updates(server, first, updates, in_flight, sent_at, failed)
    with suppress(TimeoutError):
        await asyncio.wait_for(all_received(subs, receivers, updates - failures), DRAIN_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    for task in receivers:
        task.cancel()
    server_cpu = server.cpu_seconds() - cpu_before
    client_cpu = time.process_time() - client_cpu_before
    frames = sum(len(sub.received) for sub in subs)
    expected = set(range(first, first + updates)) - failed
    lost = sum(len(expected - set(sub.received)) for sub in subs)
    orders = {tuple(sub.received) for sub in subs}
    latencies = [value for sub in subs for value in sub.latencies]
    p50, p99, worst = (percentile(latencies, q) * 1000 for q in (0.5, 0.99, 1.0))
    result = PhaseResult(
        updates_per_s=updates / elapsed,
        frames_per_s=frames / elapsed,
        p50_ms=p50,
        p99_ms=p99,
        cpu_per_update_ms=server_cpu / updates * 1000,
        cpu_per_frame_us=server_cpu / max(frames, 1) * 1e6,
        failures=failures,
        lost=lost,
        out_of_order=sum(sub.out_of_order for sub in subs),
        orders=len(orders),
    )
    print(f"\n== {name}: {subscribers} subscriber(s), {updates} updates, {in_flight} in flight")
    print(f"   updates/s (REST → every event delivered): {result.updates_per_s:,.0f}")
    print(f"   frames/s delivered:                        {result.frames_per_s:,.0f}")
    print(f"   publish→receive latency ms: p50 {p50:.2f}  p99 {p99:.2f}  max {worst:.2f}")
    print(
        f"   CPU busy: server {server_cpu / elapsed:.0%}, load generator {client_cpu / elapsed:.0%}"
        " of a core;"
        f" server CPU per update {result.cpu_per_update_ms:.2f} ms"
    )
    print(
        f"   failed updates: {failures}   lost events: {lost}   "
        f"seq not increasing: {result.out_of_order}   "
        f"distinct orders across subscribers: {result.orders}"
    )
    print(f"   server CPU per delivered frame: {result.cpu_per_frame_us:.1f} µs")
    for sub in subs:
        await sub.connection.close()
    return result


@contextmanager
def reference_server() -> Iterator[BenchServer]:
    """``bench/reference.py`` in its own process, looking to the phases like a pygarm with one pool."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.reference", "--port", str(port)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the reference server did not start") from None
                time.sleep(0.05)
        base = f"127.0.0.1:{port}"
        yield BenchServer(f"http://{base}", f"ws://{base}", process.pid, token="-", pool_id="reference")
    finally:
        process.terminate()
        process.wait(timeout=10)


async def measure_idle_memory(server: BenchServer, count: int, first: int = 9 * 10**6) -> float:
    """Print RSS per idle subscriber and how fast a few updates reach all of them; return the bytes each.

    The subscribers are :class:`~bench.lightclient.FrameSubscriber`s: with thousands of them, reading
    through :class:`~bench.lightclient.RawWebSocket` cost the load generator more CPU than the server.
    They read from the start, which answers the server's keepalive pings: connecting thousands on a
    loaded machine can take longer than GARM's pong wait (60 s), after which a silent one is closed.
    """
    updates = 5
    expected = list(range(first, first + updates))
    received: list[list[int]] = []
    closed: list[str] = []
    remaining = count
    all_done = asyncio.Event()

    def finished() -> None:
        nonlocal remaining
        remaining -= 1
        if not remaining:
            all_done.set()

    def subscriber_state() -> tuple[Callable[[bytes], None], Callable[[str], None]]:
        got: list[int] = []
        received.append(got)

        def on_frame(payload: bytes) -> None:
            match = IMAGE_NUMBER.search(payload)
            if match is not None:
                got.append(int(match.group(1)))
                if len(got) == updates:
                    finished()

        def on_close(why: str) -> None:
            closed.append(why)
            if len(got) < updates:
                finished()

        return on_frame, on_close

    before = server.rss_bytes()
    connecting = time.perf_counter()
    subs = []
    for _ in range(count):
        sub = await FrameSubscriber.connect(server.ws_url, EVENTS_PATH, server.token, *subscriber_state())
        sub.send_text(SEND_EVERYTHING)
        subs.append(sub)
    connected_in = time.perf_counter() - connecting
    await asyncio.sleep(SUBSCRIBE_SETTLE_S + 1.0)
    after = server.rss_bytes()
    print(f"\n== idle subscribers: {count} (connected in {connected_in:.1f} s)")
    print(
        f"   server RSS before {before / 2**20:.1f} MiB, after {after / 2**20:.1f} MiB, "
        f"per subscriber {(after - before) / count / 1024:.1f} KiB"
    )
    # Then wake them all: every one of them must get each of a few updates.
    started = time.perf_counter()
    cpu_before, client_cpu_before = server.cpu_seconds(), time.process_time()
    await drive_updates(server, first, updates, 1, {})
    with suppress(TimeoutError):
        await asyncio.wait_for(all_done.wait(), DRAIN_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    server_cpu = server.cpu_seconds() - cpu_before
    client_cpu = time.process_time() - client_cpu_before
    complete = sum(sorted(got) == expected for got in received)
    in_order = sum(got == expected for got in received)
    print(
        f"   then {updates} updates to all of them: {count * updates / elapsed:,.0f} frames/s, "
        f"{complete}/{count} subscribers got every one ({in_order} in order), in {elapsed:.2f} s"
        + (f"; {len(closed)} closed by the server" if closed else "")
    )
    per_frame = server_cpu / (count * updates) * 1e6
    print(
        f"   CPU meanwhile: server {server_cpu:.2f} s ({per_frame:.1f} µs per frame),"
        f" load generator {client_cpu:.2f} s"
    )
    for sub in subs:
        sub.close()
    return (after - before) / count


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--idle", type=int, default=1000)
    args = parser.parse_args()
    per_frame: dict[tuple[str, int], PhaseResult] = {}
    with bench_server(args.backend, args.dsn) as server:
        per_frame["pygarm", 1] = await run_phase(server, "sequential", 1, args.updates, 1, first=1)
        per_frame["pygarm", args.subscribers] = await run_phase(
            server, "sequential, fan-out", args.subscribers, args.updates, 1, first=10**6
        )
        await run_phase(server, "8 in flight, fan-out", args.subscribers, args.updates, 8, first=2 * 10**6)
        await measure_idle_memory(server, args.idle)
    with reference_server() as reference:
        for count in (1, args.subscribers):
            name = f"reference server, sequential, {count} subscriber(s)"
            per_frame["reference", count] = await run_phase(reference, name, count, args.updates, 1, first=1)
    print("\n== server CPU per delivered frame (sequential updates), same run")
    for count in (1, args.subscribers):
        ours = per_frame["pygarm", count].cpu_per_frame_us
        floor = per_frame["reference", count].cpu_per_frame_us
        print(
            f"   {count:>4} subscriber(s): pygarm {ours:7.1f} µs   reference {floor:6.1f} µs"
            f"   ratio {ours / floor if floor else float('nan'):5.1f}x"  # short runs may see 0 CPU ticks
        )
    if args.subscribers > 1:
        # What each subscriber beyond the first adds to an update: the fan-out alone, without the update's
        # own cost (REST, store), which dominates the per-frame figure with few subscribers.
        extra = {
            name: (per_frame[name, args.subscribers].cpu_per_update_ms - per_frame[name, 1].cpu_per_update_ms)
            * 1000
            / (args.subscribers - 1)
            for name in ("pygarm", "reference")
        }
        print(
            f"   each subscriber beyond the first: pygarm {extra['pygarm']:.1f} µs per update,"
            f" reference {extra['reference']:.1f} µs"
        )


if __name__ == "__main__":
    asyncio.run(main())
