"""What observability costs on the hot paths, in process, interleaved in one run (issue 10 #2).

* **Hub dispatch**: one change to N subscribers through the real :class:`~pygarm.events.hub.Hub`, with its
  ``/metrics`` figures (two clock reads, three additions and a histogram bucket per change) and with the
  figures switched off (``_counted`` replaced by a no-op), alternately, best of several rounds.
* **Access log**: one HTTP request through :class:`~pygarm.api.accesslog.AccessLog` (request id, clock,
  counts; the INFO line itself is off, as at ``log_level = "warn"``) and through the bare ASGI app.

    .venv/bin/python -m bench.metrics_overhead
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.types import Message, Receive, Scope, Send

from pygarm.api.accesslog import AccessLog, HTTPStats
from pygarm.events.change import Change, EntityType, Operation
from pygarm.events.hub import Hub

PAYLOAD = b'{"id":"6f1c2a7e-1111-4b2c-9d3e-000000000001","image":"img-1","max_runners":5}'
POOL_UPDATE = frozenset({(EntityType.POOL, Operation.UPDATE)})


class QuietHub(Hub):
    """The same hub with its ``/metrics`` figures switched off."""

    def _counted(self, started: float, delivered: int) -> None:
        return None


async def _no_read(_after: int, _limit: int) -> list[Change]:
    return []


def dispatch_cost(hub_type: type[Hub], subscribers: int, changes: int) -> float:
    """CPU seconds per dispatched change."""
    hub = hub_type(_no_read, 0, queue_limit=changes + 1, poll_interval=None)
    subs = [hub.subscribe(f"s{i}") for i in range(subscribers)]
    for sub in subs:
        sub.set_filter(POOL_UPDATE)
    now = datetime.now(UTC)
    batch = [Change(seq, EntityType.POOL, Operation.UPDATE, PAYLOAD, now) for seq in range(1, changes + 1)]
    started = time.process_time()
    hub.publish(batch)
    elapsed = time.process_time() - started
    assert all(len(sub.items) == changes for sub in subs)
    return elapsed / changes


async def _endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def request_cost(app: Callable[[Scope, Receive, Send], object], requests: int) -> float:
    scope: Scope = {"type": "http", "method": "GET", "path": "/api/v1/pools", "headers": [], "client": None}

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(_message: Message) -> None:
        return None

    started = time.process_time()
    for _ in range(requests):
        await app(dict(scope), receive, send)  # type: ignore[misc]
    return (time.process_time() - started) / requests


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--changes", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    logging.getLogger("pygarm.access").setLevel(logging.WARNING)
    print("== hub dispatch, CPU µs per change (best of rounds, interleaved)")
    for subscribers in (1, 50, 1000):
        with_stats: list[float] = []
        without: list[float] = []
        for round_number in range(args.rounds):  # alternate which goes first
            for hub_type in (Hub, QuietHub) if round_number % 2 else (QuietHub, Hub):
                cost = dispatch_cost(hub_type, subscribers, args.changes)
                (with_stats if hub_type is Hub else without).append(cost)
        on, off = min(with_stats) * 1e6, min(without) * 1e6
        change = on / off - 1
        print(
            f"   {subscribers:>5} subscribers: with figures {on:8.2f}   without {off:8.2f}   {change:+6.1%}"
        )
    print("== one HTTP request through the ASGI stack, CPU µs (best of rounds, interleaved)")
    logged = AccessLog(_endpoint, HTTPStats())
    bare: list[float] = []
    wrapped: list[float] = []
    for round_number in range(args.rounds):
        for app in (logged, _endpoint) if round_number % 2 else (_endpoint, logged):
            cost = await request_cost(app, args.requests)
            (wrapped if app is logged else bare).append(cost)
    on, off = min(wrapped) * 1e6, min(bare) * 1e6
    print(f"   access log + request id + counts: {on:6.2f}   bare endpoint {off:6.2f}   +{on - off:5.2f} µs")


if __name__ == "__main__":
    asyncio.run(main())
