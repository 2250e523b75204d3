"""Sans-I/O core of leadership between pygarm replicas sharing one PostgreSQL (issue 11, part 1).

It fixes the decisions a lease driver must make so that the driver (``runner/leases.py``, a thin loop
issuing a few SQL statements per tick, ``store/leases.py``) stays simple.

Model: lease rows with heartbeats. Each background job (one pool manager per entity, each fleet-wide
loop) has a key. A row ``(key, holder, expires_at)`` is claimed with one conditional statement that
succeeds only when the row is free, expired (by the database clock) or already ours, and sets
``expires_at = now() + ttl``.

Why leases and not session advisory locks: an advisory lock is released by the server only when it
notices the dead session (TCP keepalive, minutes by default), and the holder cannot tell from its own
side for how long it is still safe to act. A lease has an explicit deadline both sides can reason about:

* The holder records ``sent_at`` on its monotonic clock *before* sending the claim or renewal. The
  database sets ``expires_at`` at commit, which is no earlier than ``sent_at`` in real time, so
  ``sent_at + ttl`` is never later than the lease's real expiry. The holder acts only until
  ``sent_at + ttl - margin`` (``margin`` absorbs clock-rate drift). When the database connection is
  lost, renewals stop succeeding, and the holder stops acting before any other replica can claim
  the expired row: no double action.
* Shutdown releases the rows at once, so a successor claims them on its next tick.

Spreading: a replica claims a free key only while it holds fewer than its fair share
(``ceil(keys / live replicas)``), so keys end up spread instead of all on the first replica. A replica
holding more than its share (it started first, or another replica joined) hands one key back per tick:
the driver stops the key's job first and then deletes the row, so a hand-over never overlaps either.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LeaseTimings:
    """``ttl`` is the lease length, ``renew_every`` the heartbeat period, ``margin`` the part of the
    lease the holder gives up to tolerate clock-rate drift. Take-over after a crash takes at most
    ``ttl + renew_every`` (the survivor's next tick after expiry), 8 s with the defaults."""

    ttl: float = 6.0
    renew_every: float = 2.0
    margin: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.renew_every < self.ttl - self.margin or self.margin < 0:
            raise ValueError("need 0 < renew_every < ttl - margin and margin >= 0")


@dataclass(frozen=True, slots=True)
class Lease:
    """One row as read from the database: who holds ``key`` and whether it is expired (by the
    database clock, so replicas never compare their own clocks)."""

    key: str
    holder: str
    expired: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """What the driver must do on this tick: claim (or renew) ``claim`` and release ``release``."""

    claim: frozenset[str]
    release: frozenset[str]


@dataclass(slots=True)
class Elector:
    """Decisions of one replica. The driver calls :meth:`plan`, runs the statements, reports each
    success with :meth:`granted` (passing the monotonic time taken *before* sending), and starts or
    stops jobs so that exactly :meth:`acting` run."""

    me: str
    timings: LeaseTimings = field(default_factory=LeaseTimings)
    _until: dict[str, float] = field(default_factory=dict)

    def plan(self, keys: Iterable[str], leases: Mapping[str, Lease], live_replicas: int) -> Plan:
        """Renew what we hold, release keys that no longer exist and one key beyond our fair share,
        claim free or expired keys up to that share. ``live_replicas`` counts the live replicas,
        ourselves included."""
        wanted_set = set(keys)
        wanted = sorted(wanted_set)
        share = math.ceil(len(wanted) / max(live_replicas, 1)) if wanted else 0
        mine = [k for k in wanted if (lease := leases.get(k)) is not None and lease.holder == self.me]
        release = {k for k, lease in leases.items() if lease.holder == self.me and k not in wanted_set}
        if len(mine) > share:  # hand back one key per tick, the last in order, so others can claim it
            release.add(mine.pop())
        claim = set(mine)
        for key in wanted:
            if len(claim) >= share:
                break
            lease = leases.get(key)
            if lease is None or lease.expired:
                claim.add(key)
        return Plan(claim=frozenset(claim), release=frozenset(release))

    def granted(self, key: str, sent_at: float) -> None:
        """The claim or renewal of ``key`` sent at monotonic ``sent_at`` succeeded."""
        self._until[key] = sent_at + self.timings.ttl - self.timings.margin

    def lost(self, key: str) -> None:
        """The statement for ``key`` affected no row (another replica holds it) or it was released."""
        self._until.pop(key, None)

    def acting(self, now: float) -> frozenset[str]:
        """Keys whose jobs may run at monotonic ``now``. A key whose renewals stopped succeeding
        (lost connection) drops out here before its row can expire in the database."""
        return frozenset(k for k, until in self._until.items() if now < until)

    def held(self) -> frozenset[str]:
        """Keys granted and not lost since (acting or past their deadline)."""
        return frozenset(self._until)

    def next_deadline(self, now: float) -> float | None:
        """The earliest monotonic time after ``now`` at which a key stops :meth:`acting` unless it is
        renewed first; ``None`` when no key is acting."""
        return min((until for until in self._until.values() if until > now), default=None)
