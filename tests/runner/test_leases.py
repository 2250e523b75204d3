"""The lease driver against an in-memory lease table whose clock is the test's: spread over replicas,
take-over of a dead replica's jobs within 10 s, hand-over on shutdown, and the safety rule that a replica
which lost its database stops its jobs before any other replica can claim them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pygarm.runner.leadership import LeaseTimings
from pygarm.runner.leases import LeaderDriver
from pygarm.store.leases import LeaseRow, LeaseSnapshot, Replica

TIMINGS = LeaseTimings()  # the production timings: ttl 6 s, renew every 2 s, margin 1 s
KEYS = [f"pool-manager:{i}" for i in range(6)]


class Clock:
    """One clock for the database and every replica (monotonic and database time advance together)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeDatabase:
    """``leader_leases`` and ``replicas`` with the semantics of ``store/leases.py``'s statements."""

    clock: Clock
    leases: dict[str, tuple[str, float, str | None]] = field(default_factory=dict)
    replicas: dict[str, float] = field(default_factory=dict)
    claims: list[tuple[float, str, str]] = field(default_factory=list)
    """(time, holder, key) of every claim that changed the holder of a row."""


class DatabaseDown(ConnectionError):
    pass


class FakeGateway:
    def __init__(self, db: FakeDatabase, me: str) -> None:
        self.db = db
        self.me = me
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise DatabaseDown("connection lost")

    async def heartbeat_and_read(self, ttl: float) -> LeaseSnapshot:
        self._check()
        now = self.db.clock()
        self.db.replicas[self.me] = now + ttl
        leases = {
            key: LeaseRow(key, holder, expires <= now, status)
            for key, (holder, expires, status) in self.db.leases.items()
        }
        replicas = [Replica(r, r, expires > now, expires - now) for r, expires in self.db.replicas.items()]
        return LeaseSnapshot(leases, replicas)

    async def claim(self, ttl: float, items: Sequence[tuple[str, str | None]]) -> set[str]:
        self._check()
        now = self.db.clock()
        granted = set()
        for key, status in items:
            row = self.db.leases.get(key)
            if row is None or row[1] <= now or row[0] == self.me:
                if row is None or row[0] != self.me:
                    self.db.claims.append((now, self.me, key))
                self.db.leases[key] = (self.me, now + ttl, status)
                granted.add(key)
        return granted

    async def release(self, keys: Sequence[str]) -> None:
        self._check()
        for key in keys:
            if self.db.leases.get(key, ("",))[0] == self.me:
                del self.db.leases[key]

    async def leave(self) -> None:
        self._check()
        for key in [k for k, row in self.db.leases.items() if row[0] == self.me]:
            del self.db.leases[key]
        self.db.replicas.pop(self.me, None)

    async def close(self) -> None:
        pass


class Jobs:
    """A group of jobs recording when each started and stopped here."""

    def __init__(self, clock: Clock, keys: Iterable[str]) -> None:
        self.clock = clock
        self.keys = list(keys)
        self.running: set[str] = set()
        self.stopped_at: dict[str, float] = {}

    def lease_keys(self) -> Iterable[str]:
        return self.keys

    def lease_status(self, key: str) -> str | None:
        return '{"running":true}' if key in self.running else None

    async def apply_leases(self, acting: frozenset[str]) -> None:
        for key in self.running - acting:
            self.stopped_at[key] = self.clock()
        self.running = {key for key in self.keys if key in acting}


@dataclass
class Replicas:
    clock: Clock
    db: FakeDatabase
    drivers: dict[str, LeaderDriver] = field(default_factory=dict)
    gateways: dict[str, FakeGateway] = field(default_factory=dict)
    jobs: dict[str, Jobs] = field(default_factory=dict)

    def add(self, name: str) -> None:
        self.gateways[name] = FakeGateway(self.db, name)
        self.jobs[name] = Jobs(self.clock, KEYS)
        self.drivers[name] = LeaderDriver(
            self.gateways[name], [self.jobs[name]], timings=TIMINGS, clock=self.clock
        )

    async def tick(self, *names: str) -> None:
        """One tick of each named replica (their period is ``renew_every``); a failing tick is what
        the driver's ticker logs and survives."""
        for name in names or tuple(self.drivers):
            try:
                await self.drivers[name].tick()
            except DatabaseDown:
                await self.drivers[name].enforce()

    def holders(self) -> dict[str, list[str]]:
        return {name: sorted(jobs.running) for name, jobs in self.jobs.items()}


