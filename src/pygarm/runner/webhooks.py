"""GitHub ``workflow_job`` webhooks: dispatch to an entity and ``HandleWorkflowJob``
(docs/garm-protocol.md#webhooks; ``garm@v0.1.5 runner/runner.go:560-684`` and
``garm@v0.1.5 runner/pool/pool.go:133-282``).

:meth:`WebhookService.dispatch` does GARM's steps in GARM's order, each with GARM's answer:

1. empty body → 400 ``missing job data``; undecodable → 400 ``invalid request``
   (docs/garm-protocol.md#webhook-dispatch step 1);
2. ``workflow_job.html_url`` → ``scheme://host`` (``url.ParseRequestURI``), which must equal an endpoint's
   ``base_url`` exactly, else 404 ``no endpoint found for job`` (docs/garm-protocol.md#webhook-dispatch
   step 2). An unparsable or missing URL (a body of ``{}`` or ``null``) is 400 ``invalid job url``, where
   GARM answers 500 (``docs/compatibility.md``): anyone can post to this route;
3. the entity by ``X-GitHub-Hook-Installation-Target-Type`` (``repository``/``organization``/``business``,
   else 400 ``cannot handle hook target type <v>``), looked up case-insensitively on that endpoint; an
   unknown entity is ignored (200) (docs/garm-protocol.md#webhook-dispatch step 3);
4. ``X-Hub-Signature-256`` against the entity's webhook secret: missing → 401, not ``algo=hex`` → 400
   ``invalid signature format``, algorithm not ``sha256``/``sha1`` → 400 ``unknown signature type``,
   mismatch → 401 (docs/garm-protocol.md#webhook-dispatch step 4);
5. :meth:`WebhookService.handle_workflow_job` (docs/garm-protocol.md#handling-a-job), whose not-found outcomes
   are 200, as GARM's are.

Deliberate difference from GARM: GitHub delivers events out of order and more than once, and GARM applies
each one, so a late ``queued`` re-queues a finished job and a late ``in_progress`` revives a terminated
runner. pygarm never moves a job backwards (``queued`` < ``in_progress`` < ``completed``), never turns a
``terminated`` runner ``active`` again, never sets ``pending_delete`` on a runner already being deleted,
and ignores repeats: a delivery that would change no stored field of the job (``updated_at`` aside) or
the runner writes and emits nothing, and triggers no refill. Each check is atomic with its write
(``store/webhook_queries.py``). A ``queued`` (or a repeated ``completed``) for a job that completed
recently and was already purged is also ignored, using a bounded in-memory record of completed job IDs
(per process).
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final, Protocol

import orjson
from pydantic import ValidationError

from pygarm.errors import BadRequestError, NotFoundError, UnauthorizedError
from pygarm.params.github_webhook import WorkflowJobPayload
from pygarm.params.models import Job
from pygarm.params.storable import require_storable
from pygarm.runner.pool.scaling import job_id_from_labels
from pygarm.store.entity_kinds import Entity, EntityKind
from pygarm.store.store import Store
from pygarm.store.webhook_queries import WebhookQueries

log = logging.getLogger(__name__)

WORKFLOW_JOB_EVENT: Final = "workflow_job"
HOOK_TARGET_KINDS: Final = {
    "repository": EntityKind.REPOSITORY,
    "organization": EntityKind.ORGANIZATION,
    "business": EntityKind.ENTERPRISE,
}
"""``X-GitHub-Hook-Installation-Target-Type`` values GARM handles (``garm@v0.1.5 runner/types.go:21-25``)."""
RUNNER_ACTIVE: Final = "active"
RUNNER_TERMINATED: Final = "terminated"
INSTANCE_PENDING_DELETE: Final = "pending_delete"
DELETION_STATUSES: Final = frozenset({"pending_delete", "pending_force_delete", "deleting"})
"""Statuses from which ``pending_delete`` would be a step back (the runner is already on its way out)."""
COMPLETED_MEMORY_SIZE: Final = 10_000
"""Completed job IDs remembered per process; at GitHub's pace this covers hours of jobs."""
COMPLETED_MEMORY_SECONDS: Final = 6 * 3600
"""How long a completed job ID is remembered; GitHub's delayed deliveries arrive within minutes."""

