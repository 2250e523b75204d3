"""The lease election core: spread, take-over of expired leases, and the safety rule that a holder
whose renewals stop stops acting before its lease can expire in the database."""

from __future__ import annotations

import pytest

from pygarm.runner.leadership import Elector, Lease, LeaseTimings

KEYS = [f"pool-manager:{i}" for i in range(6)]


def test_fair_share_spreads_keys_over_replicas() -> None:
    a, b, c = Elector("a"), Elector("b"), Elector("c")
    leases: dict[str, Lease] = {}
    for elector in (a, b, c):
        plan = elector.plan(KEYS, leases, live_replicas=3)
        for key in plan.claim:
            leases[key] = Lease(key, elector.me, expired=False)
    held = {me: sorted(k for k, lease in leases.items() if lease.holder == me) for me in "abc"}
    assert {me: len(keys) for me, keys in held.items()} == {"a": 2, "b": 2, "c": 2}
    assert sorted(leases) == KEYS


def test_expired_lease_is_claimed_and_live_one_is_not() -> None:
    leases = {KEYS[0]: Lease(KEYS[0], "dead", expired=True), KEYS[1]: Lease(KEYS[1], "b", expired=False)}
    plan = Elector("a").plan(KEYS[:2], leases, live_replicas=2)
    assert plan.claim == frozenset({KEYS[0]})
    assert plan.release == frozenset()


def test_holder_renews_its_keys_and_releases_vanished_ones() -> None:
    leases = {k: Lease(k, "a", expired=False) for k in KEYS[:3]}
    plan = Elector("a").plan(KEYS[:2], leases, live_replicas=1)
    assert plan.claim == frozenset(KEYS[:2])
    assert plan.release == frozenset({KEYS[2]})


def test_holder_stops_acting_before_the_database_lease_expires() -> None:
    timings = LeaseTimings(ttl=6.0, renew_every=2.0, margin=1.0)
    elector = Elector("a", timings)
    sent_at = 100.0
    elector.granted(KEYS[0], sent_at)
    # The database commits later than sent_at, so its expiry is at least sent_at + ttl.
    earliest_db_expiry = sent_at + timings.ttl
    assert elector.acting(sent_at + 4.9) == frozenset({KEYS[0]})
    # Connection lost: no renewal succeeds any more. The holder stops at sent_at + ttl - margin.
    assert elector.acting(sent_at + 5.0) == frozenset()
    assert sent_at + timings.ttl - timings.margin < earliest_db_expiry


def test_lost_key_stops_at_once() -> None:
    elector = Elector("a")
    elector.granted(KEYS[0], 0.0)
    elector.lost(KEYS[0])
    assert elector.acting(0.1) == frozenset()


@pytest.mark.parametrize(("ttl", "renew", "margin"), [(6.0, 6.0, 0.0), (6.0, 2.0, 4.0), (6.0, 2.0, -1.0)])
def test_timings_refuse_renewals_slower_than_the_safe_window(ttl: float, renew: float, margin: float) -> None:
    with pytest.raises(ValueError):
        LeaseTimings(ttl=ttl, renew_every=renew, margin=margin)