def fleet(*names: str) -> Replicas:
    clock = Clock()
    replicas = Replicas(clock, FakeDatabase(clock))
    for name in names:
        replicas.add(name)
    return replicas


async def settle(replicas: Replicas, rounds: int = 8) -> None:
    for _ in range(rounds):
        await replicas.tick()
        replicas.clock.now += TIMINGS.renew_every


async def test_jobs_spread_evenly_and_each_runs_on_exactly_one_replica() -> None:
    replicas = fleet("a", "b", "c")
    await settle(replicas)
    holders = replicas.holders()
    assert {name: len(keys) for name, keys in holders.items()} == {"a": 2, "b": 2, "c": 2}
    assert sorted(key for keys in holders.values() for key in keys) == KEYS


async def test_a_replica_joining_later_gets_its_share_through_hand_over() -> None:
    replicas = fleet("a")
    await settle(replicas, rounds=2)
    assert replicas.holders() == {"a": KEYS}
    replicas.add("b")
    await settle(replicas)
    holders = replicas.holders()
    assert {name: len(keys) for name, keys in holders.items()} == {"a": 3, "b": 3}
    # A hand-over never overlaps: a key changes holder only after the previous holder stopped it.
    for at, holder, key in replicas.db.claims:
        if holder == "b":
            assert replicas.jobs["a"].stopped_at[key] <= at


async def test_replica_that_loses_its_database_stops_before_another_can_claim() -> None:
    replicas = fleet("a", "b")
    await settle(replicas)
    a_keys = replicas.holders()["a"]
    assert a_keys
    replicas.gateways["a"].down = True  # a's connection is cut; b keeps ticking every renew_every
    cut_at = replicas.clock.now
    while replicas.clock.now < cut_at + 20:
        replicas.clock.now += 0.25
        await replicas.drivers["a"].enforce()  # the watchdog's check at a's own deadlines
        if replicas.clock.now % TIMINGS.renew_every == 0:
            await replicas.tick()
    taken = {key: at for at, holder, key in replicas.db.claims if holder == "b" and key in a_keys}
    assert sorted(taken) == a_keys
    for key in a_keys:
        stopped = replicas.jobs["a"].stopped_at[key]
        assert stopped < taken[key]  # no moment with the job running on both replicas
        assert stopped - cut_at <= TIMINGS.ttl - TIMINGS.margin
    assert replicas.holders() == {"a": [], "b": KEYS}


async def test_dead_replica_jobs_are_taken_over_within_ten_seconds() -> None:
    replicas = fleet("a", "b", "c")
    await settle(replicas)
    dead = replicas.holders()["b"]
    del replicas.drivers["b"]  # SIGKILL: no more ticks, no release
    killed_at = replicas.clock.now
    for _ in range(6):
        await replicas.tick()
        replicas.clock.now += TIMINGS.renew_every
    taken = [at for at, holder, key in replicas.db.claims if key in dead and at >= killed_at]
    assert len(taken) == len(dead)
    assert max(taken) - killed_at <= 10.0
    survivors = replicas.holders()
    assert sorted(survivors["a"] + survivors["c"]) == KEYS


async def test_shutdown_releases_at_once_and_a_survivor_claims_on_its_next_tick() -> None:
    replicas = fleet("a", "b")
    await settle(replicas)
    leaving = replicas.holders()["a"]
    await replicas.drivers["a"].stop()
    assert replicas.jobs["a"].running == set()
    assert not any(row[0] == "a" for row in replicas.db.leases.values())
    await replicas.tick("b")
    assert replicas.holders()["b"] == KEYS
    assert set(leaving) <= set(replicas.holders()["b"])


async def test_holder_publishes_status_and_others_read_it() -> None:
    replicas = fleet("a", "b")
    await settle(replicas)
    key = replicas.holders()["a"][0]
    await replicas.tick("b")
    assert replicas.drivers["b"].holder(key) == "a"
    assert replicas.drivers["b"].published_status(key) == '{"running":true}'
