"""``pygarm_events_*``: the events hub and its stream subscribers as Prometheus families
(docs/observability.md#pygarm-families).

The hub adds to :class:`~pygarm.stats.StreamStats` once per change (a dispatch sums its deliveries), the
websocket routes once per connection, snapshot or replay; this collector only reads the figures, at
scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from pygarm.events.extensions import StreamOptions
from pygarm.events.hub import Hub
from pygarm.stats import SUBSCRIBER_OPT_INS, Timings


def opt_ins(options: StreamOptions) -> tuple[str, ...]:
    """The ``pygarm_events_subscribers`` label values of a subscriber (see ``SUBSCRIBER_OPT_INS``)."""
    flags = (
        options.with_seq,
        options.since is not None,
        options.snapshot,
        options.ack,
        options.bookmark is not None,
    )
    return tuple("true" if flag else "false" for flag in flags)


def _histogram(name: str, help_text: str, timings: Timings) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, help_text, buckets=list(timings.buckets()), sum_value=timings.sum)


class StreamCollector:
    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def collect(self) -> Iterator[Metric]:
        hub = self._hub
        stats = hub.stats
        subscribers = GaugeMetricFamily(
            "pygarm_events_subscribers",
            "Events stream subscribers connected, by the extensions they asked for",
            labels=list(SUBSCRIBER_OPT_INS),
        )
        for labels, count in sorted(list(stats.subscribers.items())):
            if count:
                subscribers.add_metric(list(labels), count)
        yield subscribers
        yield GaugeMetricFamily(
            "pygarm_events_hub_subscriptions",
            "Hub subscriptions, stream subscribers and in-process ones (pool managers, access guard)",
            value=hub.subscriber_count,
        )
        counters = (
            ("pygarm_events_dispatched", "Changes the hub dispatched", stats.dispatched),
            (
                "pygarm_events_frames_delivered",
                "Live event frames handed to subscribers' queues (summed per change)",
                stats.frames_delivered,
            ),
            (
                "pygarm_events_slow_consumer_closes",
                "Subscribers closed because their queue was full (close 4000)",
                stats.slow_consumer_closes,
            ),
            ("pygarm_events_resumes", "Stream connections that resumed with since=", stats.resumes),
            (
                "pygarm_events_resume_unavailable",
                "Resumes refused because the log was pruned past their since (close 4001)",
                stats.resume_unavailable,
            ),
        )
        for name, help_text, value in counters:
            yield CounterMetricFamily(name, help_text, value=value)
        yield _histogram(
            "pygarm_events_dispatch_duration_seconds",
            "Time the hub took to dispatch one change to every matching subscriber",
            stats.dispatch,
        )
        yield _histogram(
            "pygarm_events_snapshot_duration_seconds",
            "Time to read and send one subscriber's snapshot (its count is the number of snapshots)",
            stats.snapshots,
        )
        yield _histogram(
            "pygarm_events_replay_duration_seconds",
            "Time to read and send one resume's replay (its count is the number of replays)",
            stats.replays,
        )
