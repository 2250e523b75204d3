"""The pool manager's pure rules (docs/garm-protocol.md#pool-managers, docs/garm-protocol.md#job-queue), with
GARM's numbers pinned and the invariants property-tested."""

from __future__ import annotations

import logging
import math
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pygarm.params.gojson import ZERO_UUID
from pygarm.params.models import Instance
from pygarm.runner.naming import new_runner_name
from pygarm.runner.pool.scaling import (
    MAX_CREATE_ATTEMPTS,
    SKIP_JOB,
    JobDecision,
    OrphanAction,
    PoolBalancer,
    add_runner_refusal,
    balancer_key,
    bootstrap_timeout,
    counts_as_idle_or_pending,
    is_managed_runner,
    is_orphaned_instance,
    is_reapable_idle,
    is_stale_queued_job,
    job_id_from_labels,
    job_label,
    labels_match,
    min_idle_shortfall,
    offline_runner_action,
    queued_job_decision,
    retry_eligible,
    runner_labels,
    scale_down_count,
    should_reap_timed_out,
)
from pygarm.runner.pool.stored import STORED_INT_MAX

NOW = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
ENTITY = "6e1b4a52-8d0c-4b8e-9a53-1f2e3d4c5b6a"
OTHER = "0c2d6f1e-3b4a-4c5d-8e9f-a0b1c2d3e4f5"
MINUTE = timedelta(minutes=1)


def test_runner_name_is_prefix_and_twelve_base62_characters() -> None:
    names = {new_runner_name("garm") for _ in range(200)}
    assert len(names) == 200
    assert all(re.fullmatch(r"garm-[0-9A-Za-z]{12}", name) for name in names)
    assert re.fullmatch(r"garm-[0-9A-Za-z]{12}", new_runner_name(""))  # empty prefix → GARM's default


def test_labels_order_and_job_label_round_trip() -> None:
    assert runner_labels(["self-hosted", "linux"], "ctrl", "pool") == [
        "self-hosted",
        "linux",
        "runner-controller-id:ctrl",
        "runner-pool-id:pool",
    ]
    assert job_id_from_labels(["x", job_label(1001)]) == 1001
    assert job_id_from_labels(["in_response_to_job:abc"]) == 0
    assert job_id_from_labels([]) == 0
    assert is_managed_runner(["linux", "runner-controller-id:ctrl"], "ctrl")
    assert not is_managed_runner(["runner-controller-id:other"], "ctrl")
    assert not is_managed_runner(["linux"], "ctrl")


@given(
    existing=st.integers(0, 50),
    idle_or_pending=st.integers(0, 50),
    min_idle=st.integers(0, 50),
    max_runners=st.integers(1, 50),
)
def test_min_idle_shortfall_never_exceeds_max_runners(
    existing: int, idle_or_pending: int, min_idle: int, max_runners: int
) -> None:
    required = min_idle_shortfall(
        existing=existing, idle_or_pending=idle_or_pending, min_idle=min_idle, max_runners=max_runners
    )
    assert required >= 0
    assert required == 0 or existing + required <= max_runners
    assert required <= max(0, min_idle - idle_or_pending)
    if existing < max_runners and idle_or_pending < min_idle:
        assert required == min(min_idle - idle_or_pending, max_runners - existing)


def test_min_idle_counts_every_runner_that_is_not_busy() -> None:
    assert [counts_as_idle_or_pending(s) for s in ("pending", "installing", "idle", "failed", "")] == [
        True
    ] * 5
    assert not counts_as_idle_or_pending("active")
    assert not counts_as_idle_or_pending("terminated")


def test_add_runner_refusals_use_garms_words() -> None:
    assert add_runner_refusal(pool_id="p", enabled=False, existing=0, max_runners=2) == "pool p is disabled"
    assert add_runner_refusal(pool_id="p", enabled=True, existing=2, max_runners=2) == (
        "max workers (2) reached for pool p"
    )
    assert add_runner_refusal(pool_id="p", enabled=True, existing=1, max_runners=2) is None


def test_retries_allow_six_creates() -> None:
    attempts = [a for a in range(10) if retry_eligible("error", a)]
    assert attempts == list(range(MAX_CREATE_ATTEMPTS))  # 0..4 retried → creates with attempts 0..5
    assert not retry_eligible("running", 0)


@given(idle=st.integers(0, 100), min_idle=st.integers(0, 100))
def test_scale_down_removes_half_the_surplus_rounded_up(idle: int, min_idle: int) -> None:
    count = scale_down_count(idle, min_idle)
    surplus = idle - min_idle
    assert count == (math.ceil(surplus / 2) if surplus > 0 else 0)
    assert idle - count >= min(idle, min_idle)  # never below min_idle


