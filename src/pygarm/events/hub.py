"""The change hub: delivers every committed change exactly once, in commit order, to each subscriber.

Where GARM fans out with one goroutine per consumer per event and drops what does not fit within a
second (docs/garm-protocol.md#garms-delivery), the hub keeps, per subscriber, a compiled filter and a bounded
:class:`~pygarm.events.mailbox.Mailbox` drained by that subscriber's single writer. Dispatching a change
builds its :class:`Delivery` once and then, per subscriber, either writes it to the socket at once (the
subscriber's writer is parked and left a :attr:`Subscription.direct` write) or does one deque append and
resolves the writer's waiter: no task, timer or encoding per subscriber per event.

Ordering and gaps
-----------------
``seq`` is strictly increasing in commit order but may skip values (a PostgreSQL sequence value taken by
a transaction that rolled back; a change another process committed). The hub remembers the last ``seq``
it dispatched. :meth:`Hub.publish` dispatches a change at once when it is the next number; otherwise it
parks the change and asks the reader task to read the durable log from the last ``seq``. Whatever the log
returns is dispatched in order; a parked change that the log did not return in between was preceded by a
rollback hole, which is proven by a read that *started after the change was published*: commit order
equals ``seq`` order, so every smaller ``seq`` that will ever commit had committed by then. Changes at or
below the last dispatched ``seq`` are skipped, so a change that arrives both by ``publish`` and by a log
read is delivered once.

A slow safety poll reads the log every ``poll_interval`` seconds, for changes committed by another
process; :meth:`Hub.wake` triggers the same read at once (for a PostgreSQL ``LISTEN`` callback).

Subscriptions start at the hub's position when they subscribe: they receive the changes the hub
dispatches after that, never older ones, and nothing until they set a filter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from time import perf_counter

from pygarm.events.change import Change
from pygarm.events.extensions import text_with_seq
from pygarm.events.filters import NOTHING, CompiledFilter
from pygarm.events.index import SubscriberIndex
from pygarm.events.mailbox import CloseCause, Mailbox
from pygarm.stats import StreamStats

log = logging.getLogger(__name__)

ReadChangesAfter = Callable[[int, int], Awaitable[list[Change]]]
"""``read_changes_after(after_seq, limit)``: up to ``limit`` logged changes with ``seq > after_seq``, in
``seq`` order. The store implements it; the hub never imports the store."""

DEFAULT_QUEUE_LIMIT = 1024
"""Changes buffered per subscriber before it is closed as a slow consumer. At GARM's write rates this is
minutes of backlog; at 600 bytes a change it bounds a stalled subscriber to about 600 KB."""
DEFAULT_POLL_INTERVAL = 2.0
"""Seconds between safety reads of the log (changes from other processes, missed wake-ups)."""
READ_BATCH = 500
"""Rows per log read while catching up; larger backlogs are read in several rounds."""
READ_RETRY_DELAY = 1.0
"""Seconds to wait before reading the log again after a failed read."""


class Delivery:
    """One change as handed to every subscriber: the change and its frame decoded to ``str`` once.

    ASGI servers need ``str`` to send a text frame, so the hub decodes each frame once per change rather
    than once per subscriber. The frame with ``"seq"`` (for subscribers that opted in) is likewise built
    at most once per change, by the first subscriber that asks for it.
    """

    __slots__ = ("_seq_text", "change", "text")

    def __init__(self, change: Change, text: str) -> None:
        self.change = change
        self.text = text
        self._seq_text: str | None = None

    @property
    def seq_text(self) -> str:
        if self._seq_text is None:
            self._seq_text = text_with_seq(self.text, self.change.seq)
        return self._seq_text


DirectWrite = Callable[[Delivery], bool]
"""Writes a delivery to the subscriber's socket at once; False when it cannot (nothing was written)."""


