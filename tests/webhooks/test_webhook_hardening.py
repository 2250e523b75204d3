"""``/webhooks`` under abuse (issue 8 #5, #6, #7): anyone can post to it, so every malformed delivery is a
4xx with GARM's error body that changes nothing and logs no error, and a delivery GitHub sends again
(a redelivery, or a retry after a timeout) changes nothing and emits no event."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import orjson
import pytest

from pygarm.events.filters import EVERYTHING
from tests.api.entity_support import ChangeLog, store_of
from tests.webhooks.conftest import World, job_payload, make_instance, send

BAD_REQUEST = "Bad Request"
RUNNER = "garm-runner0042"


def _no_error_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors]


async def _refused(
    world: World, caplog: pytest.LogCaptureFixture, body: bytes, details: str, **kw: Any
) -> None:
    log = ChangeLog(world.app)
    await log.mark()
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        response = await send(world.http, body, **kw)
    assert (response.status_code, response.json()) == (400, {"error": BAD_REQUEST, "details": details})
    assert await log.new() == []
    _no_error_logged(caplog)


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b"null",
        b'{"action": "queued"}',
        b'{"workflow_job": {}}',
        b'{"workflow_job": null, "repository": null}',
        b'{"workflow_job": {"id": 5, "html_url": "https://github.com:x/"}}',
        b'{"workflow_job": {"id": 5, "html_url": "relative/path"}}',
    ],
)
async def test_delivery_without_a_usable_job_url_is_400(
    world: World, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    """Unsigned and unauthenticated: GARM answers these with 500 (docs/compatibility.md)."""
    await _refused(world, caplog, body, "invalid job url", signature="")


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"[{}]",
        b"42",
        b'"workflow_job"',
        b"true",
        b'{"workflow_job": []}',
        b'{"workflow_job": "x"}',
        b'{"workflow_job": {"html_url": 5}}',
        b'{"workflow_job": {"labels": "linux"}}',
        b'{"workflow_job": {"started_at": "yesterday"}}',
        b'{"workflow_job": {"started_at": "2024-13-01T00:00:00Z"}}',
        b'{"repository": {"owner": "octo"}}',
        b'{"action": 1}',
    ],
)
async def test_wrong_json_types_are_invalid_request(
    world: World, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    await _refused(world, caplog, body, "invalid request", signature="")


INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", 2**63),
        ("id", -(2**63) - 1),
        ("id", 10**30),
        ("run_id", 2**63),
        ("runner_id", 2**64),
        ("runner_group_id", 2**63),
        ("run_attempt", 2**63),
    ],
)
async def test_signed_integer_beyond_int64_is_invalid_request(
    world: World, caplog: pytest.LogCaptureFixture, field: str, value: int
) -> None:
    """Go's decoder refuses a number an ``int64`` cannot hold, so GARM answers 400; pygarm used to answer
    200 and log the database's traceback (issue 8 #7)."""
    payload = job_payload(world, "queued", 3001)
    payload["workflow_job"][field] = value
    await _refused(world, caplog, json.dumps(payload).encode(), "invalid request")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("repository", "id"), 2**63),
        (("repository", "owner", "id"), 2**63),
        (("sender", "id"), -(2**63) - 1),
        (("workflow_job", "steps"), [{"number": 2**63}]),
        (("workflow_job", "status"), "q" * 65),
        (("workflow_job", "conclusion"), "c" * 65),
        (("workflow_job", "runner_name"), "r" * 256),
        (("workflow_job", "runner_group_name"), "g" * 256),
        (("action",), "a" * 255),
        (("workflow_job", "started_at"), "9999-12-31T23:00:00-05:00"),
        (("workflow_job", "completed_at"), "0001-01-01T00:30:00+01:00"),
    ],
)
async def test_signed_value_no_column_can_hold_is_invalid_request(
    world: World, caplog: pytest.LogCaptureFixture, path: tuple[str, ...], value: Any
) -> None:
    """A value the job record cannot keep (beyond ``int64``, longer than its column, a time outside years
    1-9999 in UTC) is refused before anything is written, on both backends; PostgreSQL used to refuse
    the insert after the delivery was accepted."""
    payload = job_payload(world, "queued", 3002)
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    await _refused(world, caplog, json.dumps(payload).encode(), "invalid request")