INVALID_JOB_URL: Final = "invalid job url"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_PORT = re.compile(r":\d*$")


class PoolManagerLike(Protocol):
    def ensure_min_idle(self, pool_id: str) -> Any: ...


class PoolManagerRegistryLike(Protocol):
    def get(self, entity_id: str) -> PoolManagerLike | None: ...


def request_uri_base(raw: str) -> str:
    """``scheme://host`` of ``url.ParseRequestURI(raw)`` as GARM formats it; BadRequestError (400
    ``invalid job url``) when Go's parser would fail (empty, relative, control characters, a bad port),
    where GARM answers 500."""
    if not raw or any(ord(char) < 0x20 or char == "\x7f" for char in raw):
        raise BadRequestError(INVALID_JOB_URL)
    scheme = ""
    rest = raw
    match = _SCHEME.match(raw)
    if match:
        scheme, rest = match.group(1).lower(), raw[match.end() :]
    elif raw.startswith(":"):
        raise BadRequestError(INVALID_JOB_URL)
    rest = rest.partition("?")[0]
    if not rest.startswith("/"):
        raise BadRequestError(INVALID_JOB_URL)
    host = ""
    if scheme and rest.startswith("//"):
        authority = rest[2:].partition("/")[0]
        host = authority.rpartition("@")[2]
        port = _PORT.search(host)
        if ":" in host and not host.endswith("]") and port is None:
            raise BadRequestError(INVALID_JOB_URL)
    return f"{scheme}://{host}"


def verify_signature(secret: str, signature: str, body: bytes) -> None:
    """GARM's ``validateHookBody``; an entity without a secret is not checked (GARM requires one)."""
    if not secret:
        return
    if not signature:
        raise UnauthorizedError("missing github signature")
    algorithm, separator, digest = signature.partition("=")
    if not separator:
        raise BadRequestError("invalid signature format")
    hash_function = {"sha256": hashlib.sha256, "sha1": hashlib.sha1}.get(algorithm)
    if hash_function is None:
        raise BadRequestError("unknown signature type")
    expected = hmac.new(secret.encode(), body, hash_function).hexdigest()
    if not hmac.compare_digest(digest.encode(), expected.encode()):
        raise UnauthorizedError("signature mismatch")


def parse_payload(body: bytes) -> WorkflowJobPayload:
    if not body:
        raise BadRequestError("missing job data")
    try:
        data = orjson.loads(body)
        require_storable(data)
        return WorkflowJobPayload.model_validate({} if data is None else data)
    except (orjson.JSONDecodeError, ValidationError):
        raise BadRequestError("invalid request") from None


def validate_owner(kind: EntityKind, entity: Entity, payload: WorkflowJobPayload) -> None:
    """``ValidateOwner`` (``garm@v0.1.5 runner/pool/pool.go:1880-1899``): the payload must name this entity
    (any letter case)."""
    if kind is EntityKind.REPOSITORY:
        owner = str(getattr(entity, "owner", ""))
        ok = (
            payload.repository.name.casefold() == entity.name.casefold()
            and payload.repository.owner.login.casefold() == owner.casefold()
        )
    elif kind is EntityKind.ORGANIZATION:
        ok = payload.organization.login.casefold() == entity.name.casefold()
    else:
        ok = payload.enterprise.slug.casefold() == entity.name.casefold()
    if not ok:
        raise BadRequestError("job not meant for this pool manager")