class Subscription(Mailbox[Delivery]):
    """One subscriber: its filter, its bounded queue and where in the log it started.

    The owner's writer consumes it like any :class:`Mailbox`; :meth:`set_filter` may be called at any
    time and applies to the next dispatched change. :meth:`close` detaches it from the hub.

    ``direct``: while its writer is parked, the writer may leave a :data:`DirectWrite` here. The hub then
    hands a delivery to it instead of queueing it and waking the writer, as long as the queue is empty
    (so nothing queued is overtaken); when it returns False (the socket is paused or closing) the delivery
    is queued as usual and the writer takes over. The writer clears it when it wakes.
    """

    __slots__ = ("_hub", "direct", "match", "name", "start_seq")

    def __init__(self, hub: Hub, name: str, limit: int, start_seq: int) -> None:
        super().__init__(limit)
        self._hub: Hub | None = hub
        self.name = name
        self.start_seq = start_seq
        self.match: CompiledFilter = NOTHING
        self.direct: DirectWrite | None = None

    def set_filter(self, compiled: CompiledFilter) -> None:
        """Replace (never merge) the filter; an empty one stops deliveries without closing."""
        self.match = compiled
        if self._hub is not None:
            self._hub._index.set(self, compiled)

    def deliver(self, delivery: Delivery) -> bool:
        """:meth:`offer` for the hub's deliveries: written at once through :attr:`direct` when the
        writer is parked with an empty queue and the socket takes it, queued otherwise."""
        if self.cause is None and not self.items:
            direct = self.direct
            if direct is not None and direct(delivery):
                return True
        return self.offer(delivery)

    def close(self, cause: CloseCause = CloseCause.CLOSED) -> bool:
        self.direct = None
        closed_now = super().close(cause)
        self.match = NOTHING  # a dispatch already iterating over this subscription now skips it
        hub, self._hub = self._hub, None
        if hub is not None:
            hub._forget(self)
        return closed_now