def _instance(**fields: object) -> Instance:
    defaults: dict[str, object] = {"name": "garm-x", "status": "running", "runner_status": "idle"}
    return Instance(**{**defaults, "updated_at": NOW - 3 * MINUTE, **fields})


def test_reapable_idle_needs_idle_running_and_age() -> None:
    age = 2 * MINUTE
    assert is_reapable_idle(_instance(), NOW, age)
    assert not is_reapable_idle(_instance(updated_at=NOW - age), NOW, age)  # GARM: strictly older
    assert not is_reapable_idle(_instance(status="error"), NOW, age)
    assert not is_reapable_idle(_instance(runner_status="active"), NOW, age)


def _stale(status: str, age: timedelta, labels: list[str]) -> bool:
    return is_stale_queued_job(
        status=status,
        created_at=NOW - age,
        labels=labels,
        tag_names=["self-hosted", "Linux"],
        now=NOW,
        stale_age=10 * MINUTE,
    )


def test_stale_queued_job_needs_age_status_and_matching_labels() -> None:
    assert _stale("queued", 11 * MINUTE, ["linux"])
    assert not _stale("queued", 11 * MINUTE, ["gpu"])
    assert not _stale("in_progress", 11 * MINUTE, ["linux"])
    assert not _stale("queued", 9 * MINUTE, ["linux"])


def test_label_matching_is_a_case_insensitive_subset() -> None:
    assert labels_match(["Self-Hosted"], ["self-hosted", "linux"])
    assert labels_match([], ["x"])
    assert not labels_match(["linux", "gpu"], ["linux"])


def _decide(locked_by: str, age: timedelta, backoff: timedelta = timedelta(0)) -> JobDecision:
    return queued_job_decision(
        locked_by=locked_by,
        entity_id=ENTITY,
        updated_at=NOW - age,
        now=NOW,
        backoff=backoff,
        lock_timeout=10 * MINUTE,
    )


def test_job_decisions_follow_garms_order() -> None:
    assert _decide(OTHER, 20 * MINUTE) == SKIP_JOB  # another entity's job
    assert _decide(ZERO_UUID, timedelta(seconds=10), backoff=timedelta(seconds=30)) == SKIP_JOB  # backoff
    assert _decide(ZERO_UUID, timedelta(seconds=30), backoff=timedelta(seconds=30)) == JobDecision(
        False, True
    )
    assert _decide(ENTITY, MINUTE) == SKIP_JOB  # we already asked for a runner
    assert _decide(ENTITY, 10 * MINUTE) == JobDecision(unlock=True, schedule=False)  # stale lock
    assert _decide(ZERO_UUID, 30 * MINUTE) == JobDecision(unlock=False, schedule=True)


@given(
    locked_by=st.sampled_from([ZERO_UUID, ENTITY, OTHER]),
    age=st.integers(0, 3600),
    backoff=st.integers(0, 120),
)
def test_job_decision_invariants(locked_by: str, age: int, backoff: int) -> None:
    decision = _decide(locked_by, timedelta(seconds=age), timedelta(seconds=backoff))
    assert not (decision.unlock and decision.schedule)
    if locked_by == OTHER or age < backoff:
        assert decision == SKIP_JOB
    if decision.schedule:
        assert locked_by == ZERO_UUID
    if decision.unlock:
        assert locked_by == ENTITY


def test_round_robin_shares_the_cursor_and_pack_restarts() -> None:
    pools = ["high", "mid", "low"]
    rr = PoolBalancer(pools, "roundrobin")
    firsts = []
    for _ in range(4):
        rr.begin_job()
        firsts.append(rr.next())
    assert firsts == ["high", "mid", "low", "high"]
    pack = PoolBalancer(pools, "pack")
    for _ in range(3):
        pack.begin_job()
        assert [pack.next(), pack.next()] == ["high", "mid"]  # spill over only after a refusal


@given(
    pools=st.lists(st.integers(), min_size=1, max_size=6),
    jobs=st.integers(1, 20),
    kind=st.sampled_from(["roundrobin", "pack", ""]),
)
def test_every_job_can_try_every_pool_once(pools: list[int], jobs: int, kind: str) -> None:
    balancer = PoolBalancer(pools, kind)
    for _ in range(jobs):
        balancer.begin_job()
        tried = [balancer.next() for _ in range(len(balancer))]
        assert sorted(tried) == sorted(pools)


def test_balancer_key_ignores_label_order() -> None:
    assert balancer_key(["linux", "self-hosted"]) == balancer_key(["self-hosted", "linux"])