async def test_largest_int64_job_id_is_recorded(world: World, caplog: pytest.LogCaptureFixture) -> None:
    log = ChangeLog(world.app)
    await log.mark()
    payload = job_payload(world, "queued", INT64_MAX, run_id=INT64_MAX)
    with caplog.at_level(logging.DEBUG):
        response = await send(world.http, payload)
    assert (response.status_code, response.content) == (200, b"")
    job = orjson.loads((await log.single("job", "create")).payload)
    assert (job["id"], job["run_id"]) == (INT64_MAX, INT64_MAX)
    listed = (await world.http.get("/api/v1/jobs")).json()
    assert [(j["id"], j["run_id"]) for j in listed] == [(INT64_MAX, INT64_MAX)]
    _no_error_logged(caplog)


class StreamTap:
    """A send-everything subscriber of the app's hub: what an events websocket client would receive."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.subscription = world.app.state.hub.subscribe("replay-test")
        self.subscription.set_filter(EVERYTHING)
        self.seen = self.subscription.start_seq

    async def received(self) -> list[tuple[str, str]]:
        """Every event up to the change log's head (commits reach the hub in order, so once the head's
        event is here, all earlier ones are too), as ``(entity-type, operation)``."""
        head = await store_of(self.world.app).db.last_seq()
        got: list[Any] = []
        deadline = asyncio.get_running_loop().time() + 10
        while self.seen < head:
            delivery = self.subscription.pop()
            if delivery is None:
                assert asyncio.get_running_loop().time() < deadline, "the stream stopped short of the head"
                await asyncio.sleep(0.01)
                continue
            got.append(delivery)
            self.seen = delivery.change.seq
        assert self.subscription.pop() is None
        return [(d.change.entity_type.value, d.change.operation.value) for d in got]


async def _deliver_times(world: World, payload: dict[str, Any], times: int) -> None:
    body = orjson.dumps(payload)
    for _ in range(times):
        response = await send(world.http, body)
        assert (response.status_code, response.content) == (200, b"")


async def test_replayed_queued_delivery_emits_one_job_create(world: World) -> None:
    """GitHub redelivers (by hand, or after a slow answer): the same signed ``queued`` four times is one
    ``job/create`` and nothing else on the stream (issue 8 #6; GARM emits a ``job/update`` per repeat)."""
    tap = StreamTap(world)
    await _deliver_times(world, job_payload(world, "queued", 4001), 4)
    assert await tap.received() == [("job", "create")]
    await _deliver_times(world, job_payload(world, "queued", 4002), 1)
    assert await tap.received() == [("job", "create")]


async def test_replayed_lifecycle_emits_each_event_once(world: World) -> None:
    """Each step of a job's life, replayed three times, gives the events of one delivery."""
    await make_instance(world, RUNNER)
    tap = StreamTap(world)
    await _deliver_times(world, job_payload(world, "queued", 4003), 3)
    assert await tap.received() == [("job", "create")]
    await _deliver_times(world, job_payload(world, "in_progress", 4003, runner_name=RUNNER), 3)
    assert await tap.received() == [("instance", "update"), ("job", "update")]
    completed = job_payload(world, "completed", 4003, runner_name=RUNNER)
    await _deliver_times(world, completed, 3)
    assert await tap.received() == [("instance", "update"), ("instance", "update"), ("job", "update")]
    # Completed jobs are purged; a redelivery of the completion afterwards must not bring the job back.
    assert await world.store.delete_completed_jobs() == 1
    assert await tap.received() == [("job", "delete")]
    await _deliver_times(world, completed, 2)
    assert await tap.received() == []
    assert (await world.http.get("/api/v1/jobs")).json() == []


async def test_a_repeat_that_changes_a_field_is_an_update(world: World) -> None:
    """Only exact repeats are dropped: the same job with a new conclusion is a ``job/update``."""
    tap = StreamTap(world)
    await _deliver_times(world, job_payload(world, "queued", 4004), 1)
    await _deliver_times(world, job_payload(world, "queued", 4004, runner_group_name="Other"), 2)
    assert await tap.received() == [("job", "create"), ("job", "update")]
    jobs = (await world.http.get("/api/v1/jobs")).json()
    assert [(j["id"], j["runner_group_name"]) for j in jobs] == [(4004, "Other")]