class Hub:
    """In-process fan-out of committed changes; see the module docstring for the guarantees.

    The lifespan owner calls :meth:`start` and :meth:`stop`; the store calls :meth:`publish` after each
    commit, on the event loop thread.
    """

    def __init__(
        self,
        read_changes_after: ReadChangesAfter,
        last_seq: int,
        *,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        poll_interval: float | None = DEFAULT_POLL_INTERVAL,
        read_batch: int = READ_BATCH,
    ) -> None:
        if read_batch < 1:
            raise ValueError(f"read_batch must be at least 1, got {read_batch}")
        self._read = read_changes_after
        self._last_seq = last_seq
        self.queue_limit = queue_limit
        self.poll_interval = poll_interval
        self._read_batch = read_batch
        self._subscriptions: dict[Subscription, None] = {}
        self._index: SubscriberIndex[Subscription] = SubscriberIndex()
        # Published changes that did not follow the last dispatched seq, with the read round that
        # started after they were published (a read round that started later proves their gap a hole).
        self._parked: dict[int, tuple[Change, int]] = {}
        self._round = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listeners: tuple[Callable[[Change], None], ...] = ()
        self.stats = StreamStats()
        """Counters for ``/metrics``, added to once per change (``pygarm/stats.py``)."""

    # --- state ----------------------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """The ``seq`` of the last change dispatched to subscribers."""
        return self._last_seq

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    # --- subscribers ----------------------------------------------------------------------------------

    def subscribe(self, name: str = "", *, queue_limit: int | None = None) -> Subscription:
        """A new subscription with no filter, starting after :attr:`last_seq`."""
        subscription = Subscription(self, name, queue_limit or self.queue_limit, self._last_seq)
        self._subscriptions[subscription] = None
        return subscription

    def add_listener(self, listener: Callable[[Change], None]) -> None:
        """Call ``listener(change)`` synchronously for every dispatched change, before any subscriber
        is served: for in-process caches that must never serve state older than a committed change.
        Listeners must be quick and must not raise."""
        self._listeners = (*self._listeners, listener)

    def _forget(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            del self._subscriptions[subscription]
        self._index.remove(subscription)

    def close_all(self, cause: CloseCause = CloseCause.SHUTDOWN) -> None:
        for subscription in list(self._subscriptions):
            subscription.close(cause)

    # --- input ----------------------------------------------------------------------------------------

    def publish(self, changes: Sequence[Change]) -> None:
        """Hand over changes that just committed, in ``seq`` order. Never blocks, never awaits."""
        for change in changes:
            seq = change.seq
            if seq <= self._last_seq:
                continue
            if seq == self._last_seq + 1:
                self._dispatch(change)
                if self._parked:
                    self._dispatch_parked(covered_round=-1)
            else:
                self._parked[seq] = (change, self._round)
                self._wakeup.set()

    def wake(self) -> None:
        """Read the log now (e.g. a PostgreSQL NOTIFY said another process committed)."""
        self._wakeup.set()

    # --- dispatch -------------------------------------------------------------------------------------

    def _dispatch(self, change: Change) -> None:
        started = perf_counter()
        self._last_seq = change.seq
        for listener in self._listeners:
            listener(change)
        key = (change.entity_type, change.operation)
        index = self._index
        subscriptions = index.plain(key)
        fields = index.fields(key)
        if not subscriptions and fields is None:
            self._counted(started, 0)
            return
        delivery = Delivery(change, change.frame.decode())
        delivered = len(subscriptions)  # counted down on the rare skips: no addition per subscriber
        for subscription in subscriptions:
            if subscription.cause is not None:  # closed during this dispatch
                delivered -= 1
                continue
            # Subscription.deliver, inlined: this loop is the per-subscriber cost of every change.
            items = subscription.items
            if items:
                if len(items) >= subscription.limit:
                    self._close_slow(subscription, len(items), change.seq)
                    delivered -= 1
                    continue
            else:
                direct = subscription.direct
                if direct is not None and direct(delivery):
                    continue
            items.append(delivery)
            waiter = subscription.waiter
            if waiter is not None:
                subscription.waiter = None
                if not waiter.done():
                    waiter.set_result(None)
        if fields is not None:
            for subscription in index.matching(fields, change):
                if subscription.cause is not None:
                    continue
                if len(subscription.items) >= subscription.limit:
                    self._close_slow(subscription, len(subscription.items), change.seq)
                    continue
                if subscription.deliver(delivery):
                    delivered += 1
        self._counted(started, delivered)

    def _counted(self, started: float, delivered: int) -> None:
        """One change dispatched: the figures of ``/metrics`` (``pygarm/stats.py``), once per change."""
        stats = self.stats
        stats.dispatched += 1
        stats.frames_delivered += delivered
        stats.dispatch.observe(perf_counter() - started)

    def _close_slow(self, subscription: Subscription, queued: int, seq: int) -> None:
        if subscription.cause is None:
            self.stats.slow_consumer_closes += 1
            log.warning(
                "closing slow events subscriber %r: %d changes queued at seq %d",
                subscription.name,
                queued,
                seq,
            )
        subscription.close(CloseCause.SLOW_CONSUMER)

    def _dispatch_parked(self, *, covered_round: int) -> None:
        """Dispatch parked changes that are next in line, or whose gap a read round has proven a hole.

        A parked change is proven when a read round that started after it was parked (its round number
        is at most ``covered_round``) has finished without returning anything before it.
        """
        parked = self._parked
        for seq in sorted(parked):
            change, parked_round = parked[seq]
            if seq <= self._last_seq:
                del parked[seq]
            elif seq == self._last_seq + 1 or parked_round <= covered_round:
                del parked[seq]
                self._dispatch(change)
            else:
                break

    # --- the reader task ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the log reader (gap filling and the safety poll); catches up with the log first."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pygarm-events-hub")
            self._wakeup.set()

    async def stop(self) -> None:
        """Stop reading and close every subscription with :attr:`CloseCause.SHUTDOWN`."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])  # unlike `await task`, does not re-raise the task's cancellation
        self.close_all(CloseCause.SHUTDOWN)

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.poll_interval):
                    await self._wakeup.wait()
            except TimeoutError:
                pass
            self._wakeup.clear()
            try:
                await self.catch_up()
            except Exception:
                log.exception("reading the change log failed; retrying in %.1f s", READ_RETRY_DELAY)
                await asyncio.sleep(READ_RETRY_DELAY)
                self._wakeup.set()

    async def catch_up(self) -> None:
        """Read the log until it is exhausted and every parked change is dispatched.

        The reader task calls this; tests may call it directly instead of starting the task.
        """
        while True:
            round_number = self._round
            self._round += 1
            rows = await self._read(self._last_seq, self._read_batch)
            for change in rows:
                if change.seq > self._last_seq:
                    self._dispatch(change)
            if len(rows) >= self._read_batch:
                continue  # the log has more
            self._dispatch_parked(covered_round=round_number)
            if not self._parked:
                return