def payload_to_job(payload: WorkflowJobPayload, kind: EntityKind, entity_id: str) -> Job:
    """``paramsWorkflowJobToParamsJob`` (``garm@v0.1.5 runner/pool/pool.go:916-952``): unlocked, owned by this
    entity."""
    details = payload.workflow_job
    owner_field = {
        EntityKind.REPOSITORY: "repo_id",
        EntityKind.ORGANIZATION: "org_id",
        EntityKind.ENTERPRISE: "enterprise_id",
    }[kind]
    return Job(
        id=details.id,
        run_id=details.run_id,
        action=payload.action,
        conclusion=details.conclusion,
        status=details.status,
        name=details.name,
        started_at=details.started_at,
        completed_at=details.completed_at,
        runner_id=details.runner_id,
        runner_name=details.runner_name,
        runner_group_id=details.runner_group_id,
        runner_group_name=details.runner_group_name,
        repository_name=payload.repository.name,
        repository_owner=payload.repository.owner.login,
        labels=details.labels,
        **{owner_field: entity_id},
    )


class CompletedJobs:
    """A bounded, expiring set of job IDs seen ``completed`` (completed jobs are purged within seconds,
    so the database alone cannot tell a late ``queued`` from a new job)."""

    def __init__(
        self,
        *,
        size: int = COMPLETED_MEMORY_SIZE,
        seconds: float = COMPLETED_MEMORY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._seen: OrderedDict[int, float] = OrderedDict()
        self._size = size
        self._seconds = seconds
        self._clock = clock

    def add(self, job_id: int) -> None:
        self._seen[job_id] = self._clock()
        self._seen.move_to_end(job_id)
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)

    def __contains__(self, job_id: object) -> bool:
        seen = self._seen.get(job_id) if isinstance(job_id, int) else None
        return seen is not None and self._clock() - seen < self._seconds


