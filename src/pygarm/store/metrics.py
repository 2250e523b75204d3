"""``pygarm_changelog_*`` and ``pygarm_writer_*``: the change log and the single writer thread, as
Prometheus families (docs/observability.md#pygarm-families).

The writer counts into :class:`~pygarm.stats.WriterStats` once per transaction; a scrape turns the figures
into families. The log's oldest ``seq`` takes a query, so it is read every ``[metrics] period`` by
:meth:`StoreCollector.refresh`, not at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from pygarm.stats import Timings
from pygarm.store.db import Database


def histogram(name: str, help_text: str, timings: Timings) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, help_text, buckets=list(timings.buckets()), sum_value=timings.sum)


class StoreCollector:
    """``head`` is the newest ``seq`` this process knows of (the hub's position)."""

    def __init__(self, db: Database, head: Callable[[], int]) -> None:
        self._db = db
        self._head = head
        self._oldest = 0
        self._logged_head = 0

    async def refresh(self) -> None:
        self._oldest = await self._db.oldest_seq()
        self._logged_head = await self._db.last_seq()

    def collect(self) -> Iterator[Metric]:
        stats = self._db.stats
        yield GaugeMetricFamily(
            "pygarm_changelog_head_seq",
            "Newest seq in the change log (the hub's position, or the log's at the last collection)",
            value=max(self._head(), self._logged_head),
        )
        yield GaugeMetricFamily(
            "pygarm_changelog_oldest_seq",
            "Oldest seq still in the change log at the last collection (0 when empty)",
            value=self._oldest,
        )
        appended = CounterMetricFamily(
            "pygarm_changelog_appended_total",
            "Changes this process appended to the change log, by entity type and operation",
            labels=["entity_type", "operation"],
        )
        for (entity_type, operation), count in sorted(list(stats.appended.items())):
            appended.add_metric([entity_type, operation], count)
        yield appended
        yield GaugeMetricFamily(
            "pygarm_writer_queue_depth",
            "Write transactions waiting for or running on the single writer thread",
            value=stats.queued,
        )
        yield histogram(
            "pygarm_writer_transaction_duration_seconds",
            "Time a write transaction took on the writer thread, commit included",
            stats.transactions,
        )
