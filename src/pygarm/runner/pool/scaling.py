"""The pool manager's rules as pure functions: who gets created, retried, reaped, scheduled and where.

Everything here decides and nothing acts: no store, no provider, no GitHub, no clock (callers pass
``now``). The loop modules (:mod:`.creation`, :mod:`.deletion`, :mod:`.jobqueue`, :mod:`.cleanup`) read
state, ask these functions, and carry out the answer. Keeping the arithmetic here lets the tests pin
GARM v0.1.5's exact rules (docs/garm-protocol.md#pool-managers, docs/garm-protocol.md#job-queue) without a
database, and property-test them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Final, Generic, NamedTuple, TypeVar

from pygarm.params.gojson import ZERO_UUID
from pygarm.params.models import Instance
from pygarm.runner.pool.stored import stored_duration

# --- vocabulary -------------------------------------------------------------------------------------

STATUS_PENDING_CREATE: Final = "pending_create"
STATUS_CREATING: Final = "creating"
STATUS_RUNNING: Final = "running"
STATUS_ERROR: Final = "error"
STATUS_PENDING_DELETE: Final = "pending_delete"
STATUS_PENDING_FORCE_DELETE: Final = "pending_force_delete"
STATUS_DELETING: Final = "deleting"

RUNNER_PENDING: Final = "pending"
RUNNER_INSTALLING: Final = "installing"
RUNNER_IDLE: Final = "idle"
RUNNER_ACTIVE: Final = "active"
RUNNER_TERMINATED: Final = "terminated"

JOB_QUEUED: Final = "queued"

GITHUB_RUNNER_OFFLINE: Final = "offline"
"""The GitHub runner ``status`` that makes the reaper and orphan cleanup look closer
(docs/garm-protocol.md#cleanup)."""

CONTROLLER_LABEL_PREFIX: Final = "runner-controller-id:"
POOL_LABEL_PREFIX: Final = "runner-pool-id:"
JOB_LABEL_PREFIX: Final = "in_response_to_job:"
"""DB-only label on runners created for a queued job; never sent to GitHub or the provider
(docs/garm-protocol.md#runner-names-and-labels)."""

MAX_CREATE_ATTEMPTS: Final = 5
"""GARM's ``maxCreateAttempts``; with ``create_attempt`` starting at 0 this allows 6 creates
(docs/garm-protocol.md#retrying-failed-creates)."""
SCALE_DOWN_FRACTION: Final = 0.5
"""Scale-down removes half the surplus idle runners per pass (rounded up), so a pool shrinks gradually."""
MINUTE: Final = timedelta(minutes=1)
DEFAULT_BOOTSTRAP_TIMEOUT_MINUTES: Final = 20
"""GARM's ``RunnerTimeout()`` reads a pool's ``runner_bootstrap_timeout`` of 0 as 20 minutes."""

DELETE_PENDING_STATUSES: Final = frozenset({STATUS_PENDING_DELETE, STATUS_PENDING_FORCE_DELETE})
"""Instances the always-on delete loop removes (docs/garm-protocol.md#delete-pending)."""
_NOT_IDLE_RUNNER_STATUSES: Final = frozenset({RUNNER_ACTIVE, RUNNER_TERMINATED})
_INSTALLING_RUNNER_STATUSES: Final = frozenset({RUNNER_PENDING, RUNNER_INSTALLING})
_ORPHAN_SKIP_STATUSES: Final = frozenset({STATUS_PENDING_CREATE, *DELETE_PENDING_STATUSES})
_GITHUB_ORPHAN_SKIP_STATUSES: Final = frozenset(
    {STATUS_PENDING_DELETE, STATUS_DELETING, STATUS_PENDING_CREATE, STATUS_CREATING}
)


# --- labels -----------------------------------------------------------------------------------------


def runner_labels(tag_names: Iterable[str], controller_id: str, pool_id: str) -> list[str]:
    """The labels a runner registers with on GitHub: pool tags, then controller and pool markers."""
    return [*tag_names, CONTROLLER_LABEL_PREFIX + controller_id, POOL_LABEL_PREFIX + pool_id]


def job_label(job_id: int) -> str:
    return f"{JOB_LABEL_PREFIX}{job_id}"


def job_id_from_labels(labels: Iterable[str]) -> int:
    """The job a runner was created for, or 0 (GARM's ``jobIDFromLabels``: the first such label)."""
    for label in labels:
        if label.startswith(JOB_LABEL_PREFIX):
            try:
                return int(label[len(JOB_LABEL_PREFIX) :])
            except ValueError:
                return 0
    return 0


def is_managed_runner(labels: Iterable[str], controller_id: str) -> bool:
    """A GitHub runner is ours when its first controller label names this controller
    (docs/garm-protocol.md#runner-names-and-labels)."""
    for label in labels:
        if label.startswith(CONTROLLER_LABEL_PREFIX):
            return label[len(CONTROLLER_LABEL_PREFIX) :] == controller_id
    return controller_id == ""


def labels_match(job_labels: Iterable[str], tag_names: Iterable[str]) -> bool:
    """Every job label is a pool tag. Case-insensitive, like the store's pool matching
    (``find_pools_matching_all_tags``), so the two never disagree about a job."""
    tags = {name.lower() for name in tag_names}
    return all(label.lower() in tags for label in job_labels)


# --- creation ---------------------------------------------------------------------------------------


def counts_as_idle_or_pending(runner_status: str) -> bool:
    """Min-idle counts every runner that is not busy: ``pending``, ``installing``, ``idle``, ``failed``…
    whatever its instance ``status`` (docs/garm-protocol.md#minimum-idle-runners)."""
    return runner_status not in _NOT_IDLE_RUNNER_STATUSES


def min_idle_shortfall(*, existing: int, idle_or_pending: int, min_idle: int, max_runners: int) -> int:
    """How many runners ensure-min-idle adds to a pool (GARM's ``ensureIdleRunnersForOnePool``).

    ``existing`` is every instance row of the pool, whatever its state; the result never takes the pool
    past ``max_runners`` and is never negative.
    """
    if min_idle <= 0 or existing >= max_runners:
        return 0
    required = min_idle - idle_or_pending
    if required <= 0:
        return 0
    return min(required, max_runners - existing)


def add_runner_refusal(*, pool_id: str, enabled: bool, existing: int, max_runners: int) -> str | None:
    """Why the job path may not add a runner to a pool, in GARM's words; ``None`` when it may
    (docs/garm-protocol.md#adding-a-runner)."""
    if not enabled:
        return f"pool {pool_id} is disabled"
    if existing >= max_runners:
        return f"max workers ({max_runners}) reached for pool {pool_id}"
    return None


def retry_eligible(status: str, create_attempt: int) -> bool:
    """A failed create is retried while ``create_attempt < 5``
    (docs/garm-protocol.md#retrying-failed-creates)."""
    return status == STATUS_ERROR and create_attempt < MAX_CREATE_ATTEMPTS


# --- scale-down -------------------------------------------------------------------------------------


def is_reapable_idle(instance: Instance, now: datetime, idle_age: timedelta) -> bool:
    """An idle, running runner not updated for longer than ``idle_age`` (GARM: 2 minutes,
    docs/garm-protocol.md#scale-down)."""
    return (
        instance.runner_status == RUNNER_IDLE
        and instance.status == STATUS_RUNNING
        and now - instance.updated_at > idle_age
    )


def scale_down_count(idle: int, min_idle: int) -> int:
    """How many of ``idle`` reapable runners one pass removes: half the surplus, rounded up."""
    surplus = idle - min_idle
    if surplus <= 0:
        return 0
    return math.ceil(surplus * SCALE_DOWN_FRACTION)


def is_stale_queued_job(
    *,
    status: str,
    created_at: datetime,
    labels: Iterable[str],
    tag_names: Iterable[str],
    now: datetime,
    stale_age: timedelta,
) -> bool:
    """A queued job older than ``stale_age`` that this pool could have served: scale-down deletes it."""
    return status == JOB_QUEUED and now - created_at > stale_age and labels_match(labels, tag_names)


# --- the job queue ----------------------------------------------------------------------------------


class JobDecision(NamedTuple):
    """What one pass of the job queue does with one queued job (docs/garm-protocol.md#job-queue steps 1-4)."""

    unlock: bool
    """Release this entity's stale lock (``job/update``)."""
    schedule: bool
    """Look for a pool and create a runner for it."""


SKIP_JOB: Final = JobDecision(unlock=False, schedule=False)


def queued_job_decision(
    *,
    locked_by: str,
    entity_id: str,
    updated_at: datetime,
    now: datetime,
    backoff: timedelta,
    lock_timeout: timedelta,
) -> JobDecision:
    """GARM's checks, in its order: another entity's lock, the age backoff, the stale-lock unlock, our lock.

    A job this entity locked is never rescheduled in the pass that unlocks it: the unlock bumps
    ``updated_at``, so the backoff applies before the next attempt, as in GARM.
    """
    if locked_by not in (ZERO_UUID, entity_id):
        return SKIP_JOB
    age = now - updated_at
    if age < backoff:
        return SKIP_JOB
    if locked_by == entity_id:
        return JobDecision(unlock=age >= lock_timeout, schedule=False)
    return JobDecision(unlock=False, schedule=True)


PoolT = TypeVar("PoolT")


class PoolBalancer(Generic[PoolT]):
    """The pools that can serve one label set, in priority order, for one job-queue pass
    (docs/garm-protocol.md#job-queue).

    ``roundrobin`` shares a cursor across the jobs of the pass, so successive jobs start at successive
    pools; ``pack`` restarts at the highest-priority pool for every job and spills over only when a pool
    refuses (full or disabled). Call :meth:`begin_job` once per job, then :meth:`next` up to ``len()``
    times. The cursor does not outlive the pass (GARM rebuilds the cache every pass).
    """

    __slots__ = ("_cursor", "_pack", "_pools")

    def __init__(self, pools: Sequence[PoolT], balancer_type: str) -> None:
        self._pools = list(pools)
        self._pack = balancer_type == "pack"
        self._cursor = 0

    def __len__(self) -> int:
        return len(self._pools)

    def begin_job(self) -> None:
        if self._pack:
            self._cursor = 0

    def next(self) -> PoolT:
        if not self._pools:
            raise LookupError("no pools available")
        pool = self._pools[self._cursor % len(self._pools)]
        self._cursor += 1
        return pool


def balancer_key(labels: Iterable[str]) -> tuple[str, ...]:
    """Jobs with the same label set (in any order) share one balancer within a pass."""
    return tuple(sorted(labels))


# --- cleanup (docs/garm-protocol.md#cleanup) ----------------------------------------------------------------


def bootstrap_timeout(minutes: int) -> timedelta:
    """A pool's ``runner_bootstrap_timeout`` (0 reads as 20 minutes); a bad stored value is clamped."""
    return stored_duration("runner_bootstrap_timeout", minutes or DEFAULT_BOOTSTRAP_TIMEOUT_MINUTES, MINUTE)


def should_reap_timed_out(
    *, updated_at: datetime, now: datetime, timeout: timedelta, github_status: str | None
) -> bool:
    """(a) An instance not updated for the bootstrap timeout whose managed GitHub runner is missing
    (``github_status is None``) or offline."""
    if now - updated_at < timeout:
        return False
    return github_status is None or github_status == GITHUB_RUNNER_OFFLINE


def is_orphaned_instance(
    *,
    status: str,
    runner_status: str,
    updated_at: datetime,
    now: datetime,
    timeout: timedelta,
    orphan_age: timedelta,
    on_github: bool,
) -> bool:
    """(b) An instance GitHub does not know, past its grace periods: it goes to ``pending_delete``."""
    if status in _ORPHAN_SKIP_STATUSES:
        return False
    age = now - updated_at
    if runner_status in _INSTALLING_RUNNER_STATUSES and age < timeout:
        return False
    if age < orphan_age:
        return False
    return not on_github


class OrphanAction(Enum):
    """(c) What to do about an offline managed GitHub runner."""

    REMOVE_FROM_GITHUB = "remove from github"
    """No instance of that name: unregister the runner."""
    SKIP = "skip"
    """The instance is being created or deleted, or was updated recently."""
    ASK_PROVIDER = "ask provider"
    """Look the instance up in the provider's list (and remove or start it)."""


def offline_runner_action(
    instance_status: str | None, *, updated_at: datetime | None, now: datetime, orphan_age: timedelta
) -> OrphanAction:
    if instance_status is None:
        return OrphanAction.REMOVE_FROM_GITHUB
    if instance_status in _GITHUB_ORPHAN_SKIP_STATUSES:
        return OrphanAction.SKIP
    if instance_status == STATUS_RUNNING and updated_at is not None and now - updated_at < orphan_age:
        return OrphanAction.SKIP
    return OrphanAction.ASK_PROVIDER
