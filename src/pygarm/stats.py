"""Plain in-process counters and latency buckets that the hot paths update and ``/metrics`` reads.

The layers that do the work (``events/``, ``store/``, ``runner/``, ``api/``) own one of these objects each
and update it with integer additions: no lock, no label lookup, no library call on the hot path. Only a
scrape turns them into Prometheus families (``api/metrics.py`` and the collectors next to each layer's
data), so the cost of observability is paid per scrape, not per event. Every update happens on one
thread (the event loop, or the single writer thread for the writer's figures); a scrape may read a
figure one update old, never a torn one.

This module imports nothing from pygarm, so every layer may use it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
"""Upper bounds in seconds for in-process work (a dispatch, a transaction): 100 µs to 5 s."""

SLOW_BUCKETS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds in seconds for work that reads the database in bulk (a snapshot, a replay)."""


class Timings:
    """A latency histogram: a count per bucket, plus the total count and sum (Prometheus' shape).

    ``observe`` is a bisect and three additions; the cumulative counts are built only by :meth:`buckets`.
    """

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        if list(bounds) != sorted(bounds) or not bounds:
            raise ValueError("bucket bounds must be a non-empty ascending sequence")
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.count += 1
        self.sum += seconds

    def buckets(self) -> Iterator[tuple[str, int]]:
        """``(le, cumulative count)`` pairs, ``+Inf`` last, as a histogram family wants them."""
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            yield ("+Inf" if bound == float("inf") else repr(bound)), total