class WebhookService:
    """Applies ``workflow_job`` deliveries; one per app (it remembers completed jobs)."""

    def __init__(
        self, store: Store, pool_managers: Callable[[], PoolManagerRegistryLike | None] = lambda: None
    ) -> None:
        self.store = store
        self.queries = WebhookQueries(store.db, store.sealer)
        self.completed = CompletedJobs()
        self._pool_managers = pool_managers

    async def dispatch(self, body: bytes, *, signature: str, target_type: str) -> bool:
        """``DispatchWorkflowJob``: raise the GarmError GARM would answer with; return True when the
        delivery was handled, False when it is ignored because no entity owns it (both are 200; GARM counts
        the second as ``owner_unknown``, garm@v0.1.5 apiserver/controllers/controllers.go:107-113)."""
        payload = parse_payload(body)
        base = request_uri_base(payload.workflow_job.html_url)
        endpoints = await self.store.list_endpoints()
        endpoint = next((ep for ep in endpoints if ep.base_url == base), None)
        if endpoint is None:
            raise NotFoundError("no endpoint found for job")
        kind = HOOK_TARGET_KINDS.get(target_type)
        if kind is None:
            raise BadRequestError(f"cannot handle hook target type {target_type}")
        try:
            entity = await self._find_entity(kind, payload, endpoint.name)
            if entity is None:
                log.debug("ignoring workflow_job for an unknown %s", kind.value)
                return False
            secret = await self.store.get_entity_webhook_secret(kind, entity.id)
            verify_signature(secret, signature, body)
            await self.handle_workflow_job(kind, entity, payload)
        except NotFoundError:
            # GARM answers errors wrapping its not-found sentinel with 200
            # (docs/garm-protocol.md#webhook-routes step 3)
            return False
        return True

    async def _find_entity(
        self, kind: EntityKind, payload: WorkflowJobPayload, endpoint: str
    ) -> Entity | None:
        if kind is EntityKind.REPOSITORY:
            repo = payload.repository
            return await self.store.find_entity(kind, repo.name, endpoint, owner=repo.owner.login)
        if kind is EntityKind.ORGANIZATION:
            return await self.store.find_entity(kind, payload.organization.login, endpoint)
        return await self.store.find_entity(kind, payload.enterprise.slug, endpoint)

    async def handle_workflow_job(
        self, kind: EntityKind, entity: Entity, payload: WorkflowJobPayload
    ) -> None:
        """``HandleWorkflowJob`` (docs/garm-protocol.md#handling-a-job): the action's effect on the runner,
        then (always, like GARM's deferred function) the job record and the release of the job the runner was
        created for."""
        validate_owner(kind, entity, payload)
        job = payload_to_job(payload, kind, entity.id)
        triggered_by = 0
        try:
            if payload.action == "completed":
                await self._runner_completed(job.runner_name)
            elif payload.action == "in_progress":
                triggered_by = await self._runner_in_progress(kind, entity.id, job.runner_name)
        finally:
            await self._record_job(kind, entity.id, job, triggered_by)

    async def _runner_completed(self, runner_name: str) -> None:
        """``runner_status → terminated`` then ``status → pending_delete``: two ``instance/update``s.
        No GitHub call: an ephemeral runner deregisters itself."""
        if not runner_name:
            return
        try:
            await self.queries.set_instance_field_unless(
                runner_name, "runner_status", RUNNER_TERMINATED, unless={RUNNER_TERMINATED}
            )
            await self.queries.set_instance_field_unless(
                runner_name, "status", INSTANCE_PENDING_DELETE, unless=DELETION_STATUSES
            )
        except NotFoundError:
            return  # a runner of another controller or hierarchy

    async def _runner_in_progress(self, kind: EntityKind, entity_id: str, runner_name: str) -> int:
        """``runner_status → active``, then refill the runner's pool to its minimum of idle runners.
        Returns the job the runner was created for (``in_response_to_job:<id>``), or 0."""
        if not runner_name:
            return 0
        try:
            instance, changed = await self.queries.set_instance_field_unless(
                runner_name, "runner_status", RUNNER_ACTIVE, unless={RUNNER_ACTIVE, RUNNER_TERMINATED}
            )
            record = await self.store.get_instance_record(runner_name)
        except NotFoundError:
            return 0
        triggered_by = job_id_from_labels(record.aditional_labels)
        if not changed:
            return triggered_by  # a repeat, or a late delivery for a finished runner: nothing to refill
        try:
            pool = await self.store.get_pool(instance.pool_id, entity=(kind, entity_id))
        except NotFoundError:
            return triggered_by  # the runner belongs to a pool of another entity
        await self._ensure_min_idle(entity_id, pool.id)
        return triggered_by

    async def _ensure_min_idle(self, entity_id: str, pool_id: str) -> None:
        registry = self._pool_managers()
        manager = registry.get(entity_id) if registry is not None else None
        if manager is None:
            return
        try:
            result = manager.ensure_min_idle(pool_id)
            if inspect.isawaitable(result):
                await result
        except Exception:  # GARM only logs a failed refill; the webhook still succeeds
            log.exception("failed to ensure idle runners for pool %s", pool_id)

    async def _record_job(self, kind: EntityKind, entity_id: str, job: Job, triggered_by: int) -> None:
        """The deferred part of ``HandleWorkflowJob``. Its failures are logged, not returned, as in GARM."""
        if not job.id:
            return
        try:
            completed_before = job.id in self.completed
            if job.status == "completed":
                self.completed.add(job.id)
            create_allowed = await self._may_record_new_job(kind, entity_id, job, completed_before)
            saved = await self.queries.record_webhook_job(job, create_allowed=create_allowed)
            if saved is None:
                log.debug("job %d not recorded (no pool for it, a late %s, a repeat)", job.id, job.status)
            if triggered_by and triggered_by != job.id:
                # The runner took another job than the one it was created for: let that one be
                # scheduled again now instead of after the 10-minute lock timeout.
                await self.store.break_lock_job_is_queued(triggered_by)
        except Exception:
            log.exception("failed to record job %d", job.id)

    async def _may_record_new_job(
        self, kind: EntityKind, entity_id: str, job: Job, completed_before: bool
    ) -> bool:
        """A job pygarm does not know yet is recorded only if a pool of the entity could run it, and
        never when an earlier delivery completed it (a late ``queued`` or a repeated ``completed`` for a
        job already purged)."""
        try:
            await self.store.get_job(job.id)
            return True
        except NotFoundError:
            pass
        if completed_before:
            return False
        return bool(await self.store.find_pools_matching_all_tags(kind, entity_id, job.labels or []))