def _orphaned(status: str, runner_status: str, age: timedelta) -> bool:
    return is_orphaned_instance(
        status=status,
        runner_status=runner_status,
        updated_at=NOW - age,
        now=NOW,
        timeout=20 * MINUTE,
        orphan_age=5 * MINUTE,
        on_github=False,
    )


def test_reaper_rules() -> None:
    timeout = 20 * MINUTE
    old = NOW - 25 * MINUTE
    assert should_reap_timed_out(updated_at=old, now=NOW, timeout=timeout, github_status=None)
    assert should_reap_timed_out(updated_at=old, now=NOW, timeout=timeout, github_status="offline")
    assert not should_reap_timed_out(updated_at=old, now=NOW, timeout=timeout, github_status="online")
    assert not should_reap_timed_out(updated_at=NOW - MINUTE, now=NOW, timeout=timeout, github_status=None)
    assert _orphaned("running", "idle", 6 * MINUTE)
    assert not _orphaned("pending_create", "pending", 25 * MINUTE)
    assert not _orphaned("running", "installing", 6 * MINUTE)  # still within its bootstrap timeout
    assert not _orphaned("running", "idle", MINUTE)  # updated recently
    grace = 5 * MINUTE
    action = offline_runner_action
    assert action(None, updated_at=None, now=NOW, orphan_age=grace) is OrphanAction.REMOVE_FROM_GITHUB
    assert action("deleting", updated_at=old, now=NOW, orphan_age=grace) is OrphanAction.SKIP
    assert action("running", updated_at=NOW - MINUTE, now=NOW, orphan_age=grace) is OrphanAction.SKIP
    assert action("running", updated_at=old, now=NOW, orphan_age=grace) is OrphanAction.ASK_PROVIDER
    assert action("error", updated_at=NOW, now=NOW, orphan_age=grace) is OrphanAction.ASK_PROVIDER


def test_reaper_boundaries_are_garms_strict_less_than() -> None:
    """GARM skips an instance while ``time.Since(updated_at) < limit``: at exactly the limit it acts
    (garm@v0.1.5 runner/pool/pool.go:419, :428, :486, :566)."""
    timeout, orphan_age = 20 * MINUTE, 5 * MINUTE
    at_timeout, at_orphan_age = NOW - timeout, NOW - orphan_age
    assert should_reap_timed_out(updated_at=at_timeout, now=NOW, timeout=timeout, github_status=None)
    assert not should_reap_timed_out(
        updated_at=at_timeout + timedelta(microseconds=1), now=NOW, timeout=timeout, github_status=None
    )
    orphan = {"status": "running", "now": NOW, "orphan_age": orphan_age, "on_github": False}
    assert is_orphaned_instance(runner_status="idle", updated_at=at_orphan_age, timeout=timeout, **orphan)
    assert not is_orphaned_instance(
        runner_status="idle", updated_at=at_orphan_age + timedelta(microseconds=1), timeout=timeout, **orphan
    )
    # Installing: the bootstrap timeout applies first, here equal to the orphan age.
    assert is_orphaned_instance(
        runner_status="installing", updated_at=at_orphan_age, timeout=orphan_age, **orphan
    )
    assert offline_runner_action(
        "running", updated_at=at_orphan_age, now=NOW, orphan_age=orphan_age
    ) is OrphanAction.ASK_PROVIDER
    assert offline_runner_action(
        "running", updated_at=at_orphan_age + timedelta(microseconds=1), now=NOW, orphan_age=orphan_age
    ) is OrphanAction.SKIP


def test_bootstrap_timeout_is_the_pools_minutes_with_zero_read_as_twenty() -> None:
    """The reaper's timeout: a stored 0 reads as GARM's default of 20 minutes; stored values out of range
    are clamped (runner/pool/stored.py)."""
    assert bootstrap_timeout(0) == 20 * MINUTE
    assert bootstrap_timeout(1) == MINUTE
    assert bootstrap_timeout(45) == 45 * MINUTE
    assert bootstrap_timeout(-5) == timedelta(0)
    assert bootstrap_timeout(STORED_INT_MAX + 1) == STORED_INT_MAX * MINUTE


def test_an_out_of_range_bootstrap_timeout_is_reported_by_its_field_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="pygarm.runner.pool.stored"):
        assert bootstrap_timeout(-7331) == timedelta(0)
    assert [r.getMessage() for r in caplog.records if r.name == "pygarm.runner.pool.stored"] == [
        "stored runner_bootstrap_timeout -7331 is out of range; using 0"
    ]


def test_a_surplus_of_one_idle_runner_is_removed() -> None:
    assert scale_down_count(3, 2) == 1
    assert scale_down_count(2, 2) == 0
    assert scale_down_count(4, 1) == 2
