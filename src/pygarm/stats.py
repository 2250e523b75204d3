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


class StreamStats:
    """The events hub's and its subscribers' figures (``events/hub.py`` owns one per hub).

    The hub adds per *change* (a dispatch sums its deliveries into one addition); the websocket routes
    add per *connection* and per snapshot or replay; nothing is counted per frame on the live path.
    """

    __slots__ = (
        "dispatch",
        "dispatched",
        "frames_delivered",
        "replays",
        "resume_unavailable",
        "resumes",
        "slow_consumer_closes",
        "snapshots",
        "subscribers",
    )

    def __init__(self) -> None:
        self.dispatched = 0
        self.frames_delivered = 0
        self.slow_consumer_closes = 0
        self.resumes = 0
        self.resume_unavailable = 0
        self.dispatch = Timings(LATENCY_BUCKETS)
        self.snapshots = Timings(SLOW_BUCKETS)
        self.replays = Timings(SLOW_BUCKETS)
        self.subscribers: dict[tuple[str, ...], int] = {}
        """Connected stream subscribers by their opt-ins (see :data:`SUBSCRIBER_OPT_INS`)."""

    def subscriber_joined(self, opt_ins: tuple[str, ...]) -> None:
        self.subscribers[opt_ins] = self.subscribers.get(opt_ins, 0) + 1

    def subscriber_left(self, opt_ins: tuple[str, ...]) -> None:
        self.subscribers[opt_ins] = self.subscribers.get(opt_ins, 0) - 1

    def backlog_sent(self, kind: str, seconds: float, *, complete: bool) -> None:
        """A snapshot or a resume's replay was sent (``complete=False``: the log was pruned past it)."""
        (self.snapshots if kind == "snapshot" else self.replays).observe(seconds)
        if not complete:
            self.resume_unavailable += 1


SUBSCRIBER_OPT_INS: tuple[str, ...] = ("seq", "resume", "snapshot", "ack", "bookmark")
"""The label names of ``pygarm_events_subscribers``: which stream extensions a subscriber asked for."""


class WriterStats:
    """The single writer thread's figures (``store/db.py`` owns one per database).

    ``appended`` and ``transactions`` are only touched by the writer thread, ``queued`` only by the
    event loop.
    """

    __slots__ = ("appended", "queued", "transactions")

    def __init__(self) -> None:
        self.queued = 0
        """Writes handed to the writer thread and not finished yet (the one running included)."""
        self.transactions = Timings(LATENCY_BUCKETS)
        self.appended: dict[tuple[str, str], int] = {}
        """Changes appended to the change log by this process, by entity type and operation."""
